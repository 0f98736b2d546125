#include "proxy/pump.hpp"

#include "proxy/reactor_ops.hpp"
#include "tls/tls_io.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

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

Pump::Pump(StreamSide from, StreamSide to, Activity& activity, const PumpTools& tools, PumpJoin& join, ByteSink sink)
    : from_(*from.socket),
      to_(*to.socket),
      from_tls_(from.tls),
      to_tls_(to.tls),
      activity_(activity),
      tools_(tools),
      join_(join),
      sink_(sink) {
    // splice(2) moves bytes between plain sockets only.
    if (from_tls_ || to_tls_) copy_only_ = true;
}

void Pump::start(bool readable_now) {
    // The other direction may have failed already (and cancelled the sockets
    // before this one had anything to cancel).
    if (stop_if_aborted()) return;
    if (tools_.kind == PumpKind::splice && !copy_only_) start_splicing();
    // A plain read that finds nothing costs the system call the first wait's
    // re-arm would (and its EAGAIN makes every later wait free); a server that
    // speaks first is read without waiting at all.
    if (readable_now || !from_tls_) {
        move_some();
    } else {
        wait_readable(false);
    }
}

// A TLS end's read or write as a step of the pump; `on_closed` is what the
// session being closed means for it.
Pump::Step Pump::step_of(const tls::TlsIo& io, Step::Kind on_closed) {
    switch (io.status) {
        case tls::TlsIo::Status::done: return {Step::Kind::moved, io.bytes, {}};
        case tls::TlsIo::Status::want_read: return {Step::Kind::wait_read, 0, {}};
        case tls::TlsIo::Status::want_write: return {Step::Kind::wait_write, 0, {}};
        case tls::TlsIo::Status::closed:
            if (on_closed == Step::Kind::ended) return {Step::Kind::ended, 0, {}};
            break;
        case tls::TlsIo::Status::failed: break;
    }
    return {Step::Kind::failed, 0, net::error::connection_aborted};
}

// Plain recv/send with MSG_DONTWAIT rather than Asio's read_some and
// write_some: those need the socket's user non-blocking mode, an extra ioctl
// per socket per connection. TLS ends go through the same flags (socket_bio.hpp).
Pump::Step Pump::read_some(char* data, std::size_t size) {
    // The peer's close_notify (or FIN) ends a read.
    if (from_tls_) return step_of(tls::tls_read(from_tls_, data, size), Step::Kind::ended);
    const ssize_t got = ::recv(from_.native_handle(), data, size, MSG_DONTWAIT);
    if (got > 0) return {Step::Kind::moved, static_cast<std::size_t>(got), {}};
    if (got == 0) return {Step::Kind::ended, 0, {}};
    if (would_block(errno)) return {Step::Kind::wait_read, 0, {}};
    return {Step::Kind::failed, 0, last_error()};
}

Pump::Step Pump::write_some(const char* data, std::size_t size) {
    // A write to a closed session fails.
    if (to_tls_) return step_of(tls::tls_write(to_tls_, data, size), Step::Kind::failed);
    const ssize_t sent = ::send(to_.native_handle(), data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0) return {Step::Kind::moved, static_cast<std::size_t>(sent), {}};
    if (would_block(errno)) return {Step::Kind::wait_write, 0, {}};
    return {Step::Kind::failed, 0, last_error()};
}

// Waits for readability instead of reading into a buffer: no memory is tied to
// a connection while it waits.
void Pump::wait_readable(bool after_would_block) {
    wait_then(from_, tcp::socket::wait_read, true, &Pump::move_some, after_would_block);
}

void Pump::wait_then(tcp::socket& socket, net::socket_base::wait_type wait, bool reading, void (Pump::*next)(),
                     bool after_would_block) {
    auto on_ready = [this, reading, next](const boost::system::error_code& error) {
        if (stop_if_aborted()) return;
        if (error == net::error::operation_aborted) return finish({PumpEnd::Kind::cancelled, error});
        if (error) return fail(reading ? PumpEnd::Kind::read_error : PumpEnd::Kind::write_error, error);
        (this->*next)();
    };
    if (after_would_block) {
        async_wait_after_would_block(socket, wait, std::move(on_ready));
    } else {
        socket.async_wait(wait, std::move(on_ready));
    }
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
        const Step got = read_some(scratch.data(), scratch.size());
        switch (got.kind) {
            case Step::Kind::moved: break;
            // A plain socket's EAGAIN, or a TLS session's wish that came from
            // one (stream_io.cpp says why).
            case Step::Kind::wait_read: return wait_readable(true);
            case Step::Kind::wait_write:
                return wait_then(from_, tcp::socket::wait_write, true, &Pump::move_some, true);
            case Step::Kind::ended: return finish({PumpEnd::Kind::eof, {}});
            case Step::Kind::failed: return fail(PumpEnd::Kind::read_error, got.error);
        }
        bytes_ += got.bytes;
        sink_.add(got.bytes);
        activity_.last = std::chrono::steady_clock::now();

        const Step sent = write_some(scratch.data(), got.bytes);
        if (sent.kind == Step::Kind::failed) return fail(PumpEnd::Kind::write_error, sent.error);
        const std::size_t written = sent.kind == Step::Kind::moved ? sent.bytes : 0;
        if (written < got.bytes) {
            // The peer is slower than us: keep the rest in this direction's own
            // buffer until it drains, then give the memory back.
            rest_size_ = got.bytes - written;
            rest_written_ = 0;
            rest_ = std::make_unique<char[]>(rest_size_);
            std::copy(scratch.data() + written, scratch.data() + got.bytes, rest_.get());
            return write_rest();
        }
        // A TLS read gives one record at most: only a plain read that leaves room
        // says the socket is drained. Not that nothing more will come without an
        // edge: a FIN (or a reset) queued behind the bytes comes with the edge
        // that announced them, so this wait re-arms.
        if (!from_tls_ && got.bytes < scratch.size()) return wait_readable(false);
        if (tools_.kind == PumpKind::automatic && !copy_only_) {
            // A read that fills the whole buffer is a bulk transfer: splice the rest.
            start_splicing();
            return splice_some();
        }
    }
    // Decrypted bytes held by the TLS session raise no readiness on the socket:
    // come back to them after the loop's other work.
    if (from_tls_ && SSL_has_pending(from_tls_)) {
        net::post(from_.get_executor(), [this] {
            if (stop_if_aborted()) return;
            move_some();
        });
        return;
    }
    wait_readable(false);
}

void Pump::write_rest() {
    while (rest_written_ < rest_size_) {
        const Step sent = write_some(rest_.get() + rest_written_, rest_size_ - rest_written_);
        switch (sent.kind) {
            case Step::Kind::moved: rest_written_ += sent.bytes; continue;
            case Step::Kind::wait_read: return wait_then(to_, tcp::socket::wait_read, false, &Pump::write_rest, true);
            case Step::Kind::wait_write: return wait_then(to_, tcp::socket::wait_write, false, &Pump::write_rest, true);
            case Step::Kind::ended:
            case Step::Kind::failed: return fail(PumpEnd::Kind::write_error, sent.error);
        }
    }
    rest_.reset();
    rest_size_ = rest_written_ = 0;
    activity_.last = std::chrono::steady_clock::now();
    // A receiver that slow means a sender with more to give.
    move_some();
}

// splice(2) honours the sockets' own O_NONBLOCK, not only SPLICE_F_NONBLOCK:
// both sockets have it from their start (accept4 and FreshSocket open them
// SOCK_NONBLOCK, reactor_ops.hpp), so a full receiver cannot block the worker.
void Pump::start_splicing() { splicing_ = true; }

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
            if (would_block(errno)) {
                // The pipe is empty (drained above) and the direction idles:
                // give its two descriptors back until data comes, so that a
                // connection that once carried bulk data idles as cheaply as
                // one that never did.
                tools_.pipes->give_back(std::move(pipe_));
                return wait_readable(true);
            }
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
    // Yielding to the loop: the pipe is empty, and the sender may have paused
    // for good.
    tools_.pipes->give_back(std::move(pipe_));
    wait_readable(false);
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
        async_wait_after_would_block(to_, tcp::socket::wait_write, [this](const boost::system::error_code& error) {
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
        if (to_tls_) tls::tls_close_notify(to_tls_);
        boost::system::error_code ignored;
        to_.shutdown(tcp::socket::shutdown_send, ignored);
    }
    if (pipe_.is_open()) tools_.pipes->give_back(std::move(pipe_));
    join_.pump_ended();
}

}  // namespace castellan::proxy
