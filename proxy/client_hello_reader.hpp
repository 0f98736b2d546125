// Reading a TLS client's ClientHello on a passthrough service, to log the name
// it asks for (SNI) before the bytes go on untouched to the real server.
#pragma once

#include "tls/client_hello.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <vector>

namespace castellan::proxy {

struct ClientHelloRead {
    enum class Result {
        complete,   // `info` holds what the hello says
        not_tls,    // the client speaks something else (plain HTTP on 443, ...)
        malformed,  // a TLS record that no TLS server would accept
        timeout,    // no whole ClientHello within the handshake timeout (set by the session)
        closed,     // the client closed or reset first
    } result = Result::closed;
    // Everything read from the client, the hello and whatever followed it in the
    // same reads: the real server gets these bytes first, exactly as sent.
    std::vector<std::uint8_t> bytes;
    tls::ClientHelloInfo info;
    const char* reason = "";  // for the log when not complete
};

// Reads from `client` into `read` until the bytes hold a whole ClientHello
// (which may span several TLS records), the client's first bytes show it is not
// TLS, or the read fails: the session's handshake deadline closes the socket
// (SessionRegistry), which ends the read as `closed`; the session then calls it
// a timeout. Reads
// at most tls::max_client_hello_bytes plus record headers. The caller owns
// `read`, on the heap: a session's coroutine frame lives as long as its
// connection, and most connections are not passthrough ones. Runs on the
// connection's worker thread.
boost::asio::awaitable<void> read_client_hello(boost::asio::ip::tcp::socket& client, ClientHelloRead& read);

const char* to_string(ClientHelloRead::Result result);

}  // namespace castellan::proxy
