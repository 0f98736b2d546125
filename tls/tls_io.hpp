// Non-blocking reads, writes and handshakes of castellan's own TLS sessions
// (terminated clients, re-encrypted real-server connections), on a socket
// attached with attach_socket(). The caller waits for the readiness each
// result names, so the same code serves the fd pump and the handshake.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <string>

namespace castellan::tls {

struct TlsIo {
    enum class Status {
        done,        // `bytes` moved (> 0)
        want_read,   // nothing moved: try again once the socket is readable
        want_write,  // nothing moved: try again once the socket is writable
        closed,      // the peer closed (close_notify, or a plain EOF: many clients send none)
        failed,      // a TLS or socket error; the session is unusable
    } status = Status::done;
    std::size_t bytes = 0;
};

// Whether `status` asks the caller to wait, and for which readiness.
inline bool is_wait(TlsIo::Status status) {
    return status == TlsIo::Status::want_read || status == TlsIo::Status::want_write;
}
inline boost::asio::socket_base::wait_type wait_of(TlsIo::Status status) {
    return status == TlsIo::Status::want_read ? boost::asio::socket_base::wait_read
                                              : boost::asio::socket_base::wait_write;
}

// One SSL_read of at most `size` bytes. Clears OpenSSL's error queue first, as
// SSL_get_error needs.
TlsIo tls_read(SSL* ssl, char* data, std::size_t size);
// One SSL_peek: like tls_read, but the bytes stay for the next read.
TlsIo tls_peek(SSL* ssl, char* data, std::size_t size);
// One SSL_write; with SSL_MODE_ENABLE_PARTIAL_WRITE it may move fewer bytes.
// After want_read/want_write, call again with the same bytes (they may have
// moved in memory: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
TlsIo tls_write(SSL* ssl, const char* data, std::size_t size);
// Sends close_notify if it can be sent at once; a peer that cannot take it
// gets the FIN alone.
void tls_close_notify(SSL* ssl);

// Why a handshake failed, few enough to be a metrics label.
enum class HandshakeFailure {
    none,
    timeout,      // the phase deadline closed the socket (decided by the caller)
    closed,       // the peer closed or reset during the handshake
    not_tls,      // the first bytes were not a TLS record (plain HTTP on 443, ...)
    malformed,    // a ClientHello no TLS server would accept (passthrough's parser)
    version,      // no protocol version in common
    cipher,       // no cipher suite, group or signature algorithm in common
    certificate,  // the peer's certificate did not verify (real servers)
    protocol,     // any other TLS error
};
inline constexpr std::size_t handshake_failure_kinds = 9;
const char* to_string(HandshakeFailure failure);

struct HandshakeResult {
    HandshakeFailure failure = HandshakeFailure::none;
    std::string detail;  // OpenSSL's reason, for the log
    bool ok() const { return failure == HandshakeFailure::none; }
};

// Runs the handshake of `ssl` (server or client side, as set on it) over
// `socket`, waiting for readiness between steps. Has no deadline of its own: the
// caller's closes the socket, which ends it as `closed`.
boost::asio::awaitable<HandshakeResult> handshake(boost::asio::ip::tcp::socket& socket, SSL* ssl);

// For connections castellan drives itself (health checks), one awaited step at
// a time: reads at least one byte, waiting for the socket as OpenSSL asks.
// Gives `done` with the bytes, `closed`, or `failed` (a socket closed under it
// by a deadline included).
boost::asio::awaitable<TlsIo> read_some(boost::asio::ip::tcp::socket& socket, SSL* ssl, char* data, std::size_t size);
// Writes all of `data`: true when it was.
boost::asio::awaitable<bool> write_all(boost::asio::ip::tcp::socket& socket, SSL* ssl, const char* data,
                                       std::size_t size);

}  // namespace castellan::tls
