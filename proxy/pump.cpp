#include "proxy/pump.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string_view>

namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

// Reads (or spliced chunks) per wake-up before yielding to the loop, so that one
// fast connection cannot starve the others of its worker.
constexpr int moves_per_wakeup = 4;
// The most one splice call moves; a pipe holds 64 KiB by default.
constexpr std::size_t splice_chunk = 64 * 1024;

bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

}  // namespace

PumpKind pump_kind_from_environment() {
    const char* choice = std::getenv("CASTELLAN_PUMP");
    const std::string_view name = choice ? choice : "";
    if (name == "splice") return PumpKind::splice;
    if (name == "copy") return PumpKind::copy;
    return PumpKind::automatic;
}

Pump::Pump(tcp::socket& from, tcp::socket& to, Activity& activity, const PumpTools& tools, PumpJoin& join,
           ByteSink sink)
    : from_(from), to_(to), activity_(activity), tools_(tools), join_(join), sink_(sink) {}

void Pump::start(bool readable_now) {
    if (tools_.kind == PumpKind::splice) start_splicing();
    if (readable_now) {
        move_some();
    } else {
        wait_readable();
    }
}

// Waits for readability instead of reading into a buffer: no memory is tied to
// a connection while it waits.
void Pump::wait_readable() {
    from_.async_wait(tcp::socket::wait_read, [this](const boost::system::error_code& error) {
        if (stop_if_aborted()) return;
        if (error == net::error::operation_aborted) return finish({PumpEnd::Kind::cancelled, error});
        if (error) return fail(PumpEnd::Kind::read_error, error);
        move_some();
    });
}

void Pump::move_some() {
    if (splicing_) {
        splice_some();
    } else {
        copy_some();
    }
}

void Pump::copy_some() {
    const std::span<char> scratch = tools_.scratch;
    for (int round = 0; round < moves_per_wakeup; ++round) {
        // Plain recv/send with MSG_DONTWAIT rather than Asio's read_some and
        // write_some: those need the socket's user non-blocking mode, an extra
        // ioctl per socket per connection.
        const ssize_t got_bytes = ::recv(from_.native_handle(), scratch.data(), scratch.size(), MSG_DONTWAIT);
        if (got_bytes < 0) {
            if (would_block(errno)) return wait_readable();
            return fail(PumpEnd::Kind::read_error, last_error());
        }
        if (got_bytes == 0) return finish({PumpEnd::Kind::eof, {}});
        const std::size_t got = static_cast<std::size_t>(got_bytes);
        bytes_ += got;
        sink_.add(got);
        activity_.last = std::chrono::steady_clock::now();

        const ssize_t sent_bytes = ::send(to_.native_handle(), scratch.data(), got, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent_bytes < 0 && !would_block(errno)) return fail(PumpEnd::Kind::write_error, last_error());
        const std::size_t sent = sent_bytes < 0 ? 0 : static_cast<std::size_t>(sent_bytes);
        if (sent < got) {
            // The peer is slower than us: keep the rest in this direction's own
            // buffer until it drains, then give the memory back.
            rest_size_ = got - sent;
            rest_ = std::make_unique<char[]>(rest_size_);
            std::copy(scratch.data() + sent, scratch.data() + got, rest_.get());
            return write_rest();
        }
        if (got < scratch.size()) return wait_readable();  // drained for now
        if (tools_.kind == PumpKind::automatic && !copy_only_) {
            // A read that fills the whole buffer is a bulk transfer: splice the rest.
            start_splicing();
            return splice_some();
        }
    }
    wait_readable();
}

void Pump::write_rest() {
    net::async_write(to_, net::buffer(rest_.get(), rest_size_),
                     [this](const boost::system::error_code& error, std::size_t) {
                         rest_.reset();
                         rest_size_ = 0;
                         if (stop_if_aborted()) return;
                         if (error == net::error::operation_aborted) return finish({PumpEnd::Kind::cancelled, error});
                         if (error) return fail(PumpEnd::Kind::write_error, error);
                         activity_.last = std::chrono::steady_clock::now();
                         // A receiver that slow means a sender with more to give.
                         move_some();
                     });
}

void Pump::start_splicing() {
    splicing_ = true;
    // splice(2) honours the sockets' own O_NONBLOCK, not only SPLICE_F_NONBLOCK:
    // without it a full receiver would block the whole worker.
    boost::system::error_code ignored;
    from_.non_blocking(true, ignored);
    to_.non_blocking(true, ignored);
}

void Pump::splice_some() {
    for (int round = 0; round < moves_per_wakeup; ++round) {
        if (!pipe_.is_open()) {
            pipe_ = tools_.pipes->take();
            if (!pipe_.is_open()) {
                // Out of descriptors: this direction keeps copying instead of
                // failing a working connection.
                splicing_ = false;
                copy_only_ = true;
                return copy_some();
            }
        }
        const ssize_t got = ::splice(from_.native_handle(), nullptr, pipe_.write_end(), nullptr, splice_chunk,
                                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (got < 0) {
            if (would_block(errno)) return wait_readable();
            return fail(PumpEnd::Kind::read_error, last_error());
        }
        if (got == 0) return finish({PumpEnd::Kind::eof, {}});
        bytes_ += static_cast<std::uint64_t>(got);
        sink_.add(static_cast<std::uint64_t>(got));
        activity_.last = std::chrono::steady_clock::now();
        pipe_.buffered = static_cast<std::size_t>(got);
        if (!drain_pipe()) return;  // waiting for `to`, or ended
        // A short splice does not mean the socket is drained (the pipe may have
        // run out of slots first), so go on until EAGAIN: this path carries bulk
        // transfers, where the extra try is cheap.
    }
    wait_readable();
}

// Moves what the pipe holds into `to`. True when the pipe is empty; false when
// it waits for `to` to become writable (and then goes on by itself) or ended.
bool Pump::drain_pipe() {
    while (pipe_.buffered > 0) {
        const ssize_t sent = ::splice(pipe_.read_end(), nullptr, to_.native_handle(), nullptr, pipe_.buffered,
                                      SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (sent > 0) {
            pipe_.buffered -= static_cast<std::size_t>(sent);
            continue;
        }
        if (sent < 0 && errno == EINTR) continue;
        if (sent == 0 || errno != EAGAIN) {
            // 0 with bytes in the pipe would spin: treat it as the failure it is.
            fail(PumpEnd::Kind::write_error, sent == 0 ? net::error::broken_pipe : last_error());
            return false;
        }
        to_.async_wait(tcp::socket::wait_write, [this](const boost::system::error_code& error) {
            if (stop_if_aborted()) return;
            if (error == net::error::operation_aborted) return finish({PumpEnd::Kind::cancelled, error});
            if (error) return fail(PumpEnd::Kind::write_error, error);
            activity_.last = std::chrono::steady_clock::now();
            if (drain_pipe()) splice_some();
        });
        return false;
    }
    return true;
}

bool Pump::stop_if_aborted() {
    if (!activity_.aborted) return false;
    finish({PumpEnd::Kind::cancelled, net::error::operation_aborted});
    return true;
}

void Pump::fail(PumpEnd::Kind kind, boost::system::error_code error) {
    activity_.aborted = true;
    boost::system::error_code ignored;
    from_.cancel(ignored);
    to_.cancel(ignored);
    finish({kind, error});
}

void Pump::finish(PumpEnd end) {
    end_ = end;
    if (end.kind == PumpEnd::Kind::eof && !activity_.one_direction_ended) {
        // When the other direction has already ended on EOF, the session is
        // about to close both sockets, and that close sends the FIN: the
        // shutdown is only needed for the first EOF.
        activity_.one_direction_ended = true;
        boost::system::error_code ignored;
        to_.shutdown(tcp::socket::shutdown_send, ignored);
    }
    if (pipe_.is_open()) tools_.pipes->give_back(std::move(pipe_));
    join_.pump_ended();
}

}  // namespace castellan::proxy
