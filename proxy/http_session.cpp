#include "proxy/http_session.hpp"

#include "persistence/rts_channel_start.hpp"
#include "proxy/http_body.hpp"
#include "proxy/http_head.hpp"
#include "proxy/log.hpp"
#include "proxy/session_common.hpp"
#include "proxy/stream_io.hpp"
#include "proxy/transfer.hpp"
#include "proxy/upstream_connect.hpp"
#include "tls/tls_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>

#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <array>
#include <span>
#include <chrono>
#include <string_view>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace castellan::proxy {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using namespace net::experimental::awaitable_operators;

namespace {

constexpr auto use = net::as_tuple(net::use_awaitable);
// A real server's response head may be this large (the client's limit is the
// config's http.max_header_bytes).
constexpr std::uint32_t response_header_limit = 64 * 1024;

http::BodyFraming request_framing(const RequestParser& parser) {
    if (parser.chunked()) return {http::Framing::chunked, 0};
    // Content-Length: 0 too: a POST without one may get 411.
    if (auto length = parser.content_length()) return {http::Framing::content_length, *length};
    return {};
}

// What the client asked, for the response side.
struct RequestFacts {
    bool head_method = false;
    unsigned version = 11;
    bool keep_alive = true;
    std::string set_cookie;  // a Set-Cookie line for the final response, or empty
    bool continue_sent = false;  // castellan answered its Expect: 100-continue itself
};

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The persistence cookie a request carries, when it is valid and unexpired
// (the first one of that name wins).
std::optional<persistence::CookieCodec::Decoded> persistence_cookie(const http::RequestHead& head,
                                                                    const ServiceRuntime& service,
                                                                    std::int64_t now_unix) {
    const auto [first, last] = head.equal_range(bhttp::field::cookie);
    for (auto field = first; field != last; ++field) {
        if (auto value = persistence::find_cookie(field->value(), service.config.persistence.cookie_name)) {
            return service.cookie_codec->decode(*value, now_unix);
        }
    }
    return std::nullopt;
}

// The Set-Cookie line a response needs so that the client's next request
// names `server`: none when its valid cookie does already (and, for a cookie
// with an expiry, has more than half its time left).
std::string cookie_update(const ServiceRuntime& service, const std::optional<persistence::CookieCodec::Decoded>& cookie,
                          const RealServerRuntime& server, bool secure, std::int64_t now_unix) {
    const conf::Persistence& settings = service.config.persistence;
    if (cookie && cookie->server == server.config.name) {
        if (!settings.cookie_timeout_s) return {};
        if (cookie->expires_unix && (*cookie->expires_unix - now_unix) * 2 >= *settings.cookie_timeout_s) return {};
    }
    std::optional<std::int64_t> expires;
    if (settings.cookie_timeout_s) expires = now_unix + *settings.cookie_timeout_s;
    return http::set_cookie_field(settings.cookie_name, service.cookie_codec->encode(server.config.name, expires),
                                  secure, expires, settings.cookie_timeout_s.value_or(0));
}

// How one exchange ended.
struct Exchange {
    enum class Result { done, upgrade, bad_gateway, client_gone, server_gone } result = Result::done;
    unsigned status = 0;
    bool keep_alive = false;
    std::uint64_t bytes_out = 0;  // written to the client
    bool upload_done = false;
    bool bad_request_body = false;  // the client's body framing was invalid: its fault, a 400
    bool client_hung_up = false;    // the client closed or failed before the response was through
    bool watching_client = false;   // the upload side waits for the client to hang up
    bool offered_connection_auth = false;  // a 401 offering NTLM or Negotiate (http_head.hpp)
};

// Whether the client is still there, by what its socket shows without taking
// it: `hung_up` for an EOF, a close_notify or an error; `present` for bytes
// (the next request, pipelined); `unknown` for no news (a TLS record not
// whole yet).
enum class ClientNews { unknown, present, hung_up };
ClientNews peek_client(StreamSide client) {
    char byte;
    if (client.tls) {
        switch (tls::tls_peek(client.tls, &byte, 1).status) {
            case tls::TlsIo::Status::done: return ClientNews::present;
            case tls::TlsIo::Status::want_read: return ClientNews::unknown;
            // A peer that wants a write in the middle of a read (renegotiation
            // is refused) is one to stop watching, not to spin on.
            case tls::TlsIo::Status::want_write: return ClientNews::present;
            case tls::TlsIo::Status::closed:
            case tls::TlsIo::Status::failed: return ClientNews::hung_up;
        }
    }
    const ssize_t got = ::recv(client.socket->native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (got > 0) return ClientNews::present;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return ClientNews::unknown;
    return ClientNews::hung_up;
}

// After the request body, while the response is awaited: a client that hangs
// up (an Outlook closing a channel, a phone dropping its ActiveSync Ping) ends
// the server's connection too, instead of leaving it to wait out idle_s. Bytes
// instead are the next pipelined request, left for the next head; the watch
// then ends. The download side cancels the watch when the response is through.
net::awaitable<void> watch_for_hang_up(Inbound& from_client, StreamSide server, Exchange& exchange) {
    if (from_client.buffer.size() > 0) co_return;
    if (from_client.side.tls && SSL_has_pending(from_client.side.tls)) co_return;
    exchange.watching_client = true;
    for (;;) {
        auto [error] = co_await from_client.side.socket->async_wait(tcp::socket::wait_read, use);
        if (!exchange.watching_client) co_return;  // the response is through
        const ClientNews news = error ? ClientNews::hung_up : peek_client(from_client.side);
        if (news == ClientNews::unknown) continue;
        exchange.watching_client = false;
        if (news == ClientNews::present) co_return;
        exchange.client_hung_up = true;
        boost::system::error_code ignored;
        server.socket->shutdown(tcp::socket::shutdown_both, ignored);
        server.socket->cancel(ignored);
        co_return;
    }
}

// The request's body, client to server. On failure it shuts the server's
// connection down, so that the response side stops too, whether it waits
// already or has yet to start.
net::awaitable<void> upload(Inbound& from_client, RequestParser& request, StreamSide to, const PumpTools& tools,
                            bool watch_client, Exchange& exchange) {
    std::uint64_t written = 0;
    BodyEnd end = BodyEnd::done;
    // A request without Content-Length or chunked coding has no body: its
    // parser is done with the head.
    if (request.chunked()) {
        end = co_await relay_chunked_body(from_client, to, true, written);
    } else if (!request.is_done()) {
        end = co_await relay_counted_body(from_client, request.content_length().value_or(0), to, tools, written);
    }
    exchange.upload_done = end == BodyEnd::done;
    exchange.bad_request_body = end == BodyEnd::bad_framing;
    exchange.client_hung_up = end == BodyEnd::read_failed;
    if (end != BodyEnd::done) {
        boost::system::error_code ignored;
        to.socket->shutdown(tcp::socket::shutdown_both, ignored);
        to.socket->cancel(ignored);
        co_return;
    }
    if (watch_client) co_await watch_for_hang_up(from_client, to, exchange);
}

// The response, server to client: interim 1xx heads passed on, then the final
// head and its body. A response complete before the request body is stops
// the upload (the client connection then closes).
net::awaitable<void> pass_response(Inbound& from_server, StreamSide to, const RequestFacts& request,
                                   const PumpTools& tools, Exchange& exchange) {
    for (;;) {
        ResponseParser response;
        response.header_limit(response_header_limit);
        response.body_limit(boost::none);
        if (request.head_method) response.skip(true);
        const boost::system::error_code error = co_await read_head(from_server, response);
        if (error) {
            exchange.result = Exchange::Result::bad_gateway;
            co_return;
        }
        const auto& head = response.get().base();
        const unsigned status = head.result_int();
        // An interim 100 is not the request's status: one that never gets a
        // final answer logs 0.
        if (status >= 200 || status == 101) exchange.status = status;
        if (status == 101) {
            const std::string text = http::forwarded_response(head, {}, true, request.version);
            const bool written = co_await write_all(to, net::buffer(text));
            exchange.result = written ? Exchange::Result::upgrade : Exchange::Result::client_gone;
            exchange.bytes_out += text.size();
            co_return;
        }
        if (status == 100 && request.continue_sent) continue;  // the client had castellan's own
        if (status < 200) {
            // 100 Continue and friends: passed on, then the final response follows.
            const std::string text = http::forwarded_response(head, {}, true, request.version);
            if (!co_await write_all(to, net::buffer(text))) {
                exchange.result = Exchange::Result::client_gone;
                co_return;
            }
            exchange.bytes_out += text.size();
            continue;
        }
        exchange.offered_connection_auth = http::offers_connection_auth(head);
        const bool body_follows = !(request.head_method || exchange.status == 204 || exchange.status == 304);
        http::BodyFraming framing;
        if (response.chunked() && request.version >= 11) {
            framing = {http::Framing::chunked, 0};
        } else if (response.chunked()) {
            // An HTTP/1.0 client knows no chunked coding: the body goes to it
            // decoded, ending with the connection.
            framing = {http::Framing::until_close, 0};
        } else if (auto length = response.content_length()) {
            framing = {http::Framing::content_length, *length};
        } else if (body_follows) {
            framing = {http::Framing::until_close, 0};
        }
        // A request body still coming when the final response is (a 401 or 413
        // to Expect: 100-continue): its rest cannot be told from a next request,
        // so the connection ends, and the client is told.
        exchange.keep_alive = request.keep_alive && response.keep_alive() &&
                              framing.framing != http::Framing::until_close && exchange.upload_done;
        const std::string text =
            http::forwarded_response(head, framing, exchange.keep_alive, request.version, request.set_cookie);
        // The body bytes that came with the head go out with it, in one write
        // (a small response is then one send(2), as it came in one recv(2)).
        std::size_t with_head = 0;
        const bool counted = body_follows && !response.is_done() && !response.chunked();
        if (counted) {
            with_head = from_server.buffer.size();
            if (framing.framing == http::Framing::content_length) {
                with_head = static_cast<std::size_t>(std::min<std::uint64_t>(with_head, framing.length));
            }
        }
        const std::array<net::const_buffer, 2> pieces{net::buffer(text),
                                                      net::buffer(from_server.buffer.data().data(), with_head)};
        if (!co_await write_all(to, std::span<const net::const_buffer>(pieces))) {
            exchange.result = Exchange::Result::client_gone;
            co_return;
        }
        exchange.bytes_out += text.size() + with_head;
        from_server.buffer.consume(with_head);
        from_server.consumed += with_head;
        if (body_follows && !response.is_done()) {
            std::uint64_t written = 0;
            BodyEnd end = BodyEnd::done;
            if (response.chunked()) {
                end = co_await relay_chunked_body(from_server, to, framing.framing == http::Framing::chunked, written);
            } else if (framing.framing != http::Framing::content_length || framing.length > with_head) {
                // A length, or none: the body ends with the server's connection.
                const std::optional<std::uint64_t> length =
                    framing.framing == http::Framing::content_length ? std::optional(framing.length - with_head)
                                                                     : std::nullopt;
                end = co_await relay_counted_body(from_server, length, to, tools, written);
            }
            exchange.bytes_out += written;
            if (end != BodyEnd::done) {
                // Too late for a 502: the head is out, the connection ends.
                exchange.result = end == BodyEnd::write_failed ? Exchange::Result::client_gone
                                                               : Exchange::Result::server_gone;
                exchange.keep_alive = false;
                co_return;
            }
        }
        if (!exchange.upload_done) {
            // The server answered before the whole request body: what is left of
            // it cannot be told from a next request, so the connection ends; stop
            // the upload wherever it waits.
            exchange.keep_alive = false;
            boost::system::error_code ignored;
            to.socket->cancel(ignored);
            from_server.side.socket->cancel(ignored);
        }
        co_return;
    }
}

// The response side of an exchange; when it is through, the upload side's
// watch for the client hanging up ends.
net::awaitable<void> download(Inbound& from_server, StreamSide to, const RequestFacts& request,
                              const PumpTools& tools, Exchange& exchange) {
    co_await pass_response(from_server, to, request, tools, exchange);
    if (exchange.watching_client) {
        exchange.watching_client = false;
        boost::system::error_code ignored;
        to.socket->cancel(ignored);
    }
}

// The virtual connection cookie at the start of an Outlook Anywhere channel's
// body (rpc_http), read into the client's buffer and left there: the body is
// forwarded whole, from its first byte, once the server is chosen. Nullopt when
// the body does not start with a channel-opening RTS PDU (placed another way
// then); `client_gone` when the client closed or failed first.
struct ChannelStart {
    std::optional<persistence::VirtualConnectionCookie> cookie;
    bool client_gone = false;
};
net::awaitable<ChannelStart> read_channel_start(Inbound& from_client, std::uint64_t body_length) {
    ChannelStart out;
    for (;;) {
        const auto data = from_client.buffer.data();
        const std::size_t usable = static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), body_length));
        const auto start = persistence::read_rts_channel_start(
            std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(data.data()), usable));
        if (start.status == persistence::RtsChannelStart::Status::found) {
            out.cookie = start.cookie;
            co_return out;
        }
        if (start.status == persistence::RtsChannelStart::Status::not_channel_start || start.need > body_length) {
            co_return out;
        }
        if (co_await read_more(from_client)) {
            out.client_gone = true;
            co_return out;
        }
    }
}

// One `request` line (INTERFACE.md): a plain function, so that its temporaries
// take no room in the session's frame.
void log_request(conf::AccessLog access_log, const ServiceRuntime& service, const tcp::endpoint& client,
                 std::string_view server, std::string_view method, std::string_view target, unsigned status,
                 std::uint64_t bytes_in, std::uint64_t bytes_out, std::chrono::steady_clock::time_point started,
                 std::string_view reason) {
    if (access_log == conf::AccessLog::off) return;
    // Outlook Anywhere ends a session by closing its two channel requests
    // (RPC_IN_DATA, RPC_OUT_DATA) before their 1 GiB is through: for them a
    // client's close is the normal end, not an error to report.
    const bool normal_end = reason == "client_closed" && (method == "RPC_IN_DATA" || method == "RPC_OUT_DATA");
    const bool abnormal = status >= 500 || (!reason.empty() && !normal_end);
    if (access_log == conf::AccessLog::errors && !abnormal) return;
    const auto duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    log::Line line(abnormal ? log::Level::warn : log::Level::info, "request");
    line.kv("vs", service.config.name)
        .kv("client", endpoint_text(client))
        .kv("server", server)
        .kv("method", method.empty() ? std::string_view("-") : method)
        .kv("path", target.empty() ? std::string_view("-") : http::path_of(target))
        .kv("status", static_cast<std::uint64_t>(status))
        .kv("bytes_in", bytes_in)
        .kv("bytes_out", bytes_out)
        .kv("duration_ms", static_cast<std::int64_t>(duration));
    if (!reason.empty()) line.kv("reason", reason);
}

// Whether a kept server connection ended while it idled between requests: a
// server says nothing then, so anything readable (EOF, a TLS close_notify, an
// error) means it is gone.
bool server_hung_up(tcp::socket& socket) {
    char byte;
    const ssize_t got = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

// Whether the server's side is looked at before a request goes on a kept
// connection (server_hung_up(), one recv) can be left out: a body-less
// idempotent request that finds the connection closed is sent again anyway
// (the retry in run_http_session), and a connection busy a moment ago has not
// idled into the server's keep-alive timeout, nor had time to take anything
// unasked from it.
bool may_resend(const RequestParser& request, const http::RequestHead& head,
                std::chrono::steady_clock::time_point upstream_last_answered) {
    constexpr auto recently = std::chrono::seconds(1);
    return request.is_done() && http::is_idempotent(head.method()) &&
           std::chrono::steady_clock::now() - upstream_last_answered < recently;
}

// Whether the client is watched for hanging up while its response is awaited
// (one more epoll registration per request): for what can be held long by the
// server (an ActiveSync Ping, an Outlook Anywhere channel, EWS notifications:
// all with a body, or a method that is not idempotent). A body-less GET or
// HEAD is answered at once; a client gone meanwhile is found at the response.
bool watches_client(const RequestParser& request, const http::RequestHead& head) {
    return !request.is_done() || !http::is_idempotent(head.method());
}

// castellan's own answer, then the end of the connection.
net::awaitable<std::uint64_t> answer_error(StreamSide client, bhttp::status status) {
    const std::string text = http::error_response(status);
    co_await write_all(client, net::buffer(text));
    co_return text.size();
}

// The status castellan answers a request head that did not parse, or none
// (the client closed or timed out: nobody to answer).
std::optional<bhttp::status> status_for_head_error(const boost::system::error_code& error) {
    if (error == bhttp::error::header_limit) return bhttp::status::request_header_fields_too_large;
    if (error.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
        return bhttp::status::bad_request;
    }
    return std::nullopt;
}

}  // namespace

net::awaitable<void> run_http_session(tcp::socket client, tcp::endpoint client_endpoint,
                                      std::shared_ptr<const Runtime> runtime, ServiceRuntime& service,
                                      SessionEnvironment environment) {
    const conf::AccessLog access_log = runtime->config.access_log;
    CountedScope live(environment.live_sessions);
    auto& service_traffic = service.state->traffic;
    CountedScope service_active(service_traffic.active);
    service_traffic.total.fetch_add(1, std::memory_order_relaxed);
    const auto key = client_key_of(client_endpoint);

    LiveSession live_session(&service, &client);
    RegisteredSession registered(environment.registry, live_session);
    SessionRegistry& registry = environment.registry;

    tls::SslPtr client_tls;  // declared after `client`: freed before it
    if (service.server_tls) {
        registry.begin_phase(live_session, std::chrono::steady_clock::now(),
                             std::chrono::milliseconds(service.config.timeouts.handshake_ms), "handshake_timeout");
        client_tls = co_await accept_tls(client, client_endpoint, service, live_session, conf::AccessLog::off);
        if (!client_tls) co_return;
        registry.end_phase(live_session);
    }

    // Idle between requests and while bodies stream: one deadline pushed by
    // bytes either way (the registry reads `activity` when its deadline comes).
    Activity activity;
    live_session.activity = &activity;
    live_session.idle = std::chrono::seconds(service.config.timeouts.idle_s);
    registry.reschedule(live_session);

    auto& service_bytes = service_traffic.bytes.slot(environment.worker);
    const StreamSide client_side{&client, client_tls.get()};
    Inbound from_client{client_side, ByteSink{&service_bytes.in, nullptr}, &activity};
    std::unique_ptr<UpstreamConnection> upstream;
    std::optional<Inbound> from_server;
    const std::string client_address = client_endpoint.address().to_string();
    const bool forwarded_for = service.config.http.x_forwarded_for;
    boost::system::error_code ignored;
    bool first_request = true;
    const bool rpc_http = service.config.persistence.type == conf::PersistenceKind::rpc_http;
    // The last response on the kept server connection was a 401 offering NTLM
    // or Negotiate: the next request stays on it, whatever it names.
    bool auth_pinned = false;
    // When the kept server connection last finished a response.
    std::chrono::steady_clock::time_point upstream_last_answered{};
    // Gives up the kept server connection: its server closed it, or the next
    // request belongs on another server.
    const auto drop_upstream = [&] {
        if (upstream->persisted) service.source_ip_table->release(key, std::chrono::steady_clock::now());
        live_session.server = nullptr;
        live_session.backend = nullptr;
        from_server.reset();
        upstream.reset();
    };

    for (;;) {
        // The first head's deadline starts at accept (a client that connects
        // and says nothing is cut); a later one's with its first byte, so that
        // a kept-alive connection idles under idle_s.
        const auto header_time = std::chrono::milliseconds(service.config.timeouts.client_header_ms);
        from_client.bytes = 0;
        from_client.consumed = 0;
        if (first_request) {
            registry.begin_phase(live_session, std::chrono::steady_clock::now(), header_time, "client_header_timeout");
        } else if (from_client.buffer.size() == 0 && !(client_tls && SSL_has_pending(client_tls.get()))) {
            // A read, not a wait for readability: Asio registers a wait anew
            // with epoll (one epoll_ctl per request), while a read waits on the
            // registration the socket has, and its bytes are the head's.
            if (co_await read_more(from_client)) break;
        }
        first_request = false;
        const auto started = std::chrono::steady_clock::now();
        if (live_session.phase_deadline == std::chrono::steady_clock::time_point::max()) {
            registry.begin_phase(live_session, started, header_time, "client_header_timeout");
        }
        RequestParser request;
        request.header_limit(static_cast<std::uint32_t>(service.config.http.max_header_bytes));
        request.body_limit(boost::none);
        const boost::system::error_code head_error = co_await read_head(from_client, request);
        registry.end_phase(live_session);
        const std::string_view server_name = upstream ? std::string_view(upstream->server->config.name) : "-";
        if (head_error) {
            // Closed between requests (or, first, connected and closed): no request.
            if (from_client.bytes == 0 && from_client.buffer.size() == 0 && !live_session.closed_because) break;
            const auto status = status_for_head_error(head_error);
            std::uint64_t sent = 0;
            if (status) {
                sent = co_await answer_error(client_side, *status);
                service.state->http.count_response(static_cast<unsigned>(*status));
            }
            const char* reason = live_session.closed_because ? live_session.closed_because
                                 : status                     ? "bad_request"
                                                              : "client_closed";
            log_request(access_log, service, client_endpoint, server_name, {}, {}, status ? static_cast<unsigned>(*status) : 0,
                        from_client.consumed, sent, started, reason);
            break;
        }
        const auto& head = request.get().base();
        if (auto refusal = http::check_request(head, request.chunked())) {
            const std::uint64_t sent = co_await answer_error(client_side, refusal->status);
            service.state->http.count_response(static_cast<unsigned>(refusal->status));
            log_request(access_log, service, client_endpoint, server_name, head.method_string(), head.target(),
                        static_cast<unsigned>(refusal->status), from_client.consumed, sent, started, refusal->reason);
            break;
        }

        // Cookie persistence: the first request's cookie chooses the server of
        // the connection; any request whose cookie does not name it gets one.
        const std::int64_t now_unix = unix_now();
        std::optional<persistence::CookieCodec::Decoded> cookie;
        if (service.cookie_codec) cookie = persistence_cookie(head, service, now_unix);
        std::optional<std::size_t> wanted;  // the server this request names
        if (cookie) wanted = service.index_of(cookie->server);
        std::optional<std::uint64_t> pairing_key;
        std::uint64_t continue_bytes = 0;
        bool continue_sent = false;

        // rpc_http routes each request: its valid cookie, else (an Outlook
        // Anywhere channel) the virtual connection cookie at the start of its
        // body; a request that names neither stays on the kept server
        // connection, or gets one by the fallback. Not while a connection-bound
        // authentication is under way.
        if (rpc_http && !(auth_pinned && upstream)) {
            if (wanted && !service.servers[*wanted]->accepts_new_clients(std::chrono::steady_clock::now())) {
                wanted.reset();
            }
            const auto length = request.content_length();
            if (!wanted && http::is_rpc_channel(head) && !request.chunked() && length && *length > 0) {
                if (http::expects_continue(head) && from_client.buffer.size() == 0) {
                    // The client sends no body before a 100, and the body is
                    // what places this request: castellan answers it.
                    static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
                    continue_sent = co_await write_all(client_side, net::buffer(continue_line));
                    continue_bytes = continue_line.size();
                }
                registry.begin_phase(live_session, std::chrono::steady_clock::now(), header_time,
                                     "client_body_timeout");
                ChannelStart start;
                if (!http::expects_continue(head) || continue_sent || from_client.buffer.size() > 0) {
                    start = co_await read_channel_start(from_client, *length);
                } else {
                    start.client_gone = true;  // the 100 could not be written
                }
                registry.end_phase(live_session);
                if (start.client_gone) {
                    const char* reason = live_session.closed_because ? live_session.closed_because : "client_closed";
                    log_request(access_log, service, client_endpoint, server_name, head.method_string(),
                                head.target(), 0, from_client.consumed, continue_bytes, started, reason);
                    break;
                }
                if (start.cookie) {
                    pairing_key = persistence::hash_virtual_connection(*start.cookie);
                    wanted = paired_server(service, *pairing_key);
                }
            }
            if (upstream && wanted && service.index_of(upstream->server->config.name) != wanted) drop_upstream();
        }

        // A request without a body that met a kept server connection closing
        // under it (the server's keep-alive timeout racing the request: nothing
        // came back) is sent once more on a new connection to the same server, if
        // it is idempotent (RFC 9110 9.2.2, RFC 9112 9.3.1), instead of a 502.
        Exchange exchange;
        std::string_view server_now;
        bool no_server = false;
        for (int attempt = 0;; ++attempt) {
            // A kept server connection the server closed while it idled is
            // replaced, on the same server while it takes clients.
            std::optional<std::size_t> preferred;
            if (upstream && (attempt > 0 || (!may_resend(request, head, upstream_last_answered) &&
                                               server_hung_up(upstream->socket)))) {
                preferred = service.index_of(upstream->server->config.name);
                drop_upstream();
            }
            const bool kept_connection = upstream != nullptr;
            if (!upstream) {
                const char* failure = nullptr;
                if (!preferred) preferred = wanted;
                upstream = co_await connect_upstream(service, key, client_endpoint.address(), failure, preferred,
                                                     pairing_key);
                if (!upstream) {
                    const std::uint64_t sent = co_await answer_error(client_side, bhttp::status::service_unavailable);
                    service.state->http.count_response(503);
                    log_request(access_log, service, client_endpoint, "-", head.method_string(), head.target(), 503,
                                from_client.consumed, sent, started, failure);
                    no_server = true;
                    break;
                }
                auto& server = *upstream->server;
                server.state->traffic.total.fetch_add(1, std::memory_order_relaxed);
                auto& server_bytes = server.state->traffic.bytes.slot(environment.worker);
                from_client.sink.server = &server_bytes.in;
                from_server.emplace(StreamSide{&upstream->socket, upstream->tls.get()},
                                    ByteSink{&service_bytes.out, &server_bytes.out}, &activity);
                live_session.server = &server;
                live_session.backend = &upstream->socket;
                registry.reschedule(live_session);  // a server draining since the choice
            }
            const StreamSide server_side = from_server->side;
            server_now = upstream->server->config.name;

            const http::BodyFraming framing = request_framing(request);
            const std::string forwarded =
                http::forwarded_request(head, framing, forwarded_for, client_address, client_tls != nullptr,
                                        upstream->server->config.address.to_string());
            RequestFacts facts{head.method() == bhttp::verb::head, head.version(), request.keep_alive(), {},
                               continue_sent};
            if (service.cookie_codec) {
                facts.set_cookie = cookie_update(service, cookie, *upstream->server, client_tls != nullptr, now_unix);
            }
            exchange = Exchange{};
            from_server->bytes = 0;
            const bool head_sent = co_await write_all(server_side, net::buffer(forwarded));
            if (!head_sent) {
                exchange.result = Exchange::Result::bad_gateway;
            } else {
                const bool watch_client = watches_client(request, head);
                if (request.is_done() && !watch_client) {
                    // No body to send and nothing to watch: the response alone,
                    // without the two coroutines and the group state of `&&`.
                    exchange.upload_done = true;
                    co_await download(*from_server, client_side, facts, environment.pump_tools, exchange);
                } else {
                    co_await (upload(from_client, request, server_side, environment.pump_tools, watch_client, exchange) &&
                              download(*from_server, client_side, facts, environment.pump_tools, exchange));
                }
            }
            const bool retry = attempt == 0 && kept_connection && exchange.result == Exchange::Result::bad_gateway &&
                               !exchange.client_hung_up && !live_session.closed_because && from_server->bytes == 0 &&
                               request.is_done() && http::is_idempotent(head.method());
            if (!retry) break;
        }
        if (no_server) break;
        exchange.bytes_out += continue_bytes;
        upstream_last_answered = std::chrono::steady_clock::now();
        auth_pinned = exchange.offered_connection_auth && exchange.keep_alive;
        if (exchange.client_hung_up) {
            // Whatever the server side made of it, nobody is left to answer.
            exchange.result = Exchange::Result::client_gone;
            exchange.keep_alive = false;
        } else if (exchange.bad_request_body && exchange.bytes_out == 0) {
            // The client's body framing failed before any answer: its fault.
            exchange.bytes_out += co_await answer_error(client_side, bhttp::status::bad_request);
            exchange.status = 400;
            exchange.keep_alive = false;
            exchange.result = Exchange::Result::done;
        } else if (exchange.result == Exchange::Result::bad_gateway) {
            exchange.bytes_out += co_await answer_error(client_side, bhttp::status::bad_gateway);
            exchange.status = 502;
            exchange.keep_alive = false;
        }
        service.state->http.count_response(exchange.status);
        const char* reason = live_session.closed_because                      ? live_session.closed_because
                             : exchange.result == Exchange::Result::client_gone ? "client_closed"
                             : exchange.result == Exchange::Result::server_gone ? "server_closed"
                                                                                : "";
        log_request(access_log, service, client_endpoint, server_now, head.method_string(), head.target(),
                    exchange.status, from_client.consumed, exchange.bytes_out, started, reason);

        if (exchange.result == Exchange::Result::upgrade) {
            // A 101: from here, bytes both ways untouched, what each side sent
            // early first.
            const auto early_up = from_client.buffer.data();
            const auto early_down = from_server->buffer.data();
            const StreamSide server_side = from_server->side;
            const bool flushed_up = co_await write_all(server_side, net::const_buffer(early_up));
            if (!flushed_up) break;
            const bool flushed_down = co_await write_all(client_side, net::const_buffer(early_down));
            if (!flushed_down) break;
            Transfer transfer(client_side, server_side, environment.pump_tools, from_client.sink, from_server->sink);
            live_session.activity = &transfer.activity();
            co_await transfer.async_run(net::as_tuple(net::use_awaitable));
            live_session.activity = &activity;
            registry.reschedule(live_session);  // an older `last` than the transfer's
            break;
        }
        // A response that ended before its request body (upload_done false):
        // the rest of that body cannot be told from a next request.
        if (exchange.result != Exchange::Result::done || !exchange.upload_done || !exchange.keep_alive ||
            live_session.closed_because) {
            break;
        }
    }

    client.close(ignored);
    if (upstream) {
        upstream->socket.close(ignored);
        if (upstream->persisted) service.source_ip_table->release(key, std::chrono::steady_clock::now());
    }
}

}  // namespace castellan::proxy
