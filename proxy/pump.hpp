// Moving bytes one way between two sockets: the one coroutine used for both
// directions of a connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <span>

namespace castellan::proxy {

// What both directions of one connection share: the time of the last byte in
// either direction (the idle deadline is pushed forward by it).
struct Activity {
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
    // Set by the first direction to end on EOF.
    bool one_direction_ended = false;
};

struct PumpEnd {
    enum class Kind {
        eof,        // `from` closed its sending side; passed on as a shutdown of `to`
        read_error, // `from` failed (reset, ...)
        write_error,// `to` failed
        cancelled,  // the session ended it (idle timeout, stop)
    } kind = Kind::eof;
    boost::system::error_code error;
};

// Ends a failed direction: cancels whatever the other direction is waiting for
// on either socket so that it returns too (a reset is not a half-close), and gives
// the PumpEnd to return.
PumpEnd end_both_directions(boost::asio::ip::tcp::socket& from, boost::asio::ip::tcp::socket& to,
                            PumpEnd::Kind kind, boost::system::error_code error);

class PipePool;

// Passes `from`'s EOF on to `to` as a shutdown of its sending side, so that the
// other direction keeps flowing (half-close). When the other direction has
// already ended on EOF, the session is about to close both sockets, and that
// close sends the FIN: the shutdown call is skipped.
void pass_on_eof(boost::asio::ip::tcp::socket& to, Activity& activity);

// How bytes are moved: through the worker's buffer, with splice(2), or (the
// default) through the buffer until a direction shows itself a bulk transfer and
// then with splice(2). Copying wins on short exchanges (no pipe to set up),
// splicing on bulk ones (no copy through user space), as HAProxy's splice-auto.
enum class PumpKind { copy, splice, automatic };
// CASTELLAN_PUMP=copy|splice|auto in the environment picks one for
// benchmarking; anything else gives the default.
PumpKind pump_kind_from_environment();

// Copies bytes from `from` to `to` until `from` ends. `scratch` is the worker's shared buffer: a read lands there
// and is written at once; only when `to` cannot take it all is the rest copied
// into a buffer of this connection, so an idle connection holds no buffer at all.
// On EOF it shuts down `to`'s sending side and returns (half-close: the other
// direction goes on). Counts bytes into `bytes` and stamps `activity`. With
// `bulk_pipes`, a read that fills the whole scratch buffer hands the rest of the
// direction to splice_pump(). With `readable_now` the first read is tried before
// waiting: a client that speaks first has usually sent its request while the
// real server was being connected.
// Runs on the connection's worker thread.
boost::asio::awaitable<PumpEnd> pump(boost::asio::ip::tcp::socket& from, boost::asio::ip::tcp::socket& to,
                                     std::span<char> scratch, std::uint64_t& bytes, Activity& activity,
                                     PipePool* bulk_pipes = nullptr, bool readable_now = false);

}  // namespace castellan::proxy
