#include "proxy/client_hello_reader.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// A ClientHello of the largest size the parser takes, in records of the
// smallest size a client may use (one byte each, five bytes of header): more
// than that is malformed whatever follows.
constexpr std::size_t most_bytes = tls::max_client_hello_bytes * 6;
constexpr std::size_t read_chunk = 4096;

}  // namespace

const char* to_string(ClientHelloRead::Result result) {
    switch (result) {
        case ClientHelloRead::Result::complete: return "complete";
        case ClientHelloRead::Result::not_tls: return "not_tls";
        case ClientHelloRead::Result::malformed: return "malformed";
        case ClientHelloRead::Result::timeout: return "handshake_timeout";
        case ClientHelloRead::Result::closed: return "client_closed";
    }
    return "unknown";
}

net::awaitable<void> read_client_hello(tcp::socket& client, ClientHelloRead& read) {
    for (;;) {
        const std::size_t had = read.bytes.size();
        read.bytes.resize(had + read_chunk);
        auto [error, got] = co_await client.async_read_some(net::buffer(read.bytes.data() + had, read_chunk),
                                                            net::as_tuple(net::use_awaitable));
        read.bytes.resize(had + got);
        if (error) {
            read.result = ClientHelloRead::Result::closed;
            read.reason = "the client closed before its ClientHello";
            break;
        }
        const auto parsed = tls::parse_client_hello(std::span<const std::uint8_t>(read.bytes.data(), read.bytes.size()));
        if (parsed.status == tls::HelloStatus::complete) {
            read.result = ClientHelloRead::Result::complete;
            read.info = parsed.info;
            break;
        }
        if (parsed.status == tls::HelloStatus::not_tls || parsed.status == tls::HelloStatus::malformed) {
            read.result = parsed.status == tls::HelloStatus::not_tls ? ClientHelloRead::Result::not_tls
                                                                      : ClientHelloRead::Result::malformed;
            read.reason = parsed.error ? parsed.error : "unreadable ClientHello";
            break;
        }
        if (read.bytes.size() >= most_bytes) {
            read.result = ClientHelloRead::Result::malformed;
            read.reason = "ClientHello too large";
            break;
        }
    }
}

}  // namespace castellan::proxy
