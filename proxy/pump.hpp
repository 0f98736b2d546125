// Moving bytes one way between two sockets, as a small state machine driven by
// Asio handlers: no coroutine frame, no buffer of its own while it waits.
#pragma once

#include "proxy/lasting_state.hpp"
#include "proxy/pipe_pool.hpp"
#include "tls/tls_io.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>

namespace castellan::proxy {

// What both directions of one connection share.
struct Activity {
    // The time of the last byte in either direction (the idle deadline is
    // pushed forward by it).
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
    // Set by the first direction to end on EOF.
    bool one_direction_ended = false;
    // Set when a direction failed: the other one stops at its next step even
    // if its own completion was already queued when the sockets were cancelled.
    bool aborted = false;
};

struct PumpEnd {
    enum class Kind {
        eof,         // `from` closed its sending side; passed on as a shutdown of `to`
        read_error,  // `from` failed (reset, ...)
        write_error, // `to` failed
        cancelled,   // the session ended it (idle timeout, server down, stop)
    } kind = Kind::eof;
    boost::system::error_code error;
};

// How bytes are moved: through the worker's buffer, with splice(2), or (the
// default) through the buffer until a direction shows itself a bulk transfer and
// then with splice(2). Copying wins on short exchanges (no pipe to set up),
// splicing on bulk ones (no copy through user space), as HAProxy's splice-auto.
enum class PumpKind { copy, splice, automatic };
// CASTELLAN_PUMP=copy|splice|auto in the environment picks one for
// benchmarking; anything else gives the default.
PumpKind pump_kind_from_environment();

// Where one direction counts its bytes as they flow: this worker's slots of the
// service's and the real server's counters (lasting_state.hpp), so that a
// two-hour connection shows its traffic while it lasts. Null slots are skipped.
struct ByteSink {
    std::atomic<std::uint64_t>* service = nullptr;
    std::atomic<std::uint64_t>* server = nullptr;
    void add(std::uint64_t bytes) const {
        if (service) add_to(*service, bytes);
        if (server) add_to(*server, bytes);
    }
};

// One end of a proxied connection: its socket and, where castellan holds the
// TLS session on it (terminated or re-encrypted), that session, through which
// its bytes are then read and written. splice(2) needs plain sockets at both
// ends: a direction with TLS at either end always copies.
struct StreamSide {
    boost::asio::ip::tcp::socket* socket = nullptr;
    SSL* tls = nullptr;
};

// What a worker lends to the pumps of its connections.
struct PumpTools {
    std::span<char> scratch;  // the worker's buffer: a read lands there and is written at once
    PipePool* pipes;          // the worker's spare pipes for splice(2)
    PumpKind kind;
};

// One direction of a connection: reads from `from`, writes to `to`, until
// `from` ends. One piece of code for plain and TLS ends: a TLS end's read or
// write may ask to wait for the other readiness (a TLS 1.3 key update), and its
// session may hold decrypted bytes the socket no longer shows. Only when `to` cannot take a read at once is the rest copied into
// a buffer of this direction, so an idle connection holds no buffer. On EOF it
// shuts down `to`'s sending side (half-close: the other direction goes on); on an
// error it cancels both sockets so that the other direction ends too (a reset is
// not a half-close). Tells `join` once when it has ended.
// Runs on the connection's worker thread; must outlive its pending operations
// (its owner waits for the join before destroying it).
// Where the two pumps of one connection report their ends: the second end
// cancels `finished`, the timer the session waits on. A plain object rather
// than a virtual interface: nothing else needs to listen.
class PumpJoin {
public:
    explicit PumpJoin(boost::asio::steady_timer& finished) : finished_(finished) {}
    void pump_ended() {
        if (++ended_ == 2) finished_.cancel();
    }

private:
    boost::asio::steady_timer& finished_;
    int ended_ = 0;
};

class Pump {
public:
    Pump(StreamSide from, StreamSide to, Activity& activity, const PumpTools& tools, PumpJoin& join,
         ByteSink sink = {});
    Pump(const Pump&) = delete;
    Pump& operator=(const Pump&) = delete;

    // With `readable_now` the first read is tried before waiting: a client that
    // speaks first has usually sent its request while the real server was being
    // connected. A plain `from` is always read first (pump.cpp says why); a
    // TLS one without `readable_now` is waited for.
    void start(bool readable_now);

    const PumpEnd& end() const { return end_; }
    std::uint64_t bytes() const { return bytes_; }

private:
    // How one read or write went.
    struct Step {
        enum class Kind { moved, wait_read, wait_write, ended, failed } kind;
        std::size_t bytes = 0;
        boost::system::error_code error;
    };
    static Step step_of(const tls::TlsIo& io, Step::Kind on_closed);
    Step read_some(char* data, std::size_t size);
    Step write_some(const char* data, std::size_t size);

    // `after_would_block`: the last read (write) on the socket came back with
    // EAGAIN or short, so the wait need not re-arm epoll (reactor_ops.hpp).
    void wait_readable(bool after_would_block);
    // Waits on `socket` for `wait`, then carries on with `next` (move_some or write_rest).
    void wait_then(boost::asio::ip::tcp::socket& socket, boost::asio::socket_base::wait_type wait, bool reading,
                   void (Pump::*next)(), bool after_would_block);
    void move_some();
    void copy_some();
    void write_rest();
    void splice_some();
    bool drain_pipe();
    void start_splicing();
    bool stop_if_aborted();
    void fail(PumpEnd::Kind kind, boost::system::error_code error);
    void finish(PumpEnd end);

    boost::asio::ip::tcp::socket& from_;
    boost::asio::ip::tcp::socket& to_;
    SSL* const from_tls_;
    SSL* const to_tls_;
    Activity& activity_;
    PumpTools tools_;
    PumpJoin& join_;
    ByteSink sink_;
    std::uint64_t bytes_ = 0;
    bool splicing_ = false;
    bool copy_only_ = false;  // no pipe could be had: never splice again
    PumpEnd end_;
    // Bytes `to` could not take at once, until they are written.
    std::unique_ptr<char[]> rest_;
    std::size_t rest_size_ = 0;
    std::size_t rest_written_ = 0;
    Pipe pipe_;  // borrowed from the pool while bytes sit in it or flow; given back when the direction idles
};

}  // namespace castellan::proxy
