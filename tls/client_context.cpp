#include "tls/client_context.hpp"

#include <openssl/ssl.h>

#include <exception>

namespace castellan::tls {
namespace ssl = boost::asio::ssl;

std::shared_ptr<ssl::context> make_client_tls_context(bool verify, const std::optional<std::string>& ca_file,
                                                      std::string& error) {
    std::shared_ptr<ssl::context> context;
    try {
        // The constructor throws only when OpenSSL cannot allocate a context; this
        // runs at load time, off the data path.
        context = std::make_shared<ssl::context>(ssl::context::tls_client);
    } catch (const std::exception& e) {
        error = std::string("cannot create a TLS client context: ") + e.what();
        return nullptr;
    }

    boost::system::error_code ec;
    context->set_options(ssl::context::default_workarounds | ssl::context::no_compression, ec);
    if (ec) {
        error = "cannot set TLS options: " + ec.message();
        return nullptr;
    }
    if (SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION) != 1) {
        error = "cannot require TLS 1.2 or later";
        return nullptr;
    }

    if (ca_file) {
        context->load_verify_file(*ca_file, ec);
        if (ec) {
            error = "cannot load CA file " + *ca_file + ": " + ec.message();
            return nullptr;
        }
    } else if (verify) {
        context->set_default_verify_paths(ec);
        if (ec) {
            error = "cannot load the system's CA certificates: " + ec.message();
            return nullptr;
        }
    }

    context->set_verify_mode(verify ? ssl::verify_peer : ssl::verify_none, ec);
    if (ec) {
        error = "cannot set the TLS verify mode: " + ec.message();
        return nullptr;
    }
    return context;
}

}  // namespace castellan::tls
