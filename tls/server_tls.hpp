// The TLS side of a terminating virtual service: one OpenSSL context per
// configured certificate, the one to present chosen by the client's SNI.
#pragma once

#include "conf/config.hpp"
#include "tls/openssl_handles.hpp"
#include "tls/ticket_keys.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>
#include <vector>

namespace castellan::tls {

// A problem with the `tls` block, at a JSON path relative to it
// ("/certificates/0/key").
struct TlsConfigError {
    std::string path;
    std::string message;
};

class ServerTls {
public:
    // Loads every certificate chain and key of `tls` (a key that does not match
    // its certificate, an encrypted key or an unreadable file is an error at its
    // path) and applies min_version, ciphers and ciphersuites (an OpenSSL string
    // it does not accept is an error at its key). Tickets are sealed with
    // `tickets`. `alpn`: the protocols offered in ALPN, in order of preference
    // (none: no ALPN answer). Gives null and `errors` on failure. Load time only.
    static std::unique_ptr<ServerTls> make(const conf::Tls& tls, std::shared_ptr<TicketKeyRing> tickets,
                                           std::vector<std::string> alpn, std::vector<TlsConfigError>& errors);
    ServerTls(const ServerTls&) = delete;
    ServerTls& operator=(const ServerTls&) = delete;

    // A server-side session for an accepted client on `socket` (which must
    // outlive it); null when OpenSSL
    // is out of memory. Any thread.
    SslPtr new_session(boost::asio::ip::tcp::socket& socket) const;

    // The name a client asked for in its ClientHello: recorded before the
    // handshake can fail on anything else, so that a failure is logged with it.
    // Point `ssl` at `name` (which must outlive the handshake) before it starts;
    // it stays empty for a client that sent none.
    static void record_server_name(SSL* ssl, std::string* name);

    // The DNS names each certificate answers for, in config order.
    const std::vector<std::vector<std::string>>& names() const { return names_; }

private:
    ServerTls() = default;
    static int on_client_hello(SSL* ssl, int* alert, void* self);
    static int on_alpn(SSL* ssl, const unsigned char** out, unsigned char* out_size, const unsigned char* in,
                       unsigned int in_size, void* self);

    std::shared_ptr<TicketKeyRing> tickets_;  // outlives contexts_
    std::vector<SslContextPtr> contexts_;     // [0]: the default certificate's
    std::vector<std::vector<std::string>> names_;
    std::vector<unsigned char> alpn_;  // wire format: length-prefixed names
};

}  // namespace castellan::tls
