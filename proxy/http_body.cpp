#include "proxy/http_body.hpp"

#include "proxy/chunked_decoder.hpp"
#include "proxy/pipe_pool.hpp"
#include "proxy/reactor_ops.hpp"
#include "proxy/stream_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>

#include <fmt/format.h>

#include <fcntl.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <span>
#include <string_view>

namespace castellan::proxy {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto use = net::as_tuple(net::use_awaitable);
// How much one read takes from a socket: the most of a body held at once per
// direction.
constexpr std::size_t read_chunk = 16 * 1024;
// The most one splice call moves (a pipe holds 64 KiB by default); a body's rest
// shorter than a read is copied: a pipe would cost more than it saves.
constexpr std::size_t splice_chunk = 64 * 1024;

// Writes `data` to `to`, as one chunk of the chunked coding when `chunked`.
net::awaitable<bool> write_body_piece(StreamSide to, const char* data, std::size_t size, bool chunked) {
    if (!chunked) co_return co_await write_all(to, net::buffer(data, size));
    std::array<char, 24> size_line;
    const auto line = fmt::format_to_n(size_line.data(), size_line.size(), "{:x}\r\n", size);
    static constexpr std::string_view crlf = "\r\n";
    const std::array<net::const_buffer, 3> pieces{net::buffer(size_line.data(), line.size), net::buffer(data, size),
                                                  net::buffer(crlf)};
    co_return co_await write_all(to, std::span<const net::const_buffer>(pieces));
}

// How a splice run ended: the body's rest moved, or where it stopped.
enum class SpliceEnd { moved, eof, no_pipe, read_failed, write_failed };

// Moves up to `remaining` bytes from `in`'s socket to `to` through a pipe from
// the worker's pool, lowering `remaining` as they go. The pipe goes back to the
// pool whenever it is empty and the sender is silent (an Outlook channel idles
// for minutes between bursts), as the fd pump's does.
net::awaitable<SpliceEnd> splice_body(Inbound& in, tcp::socket& to, std::uint64_t& remaining, PipePool& pipes,
                                      std::uint64_t& written) {
    // splice(2) honours the sockets' own O_NONBLOCK, not only SPLICE_F_NONBLOCK:
    // castellan's sockets are opened with it (reactor_ops.hpp).
    tcp::socket& from = *in.side.socket;
    Pipe pipe;
    while (remaining > 0) {
        if (!pipe.is_open()) {
            pipe = pipes.take();
            if (!pipe.is_open()) co_return SpliceEnd::no_pipe;
        }
        const std::size_t ask = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, splice_chunk));
        const ssize_t got =
            ::splice(from.native_handle(), nullptr, pipe.write_end(), nullptr, ask, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (got < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) co_return SpliceEnd::read_failed;
            pipes.give_back(std::move(pipe));
            auto [wait_error] = co_await async_wait_after_would_block(from, tcp::socket::wait_read, use);
            if (wait_error) co_return SpliceEnd::read_failed;
            continue;
        }
        if (got == 0) {
            pipes.give_back(std::move(pipe));
            co_return SpliceEnd::eof;
        }
        const auto moved = static_cast<std::uint64_t>(got);
        in.bytes += moved;
        in.consumed += moved;
        in.sink.add(moved);
        in.activity->last = std::chrono::steady_clock::now();
        pipe.buffered = static_cast<std::size_t>(got);
        while (pipe.buffered > 0) {
            const ssize_t sent = ::splice(pipe.read_end(), nullptr, to.native_handle(), nullptr, pipe.buffered,
                                          SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (sent > 0) {
                pipe.buffered -= static_cast<std::size_t>(sent);
                continue;
            }
            if (sent < 0 && errno == EINTR) continue;
            // 0 with bytes in the pipe would spin: a failure like any other.
            if (sent == 0 || errno != EAGAIN) co_return SpliceEnd::write_failed;
            auto [wait_error] = co_await async_wait_after_would_block(to, tcp::socket::wait_write, use);
            if (wait_error) co_return SpliceEnd::write_failed;
            in.activity->last = std::chrono::steady_clock::now();
        }
        written += moved;
        remaining -= moved;
    }
    pipes.give_back(std::move(pipe));
    co_return SpliceEnd::moved;
}

}  // namespace

net::awaitable<boost::system::error_code> read_more(Inbound& in) {
    auto space = in.buffer.prepare(read_chunk);
    boost::system::error_code error;
    std::size_t got = 0;
    if (in.side.tls) {
        got = co_await read_some(in.side, static_cast<char*>(space.data()), space.size(), error);
    } else {
        // Plain: the read itself, without read_some()'s coroutine frame (a
        // malloc and a free per read: two reads per http request).
        auto [read_error, read] = co_await in.side.socket->async_read_some(space, use);
        error = read_error;
        got = read;
    }
    in.buffer.commit(got);
    if (got > 0) {
        in.bytes += got;
        in.sink.add(got);
        in.activity->last = std::chrono::steady_clock::now();
    }
    co_return error;
}

template <typename Parser>
net::awaitable<boost::system::error_code> read_head(Inbound& in, Parser& parser) {
    for (;;) {
        if (in.buffer.size() > 0) {
            boost::system::error_code error;
            std::size_t used = 0;
            try {
                used = parser.put(in.buffer.data(), error);
            } catch (const std::length_error&) {
                // Beast's fields hold a name or value of at most 64 KiB and throw
                // beyond it, whatever the header limit: a head too large.
                co_return make_error_code(bhttp::error::header_limit);
            }
            in.buffer.consume(used);
            in.consumed += used;
            if (parser.is_header_done()) co_return boost::system::error_code();
            if (error && error != bhttp::error::need_more) co_return error;
        }
        const boost::system::error_code error = co_await read_more(in);
        if (error) co_return error;
    }
}

net::awaitable<BodyEnd> relay_chunked_body(Inbound& in, StreamSide to, bool chunked_out, std::uint64_t& written) {
    http::ChunkedDecoder decoder;
    while (!decoder.done()) {
        if (in.buffer.size() > 0) {
            const auto buffered = in.buffer.data();
            const http::ChunkedDecoder::Piece piece =
                decoder.next(std::string_view(static_cast<const char*>(buffered.data()), buffered.size()));
            if (!piece.data.empty()) {
                const bool sent = co_await write_body_piece(to, piece.data.data(), piece.data.size(), chunked_out);
                if (!sent) co_return BodyEnd::write_failed;
                written += piece.data.size();
            }
            in.buffer.consume(piece.used);
            in.consumed += piece.used;
            if (decoder.failed()) co_return BodyEnd::bad_framing;
            // The decoder stops at each chunk's data: what is left is looked at
            // before reading more.
            if (in.buffer.size() > 0 || decoder.done()) continue;
        }
        const boost::system::error_code read_error = co_await read_more(in);
        if (read_error) co_return BodyEnd::read_failed;  // a chunked body never ends with the connection
    }
    if (chunked_out) {
        static constexpr std::string_view last_chunk = "0\r\n\r\n";
        const bool sent = co_await write_all(to, net::buffer(last_chunk));
        if (!sent) co_return BodyEnd::write_failed;
    }
    co_return BodyEnd::done;
}

net::awaitable<BodyEnd> relay_counted_body(Inbound& in, std::optional<std::uint64_t> length, StreamSide to,
                                           const PumpTools& tools, std::uint64_t& written) {
    const bool until_close = !length;
    std::uint64_t remaining = length.value_or(std::numeric_limits<std::uint64_t>::max());
    bool may_splice = !in.side.tls && !to.tls && tools.kind != PumpKind::copy;
    while (remaining > 0) {
        if (in.buffer.size() > 0) {
            const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(in.buffer.size(), remaining));
            const auto data = in.buffer.data();
            if (!co_await write_all(to, net::buffer(data.data(), size))) co_return BodyEnd::write_failed;
            in.buffer.consume(size);
            in.consumed += size;
            written += size;
            remaining -= size;
            continue;
        }
        if (may_splice && remaining > read_chunk) {
            switch (co_await splice_body(in, *to.socket, remaining, *tools.pipes, written)) {
                case SpliceEnd::moved: continue;
                case SpliceEnd::eof: co_return until_close ? BodyEnd::done : BodyEnd::read_failed;
                case SpliceEnd::no_pipe: may_splice = false; continue;  // out of descriptors: copy instead
                case SpliceEnd::read_failed: co_return BodyEnd::read_failed;
                case SpliceEnd::write_failed: co_return BodyEnd::write_failed;
            }
        }
        const boost::system::error_code read_error = co_await read_more(in);
        if (read_error == net::error::eof && until_close) co_return BodyEnd::done;
        if (read_error) co_return BodyEnd::read_failed;
    }
    co_return BodyEnd::done;
}

template net::awaitable<boost::system::error_code> read_head(Inbound&, RequestParser&);
template net::awaitable<boost::system::error_code> read_head(Inbound&, ResponseParser&);

}  // namespace castellan::proxy
