#include "tls/upstream_tls.hpp"

#include "tls/socket_bio.hpp"

#include <openssl/err.h>

namespace castellan::tls {

namespace {

// Where new_session() leaves the SessionSlot for on_new_session.
int slot_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

}  // namespace

void SessionSlot::store(SSL_SESSION* session) {
    std::lock_guard lock(mutex_);
    session_.reset(session);
}

void SessionSlot::offer_to(SSL* ssl) {
    std::lock_guard lock(mutex_);
    if (!session_ || !SSL_SESSION_is_resumable(session_.get())) return;
    // A copy: OpenSSL marks the session of a connection freed without
    // close_notify as not resumable, and a real server's connection often ends
    // that way (it closed first, or failed).
    SslSessionPtr copy(SSL_SESSION_dup(session_.get()));
    if (copy) SSL_set_session(ssl, copy.get());  // takes its own reference
}

std::unique_ptr<UpstreamTls> UpstreamTls::make(bool verify, const std::optional<std::string>& ca_file,
                                               std::string& error) {
    std::unique_ptr<UpstreamTls> made(new UpstreamTls());
    made->context_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX* context = made->context_.get();
    if (!context) {
        error = "cannot create a TLS client context";
        return nullptr;
    }
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Sessions are kept per real server (SessionSlot), not in OpenSSL's cache.
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(context, &UpstreamTls::on_new_session);
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(context, ca_file->c_str(), nullptr) != 1) {
            const unsigned long code = ERR_peek_last_error();
            const char* reason = code ? ERR_reason_error_string(code) : nullptr;
            error = "cannot load CA certificates from \"" + *ca_file + "\": " + (reason ? reason : "unknown error");
            ERR_clear_error();
            return nullptr;
        }
    } else if (verify && SSL_CTX_set_default_verify_paths(context) != 1) {
        error = "cannot load the system's CA certificates";
        ERR_clear_error();
        return nullptr;
    }
    SSL_CTX_set_verify(context, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    made->verify_ = verify;
    return made;
}

SslPtr UpstreamTls::new_session(boost::asio::ip::tcp::socket& socket, SessionSlot& slot,
                                const std::optional<std::string>& sni) const {
    SslPtr ssl(SSL_new(context_.get()));
    if (!ssl || !attach_socket(ssl.get(), socket)) return nullptr;
    SSL_set_connect_state(ssl.get());
    SSL_set_read_ahead(ssl.get(), 1);  // one recv(2) per record, not two (server_tls.cpp)
    if (sni) {
        if (SSL_set_tlsext_host_name(ssl.get(), sni->c_str()) != 1) return nullptr;
        if (verify_ && SSL_set1_host(ssl.get(), sni->c_str()) != 1) return nullptr;
    }
    SSL_set_ex_data(ssl.get(), slot_index(), &slot);
    slot.offer_to(ssl.get());
    return ssl;
}

int UpstreamTls::on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* slot = static_cast<SessionSlot*>(SSL_get_ex_data(ssl, slot_index()));
    // A copy, for the reason offer_to() gives: `session` stays the connection's.
    if (slot) {
        if (SSL_SESSION* copy = SSL_SESSION_dup(session)) slot->store(copy);
    }
    return 0;  // OpenSSL keeps its own reference
}

}  // namespace castellan::tls
