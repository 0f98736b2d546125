#include "proxy/pump.hpp"

#include "proxy/splice_pump.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace castellan::proxy {
namespace net = boost::asio;

namespace {

boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

// Reads per wake-up before yielding to the loop, so that one fast connection
// cannot starve the others of its worker.
constexpr int reads_per_wakeup = 4;

}  // namespace

PumpEnd end_both_directions(net::ip::tcp::socket& from, net::ip::tcp::socket& to, PumpEnd::Kind kind,
                            boost::system::error_code error) {
    boost::system::error_code ignored;
    from.cancel(ignored);
    to.cancel(ignored);
    return PumpEnd{kind, error};
}

void pass_on_eof(net::ip::tcp::socket& to, Activity& activity) {
    if (activity.one_direction_ended) return;
    activity.one_direction_ended = true;
    boost::system::error_code ignored;
    to.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
}

PumpKind pump_kind_from_environment() {
    const char* choice = std::getenv("CASTELLAN_PUMP");
    const std::string_view name = choice ? choice : "";
    if (name == "splice") return PumpKind::splice;
    if (name == "copy") return PumpKind::copy;
    return PumpKind::automatic;
}

net::awaitable<PumpEnd> pump(net::ip::tcp::socket& from, net::ip::tcp::socket& to, std::span<char> scratch,
                             std::uint64_t& bytes, Activity& activity, PipePool* bulk_pipes, bool readable_now) {
    constexpr auto use = net::as_tuple(net::use_awaitable);
    bool wait_first = !readable_now;
    for (;;) {
        // Wait for readability instead of reading into a buffer: no memory is
        // tied to a connection while it waits.
        if (wait_first) {
            auto [wait_error] = co_await from.async_wait(net::ip::tcp::socket::wait_read, use);
            if (wait_error == net::error::operation_aborted) co_return PumpEnd{PumpEnd::Kind::cancelled, wait_error};
            if (wait_error) co_return end_both_directions(from, to, PumpEnd::Kind::read_error, wait_error);
        }
        wait_first = true;
        for (int round = 0; round < reads_per_wakeup; ++round) {
            // Plain recv/send with MSG_DONTWAIT rather than Asio's read_some and
            // write_some: those need the socket's user non-blocking mode, an extra
            // ioctl per socket per connection.
            ssize_t got_bytes = ::recv(from.native_handle(), scratch.data(), scratch.size(), MSG_DONTWAIT);
            if (got_bytes < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
                co_return end_both_directions(from, to, PumpEnd::Kind::read_error, last_error());
            }
            if (got_bytes == 0) {
                pass_on_eof(to, activity);
                co_return PumpEnd{PumpEnd::Kind::eof, {}};
            }
            const std::size_t got = static_cast<std::size_t>(got_bytes);
            bytes += got;
            activity.last = std::chrono::steady_clock::now();

            std::size_t sent = 0;
            ssize_t sent_bytes = ::send(to.native_handle(), scratch.data(), got, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (sent_bytes >= 0) {
                sent = static_cast<std::size_t>(sent_bytes);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                co_return end_both_directions(from, to, PumpEnd::Kind::write_error, last_error());
            }
            if (sent < got) {
                // The peer is slower than us: keep the rest in this connection's
                // own buffer until it drains, then give the memory back.
                std::size_t rest = got - sent;
                auto pending = std::make_unique<char[]>(rest);
                std::copy(scratch.data() + sent, scratch.data() + got, pending.get());
                auto [write_error, written] = co_await net::async_write(to, net::buffer(pending.get(), rest), use);
                if (write_error == net::error::operation_aborted) {
                    co_return PumpEnd{PumpEnd::Kind::cancelled, write_error};
                }
                if (write_error) co_return end_both_directions(from, to, PumpEnd::Kind::write_error, write_error);
                activity.last = std::chrono::steady_clock::now();
            }
            if (got < scratch.size()) break;  // drained for now
            if (bulk_pipes) co_return co_await splice_pump(from, to, bytes, activity, *bulk_pipes, true);
        }
    }
}

}  // namespace castellan::proxy
