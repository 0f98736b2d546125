#include "healthcheck/checker.hpp"

#include "healthcheck/dcerpc_bind.hpp"
#include "healthcheck/response_parsers.hpp"
#include "tls/tls_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <exception>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

namespace castellan::healthcheck {
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace net::experimental::awaitable_operators;

namespace {

constexpr auto use = net::as_tuple(net::use_awaitable);

// A status line or an SMTP banner longer than this is not one: the check stops
// reading instead of buffering whatever a misbehaving server sends.
constexpr std::size_t max_answer_bytes = 8192;

// After a good banner, how long QUIT may wait for the server's 221 (within the
// check's own deadline). Only politeness: the result is already known.
constexpr std::chrono::milliseconds smtp_quit_grace{200};

using Buffer = std::array<char, 2048>;

// The connection of one check, owned by run_check so that the deadline can close it.
struct Probe {
    explicit Probe(const net::any_io_executor& executor) : socket(executor) {}
    tcp::socket socket;
    bool smtp_banner_read = false;  // a complete banner arrived: say QUIT
};

CheckResult passed(std::string detail) { return {true, std::chrono::milliseconds{0}, std::move(detail)}; }
CheckResult failed(std::string detail) { return {false, std::chrono::milliseconds{0}, std::move(detail)}; }

CheckResult connect_failure(const boost::system::error_code& error) {
    if (error == net::error::connection_refused) return failed("connect refused");
    CheckResult result = failed("connect failed: " + error.message());
    // async_connect opens the socket too: EMFILE lands here as well.
    result.local = local_shortage_of(error, SocketStep::connect);
    if (result.local != LocalShortage::none) result.detail = "not run: " + error.message() + " (here, not at the server)";
    return result;
}

// The benign way a peer ends a connection (the TLS channel reports a close,
// with or without close_notify, as eof too).
bool is_close(const boost::system::error_code& error) { return error == net::error::eof; }

std::string describe_read_error(const boost::system::error_code& error) {
    if (is_close(error)) return "connection closed";
    if (error == net::error::connection_reset) return "connection reset";
    return "read failed: " + error.message();
}

// Where the HTTP exchange reads and writes: the socket itself (http)...
struct PlainChannel {
    tcp::socket& socket;
    net::awaitable<boost::system::error_code> write_all(const std::string& data) {
        auto [error, written] = co_await net::async_write(socket, net::buffer(data), use);
        co_return error;
    }
    net::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(Buffer& chunk) {
        co_return co_await socket.async_read_some(net::buffer(chunk), use);
    }
};

// ... or a TLS session on it (https).
struct TlsChannel {
    tcp::socket& socket;
    SSL* ssl;
    net::awaitable<boost::system::error_code> write_all(const std::string& data) {
        const bool written = co_await tls::write_all(socket, ssl, data.data(), data.size());
        co_return written ? boost::system::error_code() : make_error_code(boost::system::errc::protocol_error);
    }
    net::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(Buffer& chunk) {
        const tls::TlsIo io = co_await tls::read_some(socket, ssl, chunk.data(), chunk.size());
        if (io.status == tls::TlsIo::Status::done) co_return std::tuple(boost::system::error_code(), io.bytes);
        if (io.status == tls::TlsIo::Status::closed) co_return std::tuple(net::error::make_error_code(net::error::eof), 0);
        co_return std::tuple(make_error_code(boost::system::errc::protocol_error), 0);
    }
};

// The HTTP exchange over a connected (and, for https, handshaken) channel: one
// request, then bytes until the status line is complete. The body is never read.
template <typename Channel>
net::awaitable<CheckResult> exchange_http(Channel channel, const std::string& request,
                                          const std::vector<conf::StatusRange>& expected) {
    const boost::system::error_code write_error = co_await channel.write_all(request);
    if (write_error) co_return failed("send failed: " + write_error.message());

    std::string received;
    Buffer chunk;
    std::optional<std::string_view> line;
    for (;;) {
        line = first_line(received);
        if (line) break;
        if (received.size() >= max_answer_bytes) co_return failed("bad status line");
        auto [read_error, got] = co_await channel.read_some(chunk);
        received.append(chunk.data(), got);
        if (read_error) {
            // A status line cut by the close ("HTTP/1.0 200 OK" and FIN) still counts.
            if (!is_close(read_error) || received.empty()) co_return failed(describe_read_error(read_error));
            received.push_back('\n');
        }
    }
    std::optional<int> status = parse_http_status_line(*line);
    if (!status) co_return failed("bad status line");
    std::string detail = "status " + std::to_string(*status);
    if (status_expected(*status, expected)) co_return passed(std::move(detail));
    co_return failed(std::move(detail));
}

net::awaitable<CheckResult> exchange_https(tcp::socket& socket, const conf::HealthCheck& check,
                                           const CheckContext& context) {
    if (!context.tls || !context.tls_session) co_return failed("TLS handshake failed: no client context");
    tls::SslPtr session = context.tls->new_session(socket, *context.tls_session, context.sni);
    if (!session) co_return failed("TLS handshake failed: cannot start a session (bad SNI name?)");
    const tls::HandshakeResult handshake = co_await tls::handshake(socket, session.get());
    if (!handshake.ok()) co_return failed("TLS handshake failed: " + handshake.detail);
    CheckResult result = co_await exchange_http(TlsChannel{socket, session.get()},
                                                build_http_check_request(check, context.host), check.expect_status);
    tls::tls_close_notify(session.get());
    co_return result;
}

// Reads an SMTP reply (a banner possibly over several "220-" lines) to its final
// line; a 220 passes.
net::awaitable<CheckResult> read_smtp_banner(Probe& probe) {
    std::string received;
    Buffer chunk;
    for (;;) {
        SmtpReplyScan scan = scan_smtp_reply(received);
        if (scan.state == SmtpReplyScan::State::malformed) co_return failed("bad banner");
        if (scan.state == SmtpReplyScan::State::complete) {
            probe.smtp_banner_read = true;
            std::string detail = "banner " + std::to_string(scan.code);
            if (scan.code == 220) co_return passed(std::move(detail));
            co_return failed(std::move(detail));
        }
        if (received.size() >= max_answer_bytes) co_return failed("bad banner");
        auto [read_error, got] = co_await probe.socket.async_read_some(net::buffer(chunk), use);
        received.append(chunk.data(), got);
        if (read_error) {
            // A final line cut by the close ("554 no service" and FIN) still counts;
            // the next scan decides, and a read after it gives the close again.
            if (!is_close(read_error) || received.empty() || received.back() == '\n') {
                co_return failed(describe_read_error(read_error));
            }
            received.push_back('\n');
        }
    }
}

// Sends a DCE/RPC bind for the check's interface and reads the one reply PDU:
// up on a bind_ack that accepts it.
net::awaitable<CheckResult> bind_dcerpc(Probe& probe, const conf::RpcInterface& interface) {
    const std::string bind = build_dcerpc_bind(interface, 1);
    auto [write_error, written] = co_await net::async_write(probe.socket, net::buffer(bind), use);
    if (write_error) co_return failed("send failed: " + write_error.message());
    std::string received;
    Buffer chunk;
    for (;;) {
        DcerpcReplyScan scan = scan_dcerpc_bind_reply(received);
        switch (scan.state) {
            case DcerpcReplyScan::State::accepted: co_return passed(std::move(scan.detail));
            case DcerpcReplyScan::State::refused:
            case DcerpcReplyScan::State::malformed: co_return failed(std::move(scan.detail));
            case DcerpcReplyScan::State::incomplete: break;
        }
        auto [read_error, got] = co_await probe.socket.async_read_some(net::buffer(chunk), use);
        received.append(chunk.data(), got);
        if (read_error) co_return failed(describe_read_error(read_error));
    }
}

// Connects and runs the protocol's hook. Ends early (with a result run_check
// discards) when the deadline closes the socket under it.
net::awaitable<CheckResult> probe_server(Probe& probe, const conf::HealthCheck& check,
                                         const tcp::endpoint& endpoint, const CheckContext& context) {
    // When the deadline wins, this coroutine is cancelled and its socket closed;
    // an operation begun after that fails on the closed socket, so there is no need
    // for Asio to throw on cancellation (errors stay error codes).
    co_await net::this_coro::throw_if_cancelled(false);

    auto [connect_error] = co_await probe.socket.async_connect(endpoint, use);
    if (connect_error) co_return connect_failure(connect_error);

    CheckResult result;
    switch (check.type) {
        case conf::HealthCheckKind::http:
            result = co_await exchange_http(PlainChannel{probe.socket}, build_http_check_request(check, context.host),
                                            check.expect_status);
            break;
        case conf::HealthCheckKind::https:
            result = co_await exchange_https(probe.socket, check, context);
            break;
        case conf::HealthCheckKind::smtp:
            result = co_await read_smtp_banner(probe);
            break;
        case conf::HealthCheckKind::dcerpc:
            result = co_await bind_dcerpc(probe, check.rpc_interface);
            break;
        case conf::HealthCheckKind::tcp:
        case conf::HealthCheckKind::none:
            result = passed("connected");
            break;
    }
    co_return result;
}

// Says QUIT and waits briefly for the 221, so that the server logs an orderly end
// of session instead of a dropped connection. Errors do not matter here.
net::awaitable<void> say_smtp_quit(tcp::socket& socket) {
    co_await net::this_coro::throw_if_cancelled(false);
    static constexpr std::string_view quit = "QUIT\r\n";
    auto [write_error, written] = co_await net::async_write(socket, net::buffer(quit.data(), quit.size()), use);
    if (write_error) co_return;
    Buffer chunk;
    auto [read_error, got] = co_await socket.async_read_some(net::buffer(chunk), use);
    (void)read_error;
    (void)got;
}

// The other side of each race: at the timer's expiry, closes the socket so that
// whatever the check is waiting for ends at once. A cancelled wait (the check
// finished first) leaves the socket alone.
net::awaitable<void> close_at_deadline(net::steady_timer& timer, tcp::socket& socket) {
    auto [error] = co_await timer.async_wait(use);
    if (error) co_return;
    boost::system::error_code ignored;
    socket.close(ignored);
}

std::chrono::milliseconds elapsed_since(std::chrono::steady_clock::time_point started) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
}

}  // namespace

net::awaitable<CheckResult> run_check(const conf::HealthCheck& check, const tcp::endpoint& endpoint,
                                      const CheckContext& context) {
    if (check.type == conf::HealthCheckKind::none) co_return passed("no check");

    const auto started = std::chrono::steady_clock::now();
    const auto timeout = std::chrono::milliseconds(check.timeout_ms);
    const auto deadline = started + timeout;
    CheckResult result;
    try {
        auto executor = co_await net::this_coro::executor;
        Probe probe(executor);
        net::steady_timer timer(executor, deadline);

        auto outcome =
            co_await (probe_server(probe, check, endpoint, context) || close_at_deadline(timer, probe.socket));
        if (outcome.index() == 0) {
            result = std::move(std::get<0>(outcome));
        } else {
            result = failed("timeout after " + std::to_string(timeout.count()) + " ms");
        }
        result.latency = elapsed_since(started);

        if (probe.smtp_banner_read && probe.socket.is_open()) {
            timer.expires_at(std::min(deadline, std::chrono::steady_clock::now() + smtp_quit_grace));
            co_await (say_smtp_quit(probe.socket) || close_at_deadline(timer, probe.socket));
        }
        boost::system::error_code ignored;
        probe.socket.close(ignored);
    } catch (const std::exception& e) {
        // Only an allocation failure or a bug gets here; a check must not take the
        // monitor down with it.
        result = failed(std::string("check failed: ") + e.what());
        result.latency = elapsed_since(started);
    }
    co_return result;
}

}  // namespace castellan::healthcheck
