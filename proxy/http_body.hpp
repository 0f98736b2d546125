// Reading HTTP message heads and moving message bodies from one end of an http
// session to the other, without holding a body whole.
#pragma once

#include "proxy/pump.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstdint>
#include <optional>

namespace castellan::proxy {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;
using ResponseParser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;

// Where the bytes read from one side wait to be parsed, and what was read.
struct Inbound {
    Inbound(StreamSide side, ByteSink sink, Activity* activity) : side(side), sink(sink), activity(activity) {}
    StreamSide side;
    ByteSink sink;
    Activity* activity = nullptr;
    boost::beast::flat_buffer buffer;
    std::uint64_t bytes = 0;     // read from `side` since the current request began
    std::uint64_t consumed = 0;  // of those and earlier ones, taken by the current message (its own bytes_in)
};

// Reads once more from `in`'s side into its buffer (at most 16 KiB), counting
// the bytes and the activity.
boost::asio::awaitable<boost::system::error_code> read_more(Inbound& in);

// Parses a message head from `in`, reading as needed; the bytes after it stay
// in the buffer. (Instantiated for RequestParser and ResponseParser.)
template <typename Parser>
boost::asio::awaitable<boost::system::error_code> read_head(Inbound& in, Parser& parser);

// How a body's relay ended.
enum class BodyEnd { done, bad_framing, read_failed, write_failed };

// Moves a chunked body from `in` to `to`, decoded by castellan's strict
// decoder (chunked_decoder.hpp) and coded anew as chunks when `chunked_out`,
// else plain (for an HTTP/1.0 client): the receiver sees the framing castellan
// understood, never the sender's own. Trailers are dropped. bad_framing when
// the coding breaks RFC 9112's grammar or limits.
boost::asio::awaitable<BodyEnd> relay_chunked_body(Inbound& in, StreamSide to, bool chunked_out,
                                                   std::uint64_t& written);

// Moves a body of `length` bytes (none: until `in` closes) from `in` to `to`
// unchanged: what `in`'s buffer holds, then the rest straight from the socket,
// through a pipe with splice(2) where both ends are plain sockets and pumps may
// splice (the bytes never enter castellan's memory), else read and written
// through `in`'s buffer. What follows the body (a pipelined request) stays in
// `in`'s buffer for the next head: a splice never asks for more than the body's
// rest.
boost::asio::awaitable<BodyEnd> relay_counted_body(Inbound& in, std::optional<std::uint64_t> length, StreamSide to,
                                                   const PumpTools& tools, std::uint64_t& written);

}  // namespace castellan::proxy
