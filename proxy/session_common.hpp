// What the tcp and http sessions share: the client's persistence key and log
// form, a scoped counter, the `close` line, and the TLS handshake with a client.
#pragma once

#include "conf/config.hpp"
#include "persistence/client_key.hpp"
#include "proxy/log.hpp"
#include "proxy/runtime.hpp"
#include "proxy/session_registry.hpp"
#include "tls/openssl_handles.hpp"
#include "tls/tls_io.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace castellan::proxy {

persistence::ClientKey client_key_of(const boost::asio::ip::tcp::endpoint& endpoint);

// `IP:PORT`, `[IPv6]:PORT`: the form of logs.
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& endpoint);

// Holds a count up for the life of a scope.
template <typename Counter>
class CountedScope {
public:
    explicit CountedScope(std::atomic<Counter>& counter) : counter_(counter) {
        counter_.fetch_add(1, std::memory_order_relaxed);
    }
    ~CountedScope() { counter_.fetch_sub(1, std::memory_order_relaxed); }
    CountedScope(const CountedScope&) = delete;
    CountedScope& operator=(const CountedScope&) = delete;

private:
    std::atomic<Counter>& counter_;
};

// What a `close` line says beyond its names, for a connection that reached a
// real server.
struct CloseFigures {
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::int64_t duration_ms = 0;
};

// One `close` line (INTERFACE.md): vs client server [sni] [bytes_in bytes_out
// duration_ms] reason. `sni` only for TLS services. A plain function, so that
// its temporaries take no room in a session's coroutine frame, which lives as
// long as the connection.
void log_close(log::Level level, const ServiceRuntime& service, const boost::asio::ip::tcp::endpoint& client,
               std::string_view server, const std::optional<std::string_view>& sni, std::string_view reason,
               const CloseFigures* figures);

// One `tls_handshake_failed` line, the failure counted by reason, and (unless
// `close_lines` is off) the connection's `close` line with `close_reason`.
void log_handshake_failure(const ServiceRuntime& service, const boost::asio::ip::tcp::endpoint& client,
                           std::optional<std::string_view> sni, tls::HandshakeFailure failure, std::string_view detail,
                           std::string_view close_reason, conf::AccessLog close_lines);

// A terminating service's first step: the client's TLS handshake, under the
// handshake deadline the session registered (`live`). Null when it failed (then
// logged and counted here; `close_lines` as for log_handshake_failure). Its own
// coroutine, so that the handshake's state is gone from memory once done.
boost::asio::awaitable<tls::SslPtr> accept_tls(boost::asio::ip::tcp::socket& client,
                                               const boost::asio::ip::tcp::endpoint& client_endpoint,
                                               const ServiceRuntime& service, const LiveSession& live,
                                               conf::AccessLog close_lines);

}  // namespace castellan::proxy
