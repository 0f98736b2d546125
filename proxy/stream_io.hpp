// Awaited reads and writes on one end of a connection, plain or TLS
// (StreamSide), for the sessions that parse what they carry (http mode). The fd
// pump stays the path of bytes passed on untouched.
#pragma once

#include "proxy/pump.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include <cstddef>
#include <span>

namespace castellan::proxy {

// Reads at least one byte into [data, data + size). `error` is eof when the
// peer closed (a TLS peer with or without close_notify), another error when the
// read failed; then 0 bytes.
boost::asio::awaitable<std::size_t> read_some(StreamSide side, char* data, std::size_t size,
                                              boost::system::error_code& error);

// Writes every byte of `pieces`, in order. False when the write failed. (A
// span, not an initializer_list: g++ 12 cannot keep the latter's array in a
// coroutine frame.)
boost::asio::awaitable<bool> write_all(StreamSide side, std::span<const boost::asio::const_buffer> pieces);
boost::asio::awaitable<bool> write_all(StreamSide side, boost::asio::const_buffer data);

// Sends close_notify on a TLS side, then shuts the socket's sending side: the
// peer sees the end of what castellan will send.
void shutdown_send(StreamSide side);

}  // namespace castellan::proxy
