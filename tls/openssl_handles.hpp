// Owning handles for OpenSSL objects, so that every early return frees them.
#pragma once

#include <openssl/ssl.h>

#include <memory>

namespace castellan::tls {

struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
    void operator()(SSL_CTX* context) const { SSL_CTX_free(context); }
    void operator()(SSL_SESSION* session) const { SSL_SESSION_free(session); }
    void operator()(X509* certificate) const { X509_free(certificate); }
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
    void operator()(BIO* bio) const { BIO_free_all(bio); }
};

using SslPtr = std::unique_ptr<SSL, SslFree>;
using SslContextPtr = std::unique_ptr<SSL_CTX, SslFree>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslFree>;
using X509Ptr = std::unique_ptr<X509, SslFree>;
using KeyPtr = std::unique_ptr<EVP_PKEY, SslFree>;
using BioPtr = std::unique_ptr<BIO, SslFree>;

}  // namespace castellan::tls
