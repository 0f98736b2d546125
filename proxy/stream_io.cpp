#include "proxy/stream_io.hpp"

#include "tls/tls_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <string>


namespace castellan::proxy {
namespace net = boost::asio;

net::awaitable<std::size_t> read_some(StreamSide side, char* data, std::size_t size, boost::system::error_code& error) {
    if (side.tls) {
        const tls::TlsIo io = co_await tls::read_some(*side.socket, side.tls, data, size);
        switch (io.status) {
            case tls::TlsIo::Status::done: error = {}; co_return io.bytes;
            case tls::TlsIo::Status::closed: error = net::error::eof; co_return 0;
            default: error = net::error::connection_aborted; co_return 0;
        }
    }
    auto [read_error, got] = co_await side.socket->async_read_some(net::buffer(data, size),
                                                                   net::as_tuple(net::use_awaitable));
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
            co_return co_await tls::write_all(*side.socket, side.tls, joined.data(), joined.size());
        }
        for (const auto& piece : pieces) {
            if (piece.size() == 0) continue;
            const bool written =
                co_await tls::write_all(*side.socket, side.tls, static_cast<const char*>(piece.data()), piece.size());
            if (!written) co_return false;
        }
        co_return true;
    }
    // The span is a buffer sequence itself; the caller's buffers outlive the write.
    auto [error, written] = co_await net::async_write(*side.socket, pieces, net::as_tuple(net::use_awaitable));
    co_return !error;
}

net::awaitable<bool> write_all(StreamSide side, net::const_buffer data) {
    if (side.tls) co_return co_await tls::write_all(*side.socket, side.tls, static_cast<const char*>(data.data()), data.size());
    auto [error, written] = co_await net::async_write(*side.socket, data, net::as_tuple(net::use_awaitable));
    co_return !error;
}

void shutdown_send(StreamSide side) {
    if (side.tls) tls::tls_close_notify(side.tls);
    boost::system::error_code ignored;
    side.socket->shutdown(net::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace castellan::proxy
