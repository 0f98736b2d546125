// Choosing a certificate by the name a client asks for (SNI): pure code, no
// OpenSSL, so that the matching rules have unit tests of their own.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace castellan::tls {

// Does the subjectAltName DNS name `pattern` cover `host`? Case-insensitive; a
// trailing dot on `host` is ignored. A wildcard is only a whole left-most label
// (`*.contoso.com`) and stands for exactly one label: it covers
// `mail.contoso.com`, not `contoso.com` nor `a.b.contoso.com` (RFC 6125 6.4.3);
// a wildcard over a single label (`*.com`) covers nothing.
bool dns_name_matches(std::string_view pattern, std::string_view host);

// The certificate to present for `sni`, given each certificate's DNS names in
// config order: the first whose names hold `sni` exactly, else the first with a
// wildcard covering it, else the first (the default, also for a client that sent
// no name).
std::size_t choose_certificate(const std::vector<std::vector<std::string>>& names, std::string_view sni);

}  // namespace castellan::tls
