// TLS towards the real servers of a re-encrypting service: one client context,
// and per real server the last session, so that the next connection resumes
// instead of paying a full handshake.
#pragma once

#include "conf/config.hpp"
#include "tls/openssl_handles.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace castellan::tls {

// The session to resume with one real server. Shared by every worker that
// connects to it: a mutex, taken once per handshake.
class SessionSlot {
public:
    // Takes over `session` (one reference).
    void store(SSL_SESSION* session);
    // Sets the remembered session, if any, on `ssl` for resumption.
    void offer_to(SSL* ssl);

private:
    std::mutex mutex_;
    SslSessionPtr session_;
};

class UpstreamTls {
public:
    // `upstream.verify`: the real server's chain must verify against
    // `upstream.ca` (else the system's CA paths) and, when `upstream.sni` is
    // set, name it. `upstream.sni` is also the name sent in the ClientHello.
    // Gives null and `error` (a CA file that cannot be loaded) on failure.
    static std::unique_ptr<UpstreamTls> make(const conf::UpstreamTls& upstream, std::string& error);

    // A client-side session on `socket` (which must outlive it) for the real server whose resumable
    // session `slot` keeps (and will keep the session this one makes); null
    // when OpenSSL is out of memory. `slot` must outlive the session.
    SslPtr new_session(boost::asio::ip::tcp::socket& socket, SessionSlot& slot) const;

private:
    UpstreamTls() = default;
    static int on_new_session(SSL* ssl, SSL_SESSION* session);

    SslContextPtr context_;
    std::optional<std::string> sni_;
    bool verify_ = false;
};

}  // namespace castellan::tls
