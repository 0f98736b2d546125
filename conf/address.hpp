// Syntax of the addresses in a config: IP literals, RFC 1123 hostnames and
// `HOST:PORT` with a bracketed IPv6 host. Pure string work: no sockets, no name
// resolution (a hostname is resolved by the runtime when it loads the config).
#pragma once

#include "conf/config.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace castellan::conf {

using Ipv4Bytes = std::array<std::uint8_t, 4>;
using Ipv6Bytes = std::array<std::uint8_t, 16>;

// Dotted decimal, four parts 0-255, no leading zeros (`010` could mean octal to
// some readers, so it is refused rather than guessed).
std::optional<Ipv4Bytes> parse_ipv4(std::string_view text);

// RFC 4291 text form without brackets or zone: `::`, `fe80::1`,
// `::ffff:192.0.2.1`. Hex digits in either case.
std::optional<Ipv6Bytes> parse_ipv6(std::string_view text);

// RFC 1123 host name: dot-separated labels of 1-63 letters, digits and hyphens,
// not starting or ending with a hyphen, at most 253 characters, one trailing dot
// allowed. A name whose last label is all digits is refused: it is a mistyped
// IPv4 address, not a name.
bool is_valid_hostname(std::string_view text);

// Parses `IPv4:PORT`, `[IPv6]:PORT` and, when `allow_hostname`, `HOSTNAME:PORT`
// (port 1-65535). On failure returns nullopt and, when `problem` is given, sets it
// to a short reason ("port must be 1 to 65535", ...) or to "" when the text does
// not even have the HOST:PORT shape.
std::optional<HostPort> parse_host_port(std::string_view text, bool allow_hostname,
                                        std::string* problem = nullptr);

// Whether two listen addresses would take the same socket: the same port and
// family, and the same address or one of them the wildcard of that family.
// `[::]` is bound IPv6-only, so it does not overlap `0.0.0.0`. Hostnames never
// overlap anything (listen addresses are IP literals).
bool listens_overlap(const HostPort& a, const HostPort& b);

}  // namespace castellan::conf
