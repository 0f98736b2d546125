#include "proxy/splice_pump.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fcntl.h>

#include <cerrno>
#include <utility>

namespace castellan::proxy {
namespace net = boost::asio;

namespace {

// The most one splice call moves; a pipe holds 64 KiB by default.
constexpr std::size_t splice_chunk = 64 * 1024;
// Chunks moved per wake-up before yielding to the loop, so that one fast
// connection cannot starve the others of its worker.
constexpr int chunks_per_wakeup = 8;

boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

// A pipe borrowed from the worker's pool for the life of one direction.
class BorrowedPipe {
public:
    explicit BorrowedPipe(PipePool& pool) : pool_(pool) {}
    ~BorrowedPipe() { pool_.give_back(std::move(pipe_)); }
    BorrowedPipe(const BorrowedPipe&) = delete;
    BorrowedPipe& operator=(const BorrowedPipe&) = delete;

    // The pipe, taken from the pool on first use; nullptr (errno set) when none
    // could be made.
    Pipe* get() {
        if (!pipe_.is_open()) pipe_ = pool_.take();
        return pipe_.is_open() ? &pipe_ : nullptr;
    }

private:
    PipePool& pool_;
    Pipe pipe_;
};

}  // namespace

net::awaitable<PumpEnd> splice_pump(net::ip::tcp::socket& from, net::ip::tcp::socket& to, std::uint64_t& bytes,
                                    Activity& activity, PipePool& pipes, bool readable_now) {
    constexpr auto use = net::as_tuple(net::use_awaitable);
    BorrowedPipe borrowed(pipes);
    // splice(2) honours the sockets' own O_NONBLOCK, not only SPLICE_F_NONBLOCK:
    // without it a full receiver would block the whole worker.
    boost::system::error_code ignored;
    from.non_blocking(true, ignored);
    to.non_blocking(true, ignored);
    bool wait_first = !readable_now;
    for (;;) {
        if (wait_first) {
            auto [wait_error] = co_await from.async_wait(net::ip::tcp::socket::wait_read, use);
            if (wait_error == net::error::operation_aborted) co_return PumpEnd{PumpEnd::Kind::cancelled, wait_error};
            if (wait_error) co_return end_both_directions(from, to, PumpEnd::Kind::read_error, wait_error);
        }
        wait_first = true;
        for (int round = 0; round < chunks_per_wakeup; ++round) {
            Pipe* pipe = borrowed.get();
            if (!pipe) co_return end_both_directions(from, to, PumpEnd::Kind::read_error, last_error());

            ssize_t got = ::splice(from.native_handle(), nullptr, pipe->write_end(), nullptr, splice_chunk,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR) break;
                co_return end_both_directions(from, to, PumpEnd::Kind::read_error, last_error());
            }
            if (got == 0) {
                pass_on_eof(to, activity);
                co_return PumpEnd{PumpEnd::Kind::eof, {}};
            }
            bytes += static_cast<std::uint64_t>(got);
            activity.last = std::chrono::steady_clock::now();

            pipe->buffered = static_cast<std::size_t>(got);
            while (pipe->buffered > 0) {
                ssize_t sent = ::splice(pipe->read_end(), nullptr, to.native_handle(), nullptr, pipe->buffered,
                                        SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (sent > 0) {
                    pipe->buffered -= static_cast<std::size_t>(sent);
                    continue;
                }
                if (sent < 0 && errno == EINTR) continue;
                if (sent < 0 && errno != EAGAIN) {
                    co_return end_both_directions(from, to, PumpEnd::Kind::write_error, last_error());
                }
                auto [writable_error] = co_await to.async_wait(net::ip::tcp::socket::wait_write, use);
                if (writable_error == net::error::operation_aborted) {
                    co_return PumpEnd{PumpEnd::Kind::cancelled, writable_error};
                }
                if (writable_error) co_return end_both_directions(from, to, PumpEnd::Kind::write_error, writable_error);
                activity.last = std::chrono::steady_clock::now();
            }
            // A short splice does not mean the socket is drained (the pipe may
            // have run out of slots first), so go on until EAGAIN: this pump
            // carries bulk transfers, where the extra try is cheap.
        }
    }
}

}  // namespace castellan::proxy
