// OpenSSL client contexts for connections castellan opens itself: https health
// checks, and later the re-encrypted connection to a real server.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <optional>
#include <string>

namespace castellan::tls {

// A TLS 1.2+ client context. `verify`: the peer's chain must verify against
// `ca_file` (PEM) when given, else against the system's default CA paths;
// otherwise any certificate is accepted (Exchange's self-signed default ones
// included). A host name check, when wanted, is set per connection. A given
// `ca_file` is loaded even without `verify`, so that a wrong path is reported when
// the config is loaded, not silently ignored.
// Gives null and a one-line `error` when the context cannot be made (a missing or
// unreadable CA file). Built once per configuration, shared by every connection
// made with it; call from any thread, not concurrently with a use of it.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(bool verify,
                                                                   const std::optional<std::string>& ca_file,
                                                                   std::string& error);

}  // namespace castellan::tls
