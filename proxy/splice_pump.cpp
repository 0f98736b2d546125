#include "proxy/splice_pump.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace castellan::proxy {
namespace net = boost::asio;

namespace {

// The most one splice call moves; a pipe holds 64 KiB by default.
constexpr std::size_t splice_chunk = 64 * 1024;

class Pipe {
public:
    Pipe() = default;
    ~Pipe() {
        if (fds_[0] >= 0) ::close(fds_[0]);
        if (fds_[1] >= 0) ::close(fds_[1]);
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    bool open() { return fds_[0] >= 0 || ::pipe2(fds_, O_NONBLOCK | O_CLOEXEC) == 0; }
    int read_end() const { return fds_[0]; }
    int write_end() const { return fds_[1]; }

private:
    int fds_[2] = {-1, -1};
};

boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

}  // namespace

net::awaitable<PumpEnd> splice_pump(net::ip::tcp::socket& from, net::ip::tcp::socket& to, std::uint64_t& bytes,
                                    Activity& activity) {
    constexpr auto use = net::as_tuple(net::use_awaitable);
    Pipe pipe;
    // splice(2) honours the socket's own O_NONBLOCK, not only SPLICE_F_NONBLOCK.
    boost::system::error_code ignored;
    from.non_blocking(true, ignored);
    for (;;) {
        auto [wait_error] = co_await from.async_wait(net::ip::tcp::socket::wait_read, use);
        if (wait_error == net::error::operation_aborted) co_return PumpEnd{PumpEnd::Kind::cancelled, wait_error};
        if (wait_error) co_return end_both_directions(from, to, PumpEnd::Kind::read_error, wait_error);
        if (!pipe.open()) co_return end_both_directions(from, to, PumpEnd::Kind::read_error, last_error());

        ssize_t got = ::splice(from.native_handle(), nullptr, pipe.write_end(), nullptr, splice_chunk,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            co_return end_both_directions(from, to, PumpEnd::Kind::read_error, last_error());
        }
        if (got == 0) {
            boost::system::error_code ignored;
            to.shutdown(net::ip::tcp::socket::shutdown_send, ignored);
            co_return PumpEnd{PumpEnd::Kind::eof, {}};
        }
        bytes += static_cast<std::uint64_t>(got);
        activity.last = std::chrono::steady_clock::now();

        std::size_t in_pipe = static_cast<std::size_t>(got);
        while (in_pipe > 0) {
            ssize_t sent = ::splice(pipe.read_end(), nullptr, to.native_handle(), nullptr, in_pipe,
                                    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (sent > 0) {
                in_pipe -= static_cast<std::size_t>(sent);
                continue;
            }
            if (sent < 0 && errno == EINTR) continue;
            if (sent < 0 && errno != EAGAIN) co_return end_both_directions(from, to, PumpEnd::Kind::write_error, last_error());
            auto [writable_error] = co_await to.async_wait(net::ip::tcp::socket::wait_write, use);
            if (writable_error == net::error::operation_aborted) {
                co_return PumpEnd{PumpEnd::Kind::cancelled, writable_error};
            }
            if (writable_error) co_return end_both_directions(from, to, PumpEnd::Kind::write_error, writable_error);
            activity.last = std::chrono::steady_clock::now();
        }
    }
}

}  // namespace castellan::proxy
