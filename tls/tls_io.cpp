#include "tls/tls_io.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <climits>

namespace castellan::tls {
namespace net = boost::asio;

namespace {

int clamp(std::size_t size) { return size > INT_MAX ? INT_MAX : static_cast<int>(size); }

TlsIo result_of(SSL* ssl, int returned) {
    if (returned > 0) return {TlsIo::Status::done, static_cast<std::size_t>(returned)};
    switch (SSL_get_error(ssl, returned)) {
        case SSL_ERROR_WANT_READ: return {TlsIo::Status::want_read, 0};
        case SSL_ERROR_WANT_WRITE: return {TlsIo::Status::want_write, 0};
        // With SSL_OP_IGNORE_UNEXPECTED_EOF a FIN without close_notify is a
        // ZERO_RETURN too: a truncated stream is the client's own business.
        case SSL_ERROR_ZERO_RETURN: return {TlsIo::Status::closed, 0};
        default: return {TlsIo::Status::failed, 0};
    }
}

HandshakeFailure classify(int ssl_error, unsigned long error) {
    if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN || error == 0) {
        return HandshakeFailure::closed;
    }
    if (ERR_GET_LIB(error) != ERR_LIB_SSL) return HandshakeFailure::protocol;
    switch (ERR_GET_REASON(error)) {
        case SSL_R_HTTP_REQUEST:
        case SSL_R_HTTPS_PROXY_REQUEST:
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
            return HandshakeFailure::not_tls;
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_VERSION_TOO_HIGH:
        case SSL_R_NO_PROTOCOLS_AVAILABLE:
            return HandshakeFailure::version;
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_NO_CIPHERS_AVAILABLE:
        case SSL_R_NO_SHARED_GROUPS:
        case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
            return HandshakeFailure::cipher;
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
            return HandshakeFailure::certificate;
        default:
            return HandshakeFailure::protocol;
    }
}

std::string detail_of(SSL* ssl, HandshakeFailure failure, unsigned long error) {
    if (failure == HandshakeFailure::certificate) {
        const long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    }
    if (error == 0) return "connection closed";
    const char* reason = ERR_reason_error_string(error);
    return reason ? reason : "TLS error";
}

}  // namespace

TlsIo tls_read(SSL* ssl, char* data, std::size_t size) {
    ERR_clear_error();
    return result_of(ssl, SSL_read(ssl, data, clamp(size)));
}

TlsIo tls_peek(SSL* ssl, char* data, std::size_t size) {
    ERR_clear_error();
    return result_of(ssl, SSL_peek(ssl, data, clamp(size)));
}

TlsIo tls_write(SSL* ssl, const char* data, std::size_t size) {
    ERR_clear_error();
    return result_of(ssl, SSL_write(ssl, data, clamp(size)));
}

void tls_close_notify(SSL* ssl) {
    ERR_clear_error();
    SSL_shutdown(ssl);
    ERR_clear_error();
}

const char* to_string(HandshakeFailure failure) {
    switch (failure) {
        case HandshakeFailure::none: return "none";
        case HandshakeFailure::timeout: return "timeout";
        case HandshakeFailure::closed: return "closed";
        case HandshakeFailure::not_tls: return "not_tls";
        case HandshakeFailure::malformed: return "malformed";
        case HandshakeFailure::version: return "version";
        case HandshakeFailure::cipher: return "cipher";
        case HandshakeFailure::certificate: return "certificate";
        case HandshakeFailure::protocol: return "protocol";
    }
    return "protocol";
}

namespace {

// Waits for what `io` asks (want_read, want_write); false when the wait failed.
net::awaitable<bool> wait_for(net::ip::tcp::socket& socket, TlsIo::Status status) {
    auto [error] = co_await socket.async_wait(wait_of(status), net::as_tuple(net::use_awaitable));
    co_return !error;
}

}  // namespace

net::awaitable<TlsIo> read_some(net::ip::tcp::socket& socket, SSL* ssl, char* data, std::size_t size) {
    for (;;) {
        const TlsIo io = tls_read(ssl, data, size);
        if (!is_wait(io.status)) co_return io;
        const bool ready = co_await wait_for(socket, io.status);
        if (!ready) co_return TlsIo{TlsIo::Status::failed, 0};
    }
}

net::awaitable<bool> write_all(net::ip::tcp::socket& socket, SSL* ssl, const char* data, std::size_t size) {
    std::size_t written = 0;
    while (written < size) {
        const TlsIo io = tls_write(ssl, data + written, size - written);
        if (io.status == TlsIo::Status::done) {
            written += io.bytes;
            continue;
        }
        if (!is_wait(io.status)) co_return false;
        const bool ready = co_await wait_for(socket, io.status);
        if (!ready) co_return false;
    }
    co_return true;
}

net::awaitable<HandshakeResult> handshake(net::ip::tcp::socket& socket, SSL* ssl) {
    constexpr auto use = net::as_tuple(net::use_awaitable);
    for (;;) {
        ERR_clear_error();
        const int returned = SSL_do_handshake(ssl);
        if (returned == 1) co_return HandshakeResult{};
        const int ssl_error = SSL_get_error(ssl, returned);
        if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
            const auto wait = ssl_error == SSL_ERROR_WANT_READ ? net::ip::tcp::socket::wait_read
                                                               : net::ip::tcp::socket::wait_write;
            auto [error] = co_await socket.async_wait(wait, use);
            if (error) co_return HandshakeResult{HandshakeFailure::closed, error.message()};
            continue;
        }
        const unsigned long error = ERR_peek_error();
        const HandshakeFailure failure = classify(ssl_error, error);
        std::string detail = detail_of(ssl, failure, error);
        ERR_clear_error();
        co_return HandshakeResult{failure, std::move(detail)};
    }
}

}  // namespace castellan::tls
