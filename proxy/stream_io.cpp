#include "proxy/stream_io.hpp"

#include "proxy/reactor_ops.hpp"
#include "tls/tls_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <string>


namespace castellan::proxy {
namespace net = boost::asio;

namespace {

constexpr auto use = net::as_tuple(net::use_awaitable);

// A TLS session's "want read" and "want write" come from the socket's EAGAIN
// (socket_bio.cpp; OpenSSL reads on past records that carry no data by itself,
// SSL_MODE_AUTO_RETRY being its default), so the waits below need not re-arm
// epoll (reactor_ops.hpp).
using tls::is_wait;
using tls::wait_of;

// Every byte of [data, data + size) through the TLS session of `side`.
net::awaitable<bool> write_all_tls(StreamSide side, const char* data, std::size_t size) {
    std::size_t written = 0;
    while (written < size) {
        const tls::TlsIo io = tls::tls_write(side.tls, data + written, size - written);
        if (io.status == tls::TlsIo::Status::done) {
            written += io.bytes;
            continue;
        }
        if (!is_wait(io.status)) co_return false;
        auto [error] = co_await async_wait_after_would_block(*side.socket, wait_of(io.status), use);
        if (error) co_return false;
    }
    co_return true;
}

}  // namespace

net::awaitable<std::size_t> read_some(StreamSide side, char* data, std::size_t size, boost::system::error_code& error) {
    if (side.tls) {
        for (;;) {
            const tls::TlsIo io = tls::tls_read(side.tls, data, size);
            switch (io.status) {
                case tls::TlsIo::Status::done: error = {}; co_return io.bytes;
                case tls::TlsIo::Status::closed: error = net::error::eof; co_return 0;
                case tls::TlsIo::Status::failed: error = net::error::connection_aborted; co_return 0;
                case tls::TlsIo::Status::want_read:
                case tls::TlsIo::Status::want_write: break;
            }
            auto [wait_error] = co_await async_wait_after_would_block(*side.socket, wait_of(io.status), use);
            if (wait_error) {
                error = net::error::connection_aborted;
                co_return 0;
            }
        }
    }
    auto [read_error, got] = co_await side.socket->async_read_some(net::buffer(data, size), use);
    error = read_error;
    co_return got;
}

net::awaitable<bool> write_all(StreamSide side, std::span<const net::const_buffer> pieces) {
    if (side.tls) {
        // Small pieces go in one TLS record (one send) rather than one each.
        constexpr std::size_t record_payload = 16 * 1024;
        std::size_t total = 0;
        for (const auto& piece : pieces) total += piece.size();
        if (pieces.size() > 1 && total <= record_payload) {
            std::string joined;
            joined.reserve(total);
            for (const auto& piece : pieces) joined.append(static_cast<const char*>(piece.data()), piece.size());
            co_return co_await write_all_tls(side, joined.data(), joined.size());
        }
        for (const auto& piece : pieces) {
            if (piece.size() == 0) continue;
            const bool written = co_await write_all_tls(side, static_cast<const char*>(piece.data()), piece.size());
            if (!written) co_return false;
        }
        co_return true;
    }
    // The span is a buffer sequence itself; the caller's buffers outlive the write.
    auto [error, written] = co_await net::async_write(*side.socket, pieces, use);
    co_return !error;
}

net::awaitable<bool> write_all(StreamSide side, net::const_buffer data) {
    if (side.tls) co_return co_await write_all_tls(side, static_cast<const char*>(data.data()), data.size());
    auto [error, written] = co_await net::async_write(*side.socket, data, use);
    co_return !error;
}

void shutdown_send(StreamSide side) {
    if (side.tls) tls::tls_close_notify(side.tls);
    boost::system::error_code ignored;
    side.socket->shutdown(net::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace castellan::proxy
