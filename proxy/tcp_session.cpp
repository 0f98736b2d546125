#include "proxy/tcp_session.hpp"

#include "proxy/client_hello_reader.hpp"
#include "proxy/session_common.hpp"
#include "proxy/log.hpp"
#include "proxy/transfer.hpp"
#include "proxy/socket_options.hpp"
#include "proxy/upstream_connect.hpp"
#include "tls/tls_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string_view>

namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

const char* describe(const PumpEnd& end, const char* side) {
    switch (end.kind) {
        case PumpEnd::Kind::eof: return side;
        case PumpEnd::Kind::read_error: return "read_error";
        case PumpEnd::Kind::write_error: return "write_error";
        case PumpEnd::Kind::cancelled: return "cancelled";
    }
    return "unknown";
}

// The `sni` of a close line: none for a plain service, "-" for a TLS client
// that sent no server name. `hello`: a passthrough client's ClientHello;
// `client_tls`: a terminated client's session.
std::optional<std::string_view> sni_of(const ClientHelloRead* hello, SSL* client_tls) {
    if (hello) return hello->info.sni ? std::string_view(*hello->info.sni) : std::string_view("-");
    if (client_tls) {
        const char* name = SSL_get_servername(client_tls, TLSEXT_NAMETYPE_host_name);
        return name ? std::string_view(name) : std::string_view("-");
    }
    return std::nullopt;
}

tls::HandshakeFailure failure_of(ClientHelloRead::Result result) {
    switch (result) {
        case ClientHelloRead::Result::not_tls: return tls::HandshakeFailure::not_tls;
        case ClientHelloRead::Result::malformed: return tls::HandshakeFailure::malformed;
        case ClientHelloRead::Result::timeout: return tls::HandshakeFailure::timeout;
        default: return tls::HandshakeFailure::closed;
    }
}

// A passthrough service's first step: the client's ClientHello, or null when the
// client sent something else, or nothing before the handshake deadline closed
// it (then logged here). Its own coroutine, so that the read's state is gone
// from memory once it is done.
net::awaitable<std::unique_ptr<ClientHelloRead>> read_passthrough_hello(tcp::socket& client,
                                                                         const tcp::endpoint& client_endpoint,
                                                                         const ServiceRuntime& service,
                                                                         const LiveSession& live,
                                                                         conf::AccessLog access_log) {
    auto hello = std::make_unique<ClientHelloRead>();
    co_await read_client_hello(client, *hello);
    if (hello->result == ClientHelloRead::Result::complete) co_return hello;
    if (live.closed_because) {
        hello->result = ClientHelloRead::Result::timeout;
        hello->reason = "no ClientHello within the handshake timeout";
    }
    log_handshake_failure(service, client_endpoint, std::string_view("-"), failure_of(hello->result), hello->reason,
                          to_string(hello->result), access_log);
    co_return nullptr;
}

// Sends the bytes read with the ClientHello to the real server, first and as
// they came, counting them; then frees them. False when the real server failed.
net::awaitable<bool> forward_hello(tcp::socket& backend, ClientHelloRead& hello, ByteSink sink) {
    auto [error, written] = co_await net::async_write(backend, net::buffer(hello.bytes), net::as_tuple(net::use_awaitable));
    sink.add(written);
    std::vector<std::uint8_t>().swap(hello.bytes);  // an idle connection holds no buffer
    co_return !error;
}

}  // namespace

// `runtime`, a coroutine parameter, lives in the frame: that is what keeps
// `service` and the settings valid until the connection closes.
net::awaitable<void> run_tcp_session(tcp::socket client, tcp::endpoint client_endpoint,
                                     std::shared_ptr<const Runtime> runtime, ServiceRuntime& service,
                                     SessionEnvironment environment) {
    const conf::AccessLog access_log = runtime->config.access_log;
    const auto started = std::chrono::steady_clock::now();
    CountedScope live(environment.live_sessions);
    auto& service_traffic = service.state->traffic;
    CountedScope service_active(service_traffic.active);
    service_traffic.total.fetch_add(1, std::memory_order_relaxed);

    boost::system::error_code ignored;
    const auto key = client_key_of(client_endpoint);

    // Registered from accept: the worker enforces the deadline of each phase
    // (the handshake now, idle once the bytes flow) and can close the session
    // from outside at any time.
    LiveSession live_session(&service, &client);
    RegisteredSession registered(environment.registry, live_session);

    // TLS. Passthrough: the ClientHello is read first, for the name it asks
    // for; its bytes go to the real server first, untouched. Terminate and
    // reencrypt: castellan's own handshake with the client.
    // Both on the heap or in coroutines of their own: this frame lives as long
    // as the connection (measured: a hello held here cost 450 bytes per idle
    // connection).
    std::unique_ptr<ClientHelloRead> hello;
    tls::SslPtr client_tls;  // declared after `client`: freed before it
    const bool passthrough = service.config.tls && service.config.tls->mode == conf::TlsMode::passthrough;
    if (passthrough || service.server_tls) {
        environment.registry.begin_phase(live_session, started,
                                         std::chrono::milliseconds(service.config.timeouts.handshake_ms),
                                         "handshake_timeout");
        if (passthrough) {
            hello = co_await read_passthrough_hello(client, client_endpoint, service, live_session, access_log);
            if (!hello) co_return;
        } else {
            client_tls = co_await accept_tls(client, client_endpoint, service, live_session, access_log);
            if (!client_tls) co_return;
        }
        environment.registry.end_phase(live_session);
    }

    const char* failure = nullptr;
    auto upstream = co_await connect_upstream(service, key, client_endpoint.address(), failure);
    if (!upstream) {
        if (access_log != conf::AccessLog::off) {
            log_close(log::Level::warn, service, client_endpoint, "-", sni_of(hello.get(), client_tls.get()), failure,
                      nullptr);
        }
        co_return;
    }
    auto& server = *upstream->server;
    tcp::socket& backend = upstream->socket;
    auto& server_traffic = server.state->traffic;
    server_traffic.total.fetch_add(1, std::memory_order_relaxed);

    // Bytes are counted into this worker's slots as they flow (lasting_state.hpp).
    auto& service_bytes = service_traffic.bytes.slot(environment.worker);
    auto& server_bytes = server_traffic.bytes.slot(environment.worker);

    const std::uint64_t hello_bytes = hello ? hello->bytes.size() : 0;
    if (hello_bytes > 0) {
        const bool forwarded = co_await forward_hello(backend, *hello, ByteSink{&service_bytes.in, &server_bytes.in});
        if (!forwarded) {
            client.close(ignored);
            backend.close(ignored);
            if (upstream->persisted) service.source_ip_table->release(key, std::chrono::steady_clock::now());
            if (access_log != conf::AccessLog::off) {
                log_close(log::Level::warn, service, client_endpoint, server.config.name, sni_of(hello.get(), nullptr),
                          "write_error", nullptr);
            }
            co_return;
        }
    }

    Transfer transfer(StreamSide{&client, client_tls.get()}, StreamSide{&backend, upstream->tls.get()},
                      environment.pump_tools, ByteSink{&service_bytes.in, &server_bytes.in},
                      ByteSink{&service_bytes.out, &server_bytes.out});
    // From here the worker closes the session once nothing moved for idle_s
    // (or its server drained past drain_timeout_s).
    live_session.server = &server;
    live_session.backend = &backend;
    live_session.activity = &transfer.activity();
    live_session.idle = std::chrono::seconds(service.config.timeouts.idle_s);
    environment.registry.reschedule(live_session);
    co_await transfer.async_run(net::as_tuple(net::use_awaitable));
    const PumpEnd& upload_end = transfer.upload_end();
    const PumpEnd& download_end = transfer.download_end();
    const std::uint64_t bytes_in = hello_bytes + transfer.bytes_in(), bytes_out = transfer.bytes_out();

    std::string reason;
    if (live_session.closed_because) {
        reason = live_session.closed_because;
    } else if (upload_end.kind == PumpEnd::Kind::eof && download_end.kind == PumpEnd::Kind::eof) {
        reason = "closed";
    } else {
        reason = describe(upload_end, "client_eof");
        reason += '/';
        reason += describe(download_end, "server_eof");
    }
    client.close(ignored);
    backend.close(ignored);

    if (upstream->persisted) service.source_ip_table->release(key, std::chrono::steady_clock::now());
    if (access_log == conf::AccessLog::off || (access_log == conf::AccessLog::errors && reason == "closed")) co_return;
    const CloseFigures figures{bytes_in, bytes_out,
                               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
                                   .count()};
    log_close(log::Level::info, service, client_endpoint, server.config.name, sni_of(hello.get(), client_tls.get()),
              reason, &figures);
}

}  // namespace castellan::proxy
