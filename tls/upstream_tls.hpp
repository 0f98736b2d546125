// TLS that castellan opens itself, towards real servers: the re-encrypted
// connections of a service and the https health checks. One client context, and
// per real server the last session, so that the next connection resumes
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
    // TLS 1.2 or later. `verify`: the real server's chain must verify against
    // `ca_file` (PEM) when given, else against the system's CA paths, and its
    // name against the SNI of each session when it has one; otherwise any
    // certificate is accepted (Exchange's self-signed default ones included). A
    // given `ca_file` is loaded even without `verify`, so that a wrong path is
    // reported at load. Gives null and `error` on failure. Load time only.
    static std::unique_ptr<UpstreamTls> make(bool verify, const std::optional<std::string>& ca_file,
                                             std::string& error);

    // A client-side session on `socket` (which must outlive it) sending `sni`,
    // for the real server whose resumable session `slot` keeps (it will keep
    // the session this one makes; it must outlive it too). Null when OpenSSL is
    // out of memory or `sni` is no valid name. Any thread.
    SslPtr new_session(boost::asio::ip::tcp::socket& socket, SessionSlot& slot,
                       const std::optional<std::string>& sni) const;

    SSL_CTX* native_handle() const { return context_.get(); }

private:
    UpstreamTls() = default;
    static int on_new_session(SSL* ssl, SSL_SESSION* session);

    SslContextPtr context_;
    bool verify_ = false;
};

}  // namespace castellan::tls
