#include "tls/server_tls.hpp"

#include "tls/certificate_names.hpp"
#include "tls/socket_bio.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

#include <cstdio>
#include <string_view>

namespace castellan::tls {

namespace {

std::string openssl_reason() {
    const unsigned long error = ERR_peek_last_error();
    const char* reason = error ? ERR_reason_error_string(error) : nullptr;
    std::string text = reason ? reason : "unknown error";
    ERR_clear_error();
    return text;
}

int server_name_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

// The host name in a server_name extension's body (RFC 6066 3): a list of
// (type, length, name); the first host_name entry. Empty when malformed, or
// when the name holds bytes no DNS name has (it is logged).
std::string_view host_name_of(const unsigned char* data, std::size_t size) {
    if (size < 2) return {};
    std::size_t list = (std::size_t{data[0]} << 8) | data[1];
    if (list + 2 > size) return {};
    std::size_t at = 2;
    const std::size_t end = 2 + list;
    while (at + 3 <= end) {
        const unsigned type = data[at];
        const std::size_t length = (std::size_t{data[at + 1]} << 8) | data[at + 2];
        at += 3;
        if (at + length > end) return {};
        if (type == TLSEXT_NAMETYPE_host_name) {
            const std::string_view name(reinterpret_cast<const char*>(data + at), length);
            for (char c : name) {
                const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                     c == '-' || c == '.' || c == '_' || c == '*';
                if (!allowed) return {};
            }
            return name;
        }
        at += length;
    }
    return {};
}

// Encrypted keys would make OpenSSL prompt on the terminal: refuse them instead.
int no_passphrase(char*, int, int, void*) { return 0; }

// The subjectAltName DNS names of `certificate`; its common name when it has none.
std::vector<std::string> dns_names(X509* certificate) {
    std::vector<std::string> names;
    auto* alt_names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
    if (alt_names) {
        for (int i = 0; i < sk_GENERAL_NAME_num(alt_names); ++i) {
            const GENERAL_NAME* name = sk_GENERAL_NAME_value(alt_names, i);
            if (name->type != GEN_DNS) continue;
            const ASN1_IA5STRING* text = name->d.dNSName;
            names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                               static_cast<std::size_t>(ASN1_STRING_length(text)));
        }
        GENERAL_NAMES_free(alt_names);
    }
    if (names.empty()) {
        char common_name[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, common_name,
                                      sizeof common_name) > 0) {
            names.emplace_back(common_name);
        }
    }
    return names;
}

// The settings every context of the service shares.
bool apply_settings(SSL_CTX* context, const conf::Tls& tls, std::vector<TlsConfigError>& errors) {
    SSL_CTX_set_min_proto_version(context, tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(context, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Buffers only while bytes are in flight: an idle connection keeps none.
    SSL_CTX_set_mode(context, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Resumption is by stateless tickets only: no per-session memory here, and
    // a ticket works on every worker.
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_default_passwd_cb(context, no_passphrase);
    bool ok = true;
    if (tls.ciphers && SSL_CTX_set_cipher_list(context, tls.ciphers->c_str()) != 1) {
        errors.push_back({"/ciphers", "OpenSSL accepts no cipher of \"" + *tls.ciphers + "\": " + openssl_reason()});
        ok = false;
    }
    if (tls.ciphersuites && SSL_CTX_set_ciphersuites(context, tls.ciphersuites->c_str()) != 1) {
        errors.push_back({"/ciphersuites",
                          "OpenSSL accepts no TLS 1.3 suite of \"" + *tls.ciphersuites + "\": " + openssl_reason()});
        ok = false;
    }
    return ok;
}

bool load_certificate(SSL_CTX* context, const conf::Certificate& certificate, const std::string& at,
                      std::vector<TlsConfigError>& errors) {
    if (SSL_CTX_use_certificate_chain_file(context, certificate.cert.c_str()) != 1) {
        errors.push_back({at + "/cert", fmt::format("cannot load a PEM certificate chain from \"{}\": {}",
                                                    certificate.cert, openssl_reason())});
        return false;
    }
    if (SSL_CTX_use_PrivateKey_file(context, certificate.key.c_str(), SSL_FILETYPE_PEM) != 1) {
        errors.push_back({at + "/key", fmt::format("cannot load an unencrypted PEM private key from \"{}\": {}",
                                                   certificate.key, openssl_reason())});
        return false;
    }
    if (SSL_CTX_check_private_key(context) != 1) {
        errors.push_back({at + "/key", fmt::format("the key in \"{}\" does not match the certificate in \"{}\"",
                                                   certificate.key, certificate.cert)});
        ERR_clear_error();
        return false;
    }
    return true;
}

}  // namespace

std::unique_ptr<ServerTls> ServerTls::make(const conf::Tls& tls, std::shared_ptr<TicketKeyRing> tickets,
                                           std::vector<std::string> alpn, std::vector<TlsConfigError>& errors) {
    std::unique_ptr<ServerTls> made(new ServerTls());
    made->tickets_ = std::move(tickets);
    for (const auto& protocol : alpn) {
        made->alpn_.push_back(static_cast<unsigned char>(protocol.size()));
        made->alpn_.insert(made->alpn_.end(), protocol.begin(), protocol.end());
    }
    const std::size_t errors_before = errors.size();
    for (std::size_t i = 0; i < tls.certificates.size(); ++i) {
        SslContextPtr context(SSL_CTX_new(TLS_server_method()));
        if (!context) {
            errors.push_back({"", "cannot create a TLS context: " + openssl_reason()});
            return nullptr;
        }
        if (!apply_settings(context.get(), tls, errors)) return nullptr;  // the same for every certificate
        const std::string at = fmt::format("/certificates/{}", i);
        if (!load_certificate(context.get(), tls.certificates[i], at, errors)) continue;
        made->names_.push_back(dns_names(SSL_CTX_get0_certificate(context.get())));
        if (made->tickets_) {
            made->tickets_->attach(context.get());
            SSL_CTX_set_timeout(context.get(), static_cast<long>(made->tickets_->ticket_lifetime().count()));
        } else {
            SSL_CTX_set_options(context.get(), SSL_OP_NO_TICKET);
        }
        SSL_CTX_set_client_hello_cb(context.get(), &ServerTls::on_client_hello, made.get());
        if (!made->alpn_.empty()) SSL_CTX_set_alpn_select_cb(context.get(), &ServerTls::on_alpn, made.get());
        made->contexts_.push_back(std::move(context));
    }
    if (errors.size() != errors_before) return nullptr;
    if (made->contexts_.empty()) {
        errors.push_back({"/certificates", "at least one certificate is needed"});
        return nullptr;
    }
    return made;
}

SslPtr ServerTls::new_session(boost::asio::ip::tcp::socket& socket) const {
    SslPtr ssl(SSL_new(contexts_.front().get()));
    if (!ssl || !attach_socket(ssl.get(), socket)) return nullptr;
    SSL_set_accept_state(ssl.get());
    // Without read-ahead OpenSSL asks the socket for each record's 5-byte
    // header and then its body: two recv(2) per record. Bytes read ahead wait
    // in the session: every wait on the socket first asks SSL_has_pending().
    SSL_set_read_ahead(ssl.get(), 1);
    return ssl;
}

void ServerTls::record_server_name(SSL* ssl, std::string* name) { SSL_set_ex_data(ssl, server_name_index(), name); }

// Runs before OpenSSL looks at anything else in the ClientHello (its versions
// included): the certificate is chosen here, and the name kept for the log.
int ServerTls::on_client_hello(SSL* ssl, int*, void* self) {
    const auto& tls = *static_cast<const ServerTls*>(self);
    const unsigned char* extension = nullptr;
    std::size_t size = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &extension, &size) != 1) return SSL_CLIENT_HELLO_SUCCESS;
    const std::string_view name = host_name_of(extension, size);
    if (name.empty()) return SSL_CLIENT_HELLO_SUCCESS;
    if (auto* recorded = static_cast<std::string*>(SSL_get_ex_data(ssl, server_name_index()))) recorded->assign(name);
    if (tls.contexts_.size() > 1) {
        const std::size_t chosen = choose_certificate(tls.names_, name);
        if (chosen != 0) SSL_set_SSL_CTX(ssl, tls.contexts_[chosen].get());
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

int ServerTls::on_alpn(SSL*, const unsigned char** out, unsigned char* out_size, const unsigned char* in,
                       unsigned int in_size, void* self) {
    const auto& tls = *static_cast<const ServerTls*>(self);
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, out_size, tls.alpn_.data(), static_cast<unsigned int>(tls.alpn_.size()), in,
                              in_size) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;  // no protocol in common: go on without ALPN
    }
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace castellan::tls
