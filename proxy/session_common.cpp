#include "proxy/session_common.hpp"

#include <fmt/format.h>

#include <span>

namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

persistence::ClientKey client_key_of(const tcp::endpoint& endpoint) {
    auto address = endpoint.address();
    if (address.is_v4()) {
        auto bytes = address.to_v4().to_bytes();
        return persistence::client_key_from_v4(std::span<const std::uint8_t, 4>(bytes));
    }
    auto bytes = address.to_v6().to_bytes();
    return persistence::client_key_from_v6(std::span<const std::uint8_t, 16>(bytes));
}

std::string endpoint_text(const tcp::endpoint& endpoint) {
    auto address = endpoint.address();
    // fmt rather than operator+ chains, on which g++ 12 warns falsely (-Wrestrict).
    if (address.is_v6()) return fmt::format("[{}]:{}", address.to_string(), endpoint.port());
    return fmt::format("{}:{}", address.to_string(), endpoint.port());
}

void log_close(log::Level level, const ServiceRuntime& service, const tcp::endpoint& client, std::string_view server,
               const std::optional<std::string_view>& sni, std::string_view reason, const CloseFigures* figures) {
    log::Line line(level, "close");
    line.kv("vs", service.config.name).kv("client", endpoint_text(client)).kv("server", server);
    if (sni) line.kv("sni", *sni);
    if (figures) {
        line.kv("bytes_in", figures->bytes_in).kv("bytes_out", figures->bytes_out).kv("duration_ms", figures->duration_ms);
    }
    line.kv("reason", reason);
}

void log_handshake_failure(const ServiceRuntime& service, const tcp::endpoint& client,
                           std::optional<std::string_view> sni, tls::HandshakeFailure failure, std::string_view detail,
                           std::string_view close_reason, conf::AccessLog close_lines) {
    service.state->tls.count_failure(failure);
    log::Line(log::Level::warn, "tls_handshake_failed")
        .kv("vs", service.config.name)
        .kv("client", endpoint_text(client))
        .kv("sni", sni.value_or("-"))
        .kv("reason", tls::to_string(failure))
        .kv("detail", detail);
    if (close_lines != conf::AccessLog::off) {
        log_close(log::Level::warn, service, client, "-", sni.value_or("-"), close_reason, nullptr);
    }
}

net::awaitable<tls::SslPtr> accept_tls(tcp::socket& client, const tcp::endpoint& client_endpoint,
                                       const ServiceRuntime& service, const LiveSession& live,
                                       conf::AccessLog close_lines) {
    tls::SslPtr session = service.server_tls->new_session(client);
    if (!session) {
        log::Line(log::Level::error, "tls_session_failed").kv("vs", service.config.name).kv("error", "out of memory");
        co_return nullptr;
    }
    std::string server_name;  // what the ClientHello asked for, kept for a failure's log
    tls::ServerTls::record_server_name(session.get(), &server_name);
    tls::HandshakeResult result = co_await tls::handshake(client, session.get());
    tls::ServerTls::record_server_name(session.get(), nullptr);
    if (result.ok()) {
        auto& counter = SSL_session_reused(session.get()) ? service.state->tls.resumed : service.state->tls.full;
        counter.fetch_add(1, std::memory_order_relaxed);
        co_return session;
    }
    if (live.closed_because) {
        result.failure = tls::HandshakeFailure::timeout;
        result.detail = "no complete handshake within the handshake timeout";
    }
    const char* close_reason = result.failure == tls::HandshakeFailure::timeout ? "handshake_timeout"
                                                                                : "tls_handshake_failed";
    log_handshake_failure(service, client_endpoint, server_name.empty() ? "-" : std::string_view(server_name),
                          result.failure, result.detail, close_reason, close_lines);
    co_return nullptr;
}

}  // namespace castellan::proxy
