// parse_client_hello on real ClientHellos (as sent, prefixes, re-split into
// records of every size), on bytes that are not TLS, and on malformed ones.
#include "tls/client_hello.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using castellan::tls::ClientHelloInfo;
using castellan::tls::HelloParse;
using castellan::tls::HelloStatus;
using castellan::tls::parse_client_hello;
using Bytes = std::vector<std::uint8_t>;

// ClientHellos as real clients sent them, recorded once by a Python listener on
// 127.0.0.1 that kept the first bytes of the connection (OpenSSL 3.0.19, Python
// 3.11, Debian 12). Each is one record of version 0x0301 holding the whole hello.

// openssl s_client -connect 127.0.0.1:PORT -servername mail.contoso.com -alpn http/1.1
constexpr std::uint8_t openssl_tls13[] = {
    0x16, 0x03, 0x01, 0x01, 0x4c, 0x01, 0x00, 0x01, 0x48, 0x03, 0x03, 0x06, 0x2f, 0x98, 0x55, 0x1b,
    0x75, 0x46, 0x46, 0xe4, 0xfb, 0x6a, 0xbf, 0x46, 0xf9, 0x5b, 0x73, 0x92, 0x14, 0xbc, 0x64, 0xe2,
    0xdb, 0xb9, 0x9a, 0x80, 0xbf, 0x1a, 0x86, 0xec, 0x2c, 0xfb, 0x20, 0x20, 0x27, 0xc6, 0x52, 0x80,
    0x50, 0x27, 0xb8, 0x7d, 0x58, 0xd8, 0xb8, 0x44, 0xa2, 0xd7, 0x54, 0x55, 0xd7, 0x2f, 0x69, 0x23,
    0x64, 0x2a, 0x77, 0xaa, 0xe0, 0x2c, 0x63, 0x39, 0xa4, 0x53, 0x3d, 0xad, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xc1,
    0x00, 0x00, 0x00, 0x15, 0x00, 0x13, 0x00, 0x00, 0x10, 0x6d, 0x61, 0x69, 0x6c, 0x2e, 0x63, 0x6f,
    0x6e, 0x74, 0x6f, 0x73, 0x6f, 0x2e, 0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01,
    0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00,
    0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00,
    0x10, 0x00, 0x0b, 0x00, 0x09, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16,
    0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03,
    0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
    0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02,
    0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03,
    0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00,
    0x20, 0xfe, 0x86, 0x59, 0x8a, 0xe0, 0xad, 0x45, 0x25, 0x1c, 0x16, 0x2c, 0x6e, 0x4b, 0xf5, 0x36,
    0x9e, 0xa8, 0x1a, 0xa8, 0x0f, 0x77, 0xea, 0xdc, 0x80, 0x68, 0x9b, 0xaa, 0xe8, 0xef, 0x73, 0x9d,
    0x43,
};

// openssl s_client -connect 127.0.0.1:PORT -servername mail.contoso.com -alpn http/1.1 -tls1_2
constexpr std::uint8_t openssl_tls12[] = {
    0x16, 0x03, 0x01, 0x00, 0xdf, 0x01, 0x00, 0x00, 0xdb, 0x03, 0x03, 0xaa, 0x3b, 0x5f, 0x37, 0x51,
    0x0e, 0x62, 0xf7, 0xf4, 0x12, 0xce, 0x33, 0x62, 0x09, 0x3b, 0x3b, 0xef, 0xb8, 0x96, 0x0b, 0xca,
    0xfa, 0xec, 0x90, 0x14, 0x0e, 0x86, 0x08, 0xec, 0x20, 0x3e, 0x8b, 0x00, 0x00, 0x38, 0xc0, 0x2c,
    0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e,
    0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14,
    0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c,
    0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x7a, 0x00, 0x00, 0x00, 0x15, 0x00, 0x13,
    0x00, 0x00, 0x10, 0x6d, 0x61, 0x69, 0x6c, 0x2e, 0x63, 0x6f, 0x6e, 0x74, 0x6f, 0x73, 0x6f, 0x2e,
    0x63, 0x6f, 0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x0c, 0x00,
    0x0a, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x00, 0x23, 0x00, 0x00, 0x00,
    0x10, 0x00, 0x0b, 0x00, 0x09, 0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16,
    0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03,
    0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
    0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02,
    0x05, 0x02, 0x06, 0x02,
};

// openssl s_client -connect 127.0.0.1:PORT (no -servername: an IP address gets no SNI)
constexpr std::uint8_t openssl_no_sni[] = {
    0x16, 0x03, 0x01, 0x01, 0x24, 0x01, 0x00, 0x01, 0x20, 0x03, 0x03, 0x92, 0x40, 0xf0, 0xb3, 0x16,
    0x72, 0xd8, 0x33, 0x89, 0xc5, 0x15, 0xea, 0x6e, 0x8c, 0x33, 0xd4, 0xde, 0x9b, 0xb5, 0x6d, 0x85,
    0x6f, 0xbf, 0xc8, 0x81, 0x7e, 0xc5, 0x1c, 0xd9, 0x04, 0x78, 0xe8, 0x20, 0x38, 0x9a, 0xa0, 0x52,
    0x2e, 0xb9, 0x8d, 0xd5, 0xab, 0xf6, 0xdd, 0x98, 0xc4, 0x25, 0x24, 0x53, 0xce, 0xb0, 0x09, 0x8f,
    0xea, 0x07, 0xa8, 0x27, 0x03, 0xe2, 0xcc, 0xad, 0xbd, 0xd7, 0x98, 0x4a, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x99,
    0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d,
    0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03,
    0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d,
    0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09,
    0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01,
    0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09,
    0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00,
    0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x89, 0x57, 0xa5, 0xf5, 0xd3, 0x5b, 0x72,
    0x86, 0x00, 0x87, 0x65, 0x5e, 0xa5, 0x52, 0x20, 0x67, 0x3e, 0x50, 0xfe, 0xa0, 0xf3, 0xf9, 0x00,
    0x5a, 0x6f, 0xe5, 0xe1, 0xab, 0x49, 0x2c, 0x40, 0x41,
};

// Python ssl: set_alpn_protocols(["h2", "http/1.1"]), server_hostname
// "autodiscover.contoso.com" (and a padding extension: 517 bytes in all).
constexpr std::uint8_t python_two_alpn[] = {
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0x8c, 0x90, 0xfc, 0xed, 0xdd,
    0x1e, 0xd5, 0x75, 0x83, 0x24, 0xce, 0x24, 0xdc, 0x45, 0x26, 0x5b, 0xf2, 0x20, 0x28, 0xdd, 0x0f,
    0x81, 0xaf, 0xe4, 0x67, 0xfe, 0x95, 0x8d, 0x43, 0x9c, 0x20, 0x28, 0x20, 0x35, 0x20, 0x4a, 0x46,
    0x2e, 0x52, 0xa0, 0x78, 0xc0, 0xde, 0x3a, 0xdb, 0xba, 0x72, 0x02, 0x04, 0x29, 0x60, 0x04, 0x53,
    0xed, 0x55, 0xf4, 0xea, 0x5b, 0x5f, 0x9b, 0xe2, 0xa5, 0x4e, 0x33, 0x62, 0x00, 0x3e, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
    0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23, 0xc0, 0x27,
    0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d,
    0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x01, 0x75,
    0x00, 0x00, 0x00, 0x1d, 0x00, 0x1b, 0x00, 0x00, 0x18, 0x61, 0x75, 0x74, 0x6f, 0x64, 0x69, 0x73,
    0x63, 0x6f, 0x76, 0x65, 0x72, 0x2e, 0x63, 0x6f, 0x6e, 0x74, 0x6f, 0x73, 0x6f, 0x2e, 0x63, 0x6f,
    0x6d, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00,
    0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01,
    0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, 0x68, 0x32,
    0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00,
    0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08,
    0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05,
    0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00,
    0x2b, 0x00, 0x09, 0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00, 0x02,
    0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x37, 0xcc, 0x20, 0x26,
    0x73, 0x66, 0x9e, 0x3c, 0x6c, 0x52, 0x5f, 0x60, 0x38, 0x83, 0xdc, 0x53, 0x13, 0xc2, 0x7b, 0xbd,
    0xad, 0x55, 0x30, 0xae, 0x74, 0x0a, 0x90, 0x6b, 0xa0, 0x66, 0x04, 0x5f, 0x00, 0x15, 0x00, 0xa5,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00,
};

struct Capture {
    const char* name;
    Bytes bytes;
    std::optional<std::string> sni;
    std::vector<std::string> alpn;
    bool offers_tls13;
};

std::vector<Capture> captures() {
    return {
        {"openssl_tls13", Bytes(std::begin(openssl_tls13), std::end(openssl_tls13)), "mail.contoso.com",
         {"http/1.1"}, true},
        {"openssl_tls12", Bytes(std::begin(openssl_tls12), std::end(openssl_tls12)), "mail.contoso.com",
         {"http/1.1"}, false},
        {"openssl_no_sni", Bytes(std::begin(openssl_no_sni), std::end(openssl_no_sni)), std::nullopt, {}, true},
        {"python_two_alpn", Bytes(std::begin(python_two_alpn), std::end(python_two_alpn)),
         "autodiscover.contoso.com", {"h2", "http/1.1"}, true},
    };
}

HelloParse parse(const Bytes& bytes) {
    return parse_client_hello(std::span<const std::uint8_t>(bytes.data(), bytes.size()));
}

std::string_view error_of(const HelloParse& parse) {
    return parse.error ? std::string_view(parse.error) : std::string_view();
}

bool same_info(const ClientHelloInfo& a, const ClientHelloInfo& b) {
    return a.sni == b.sni && a.alpn == b.alpn && a.record_version == b.record_version &&
           a.client_version == b.client_version && a.offers_tls13 == b.offers_tls13;
}

bool same_parse(const HelloParse& a, const HelloParse& b) {
    return a.status == b.status && error_of(a) == error_of(b) && same_info(a.info, b.info);
}

void put8(Bytes& out, std::size_t value) { out.push_back(static_cast<std::uint8_t>(value)); }

void put16(Bytes& out, std::size_t value) {
    put8(out, value >> 8);
    put8(out, value & 0xff);
}

void put24(Bytes& out, std::size_t value) {
    put8(out, value >> 16);
    put16(out, value & 0xffff);
}

void put(Bytes& out, const Bytes& bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); }

void put(Bytes& out, std::string_view text) { out.insert(out.end(), text.begin(), text.end()); }

// The fragments of `records`, which must be well formed, one after the other.
Bytes handshake_stream(const Bytes& records) {
    Bytes stream;
    std::size_t pos = 0;
    while (pos + 5 <= records.size()) {
        const std::size_t length = (std::size_t{records[pos + 3]} << 8) | records[pos + 4];
        stream.insert(stream.end(), records.begin() + static_cast<std::ptrdiff_t>(pos + 5),
                      records.begin() + static_cast<std::ptrdiff_t>(pos + 5 + length));
        pos += 5 + length;
    }
    REQUIRE(pos == records.size());
    return stream;
}

// `stream` as handshake records of the sizes `next_size` gives (the last one may
// be shorter); the first has version 0x0301, the others 0x0303, as clients do.
template <class NextSize>
Bytes to_records(const Bytes& stream, NextSize&& next_size) {
    Bytes records;
    std::size_t pos = 0;
    while (pos < stream.size()) {
        const std::size_t size = std::min<std::size_t>(next_size(), stream.size() - pos);
        put8(records, 22);
        put16(records, pos == 0 ? 0x0301 : 0x0303);
        put16(records, size);
        records.insert(records.end(), stream.begin() + static_cast<std::ptrdiff_t>(pos),
                       stream.begin() + static_cast<std::ptrdiff_t>(pos + size));
        pos += size;
    }
    return records;
}

Bytes one_record(const Bytes& message) {
    return to_records(message, [&] { return message.size(); });
}

// --- Building ClientHellos field by field -----------------------------------

struct Extension {
    std::uint16_t type;
    Bytes data;
};

Bytes server_name_data(const std::vector<std::pair<std::uint8_t, std::string>>& entries) {
    Bytes list;
    for (const auto& [type, name] : entries) {
        put8(list, type);
        put16(list, name.size());
        put(list, name);
    }
    Bytes data;
    put16(data, list.size());
    put(data, list);
    return data;
}

Extension server_name(const std::string& name) { return {0, server_name_data({{0, name}})}; }

Extension alpn(const std::vector<std::string>& names) {
    Bytes list;
    for (const auto& name : names) {
        put8(list, name.size());
        put(list, name);
    }
    Bytes data;
    put16(data, list.size());
    put(data, list);
    return {16, data};
}

Extension supported_versions(const std::vector<std::uint16_t>& versions) {
    Bytes data;
    put8(data, versions.size() * 2);
    for (const auto version : versions) put16(data, version);
    return {43, data};
}

struct HelloFields {
    std::uint16_t version = 0x0303;
    Bytes session_id = Bytes(32, 0x5a);
    Bytes cipher_suites = {0x13, 0x01, 0xc0, 0x2f};
    Bytes compression = {0};
    bool has_extensions = true;
    std::vector<Extension> extensions;
};

Bytes hello_body(const HelloFields& fields) {
    Bytes body;
    put16(body, fields.version);
    put(body, Bytes(32, 0xa5));  // random
    put8(body, fields.session_id.size());
    put(body, fields.session_id);
    put16(body, fields.cipher_suites.size());
    put(body, fields.cipher_suites);
    put8(body, fields.compression.size());
    put(body, fields.compression);
    if (fields.has_extensions) {
        Bytes block;
        for (const auto& extension : fields.extensions) {
            put16(block, extension.type);
            put16(block, extension.data.size());
            put(block, extension.data);
        }
        put16(body, block.size());
        put(body, block);
    }
    return body;
}

Bytes handshake_message(const Bytes& body, std::uint8_t type = 1) {
    Bytes message;
    put8(message, type);
    put24(message, body.size());
    put(message, body);
    return message;
}

Bytes hello_records(const HelloFields& fields) { return one_record(handshake_message(hello_body(fields))); }

HelloFields typical_fields() {
    HelloFields fields;
    fields.extensions = {server_name("owa.contoso.com"), {10, {0x00, 0x02, 0x00, 0x1d}},
                         alpn({"http/1.1"}), supported_versions({0x0304, 0x0303})};
    return fields;
}

// A decision other than need_more is final: more bytes do not change it.
void require_final(const Bytes& bytes, const HelloParse& first) {
    Bytes longer = bytes;
    put(longer, std::string_view("\x16\x03\x03\x00\x01\x01GET / HTTP/1.1\r\n"));
    REQUIRE(same_parse(parse(longer), first));
}

void require_malformed(const Bytes& bytes, std::string_view reason) {
    const HelloParse result = parse(bytes);
    CAPTURE(error_of(result));
    REQUIRE(result.status == HelloStatus::malformed);
    REQUIRE(error_of(result) == reason);
    REQUIRE_FALSE(result.info.sni);
    REQUIRE(result.info.alpn.empty());
    require_final(bytes, result);
}

void require_complete_like(const Bytes& bytes, const Capture& capture) {
    const HelloParse result = parse(bytes);
    CAPTURE(error_of(result));
    REQUIRE(result.status == HelloStatus::complete);
    REQUIRE(result.error == nullptr);
    REQUIRE(result.info.sni == capture.sni);
    REQUIRE(result.info.alpn == capture.alpn);
    REQUIRE(result.info.record_version == 0x0301);
    REQUIRE(result.info.client_version == 0x0303);
    REQUIRE(result.info.offers_tls13 == capture.offers_tls13);
}

// Every proper prefix needs more; the whole gives what `capture` says.
void require_prefixes_need_more(const Bytes& bytes) {
    for (std::size_t size = 0; size < bytes.size(); ++size) {
        const auto result = parse_client_hello(std::span<const std::uint8_t>(bytes.data(), size));
        if (result.status != HelloStatus::need_more) {
            CAPTURE(size, bytes.size(), castellan::tls::to_string(result.status), error_of(result));
            FAIL("a prefix of a valid ClientHello did not give need_more");
        }
    }
}

}  // namespace

TEST_CASE("real ClientHellos give their SNI, ALPN and versions", "[tls]") {
    for (const auto& capture : captures()) {
        SECTION(capture.name) {
            require_complete_like(capture.bytes, capture);
        }
    }
}

TEST_CASE("every prefix of a real ClientHello needs more bytes", "[tls]") {
    for (const auto& capture : captures()) {
        CAPTURE(capture.name);
        require_prefixes_need_more(capture.bytes);
    }
}

TEST_CASE("a real ClientHello split into 1-byte records parses the same", "[tls]") {
    for (const auto& capture : captures()) {
        CAPTURE(capture.name);
        const Bytes records = to_records(handshake_stream(capture.bytes), [] { return 1; });
        REQUIRE(records.size() == (capture.bytes.size() - 5) * 6);
        require_complete_like(records, capture);
        require_prefixes_need_more(records);
    }
}

TEST_CASE("a real ClientHello split into records of random sizes parses the same", "[tls]") {
    std::mt19937 random(20240607);  // fixed: a failure is reproducible
    for (const auto& capture : captures()) {
        CAPTURE(capture.name);
        const Bytes stream = handshake_stream(capture.bytes);
        for (int round = 0; round < 200; ++round) {
            // Small sizes split the 4-byte handshake header and the extensions too.
            const std::size_t largest = round % 2 == 0 ? 7 : 300;
            std::uniform_int_distribution<std::size_t> size(1, largest);
            const Bytes records = to_records(stream, [&] { return size(random); });
            CAPTURE(round, records.size());
            require_complete_like(records, capture);
        }
    }
}

TEST_CASE("bytes after the ClientHello are not looked at", "[tls]") {
    const Capture capture = captures().front();
    SECTION("further records and plain text") {
        Bytes bytes = capture.bytes;
        put(bytes, Bytes{0x14, 0x03, 0x03, 0x00, 0x01, 0x01});  // change_cipher_spec
        put(bytes, std::string_view("GET / HTTP/1.1\r\n\r\n\xff\x00"));
        require_complete_like(bytes, capture);
    }
    SECTION("a last record longer than the ClientHello, not all of it arrived yet") {
        Bytes message = handshake_stream(capture.bytes);
        const std::size_t hello_bytes = message.size();
        put(message, Bytes(100, 0x00));
        Bytes bytes = one_record(message);
        bytes.resize(5 + hello_bytes + 10);
        require_complete_like(bytes, capture);
        bytes.resize(5 + hello_bytes - 1);
        REQUIRE(parse(bytes).status == HelloStatus::need_more);
    }
}

TEST_CASE("bytes that are not a TLS handshake record are not_tls", "[tls]") {
    const auto not_tls = [](std::string_view text) {
        const Bytes bytes(text.begin(), text.end());
        const HelloParse result = parse(bytes);
        CAPTURE(text, error_of(result));
        REQUIRE(result.status == HelloStatus::not_tls);
        REQUIRE(result.error != nullptr);
        require_final(bytes, result);
    };
    not_tls("GET /owa/ HTTP/1.1\r\nHost: mail.contoso.com\r\n\r\n");
    not_tls("G");
    not_tls("EHLO client.contoso.com\r\n");
    not_tls(std::string_view("\x80\x2e\x01\x03\x01", 5));  // an SSLv2-format ClientHello
    not_tls(std::string_view("\x15\x03\x03\x00\x02\x02\x28", 7));  // an alert first
    not_tls(std::string_view("\x16\x47", 2));  // handshake type byte, then no TLS version
    REQUIRE(parse(Bytes{}).status == HelloStatus::need_more);
    REQUIRE(parse(Bytes{0x16}).status == HelloStatus::need_more);
    REQUIRE(parse(Bytes{0x16, 0x03}).status == HelloStatus::need_more);
}

TEST_CASE("malformed record layer", "[tls]") {
    const Bytes stream = handshake_stream(captures().front().bytes);
    const Bytes split = to_records(stream, [] { return 50; });

    SECTION("a record of another type before the ClientHello ends") {
        for (const std::uint8_t type : {20, 21, 23, 24}) {
            Bytes bytes = split;
            bytes[55] = type;  // the second record
            require_malformed(bytes, "a record other than handshake before the ClientHello ended");
            // Known from the type byte alone.
            bytes.resize(56);
            require_malformed(bytes, "a record other than handshake before the ClientHello ended");
        }
    }
    SECTION("a later record whose version is not 3.x") {
        Bytes bytes = split;
        bytes[56] = 0x02;
        require_malformed(bytes, "record version is not 3.x");
    }
    SECTION("an empty record") {
        Bytes bytes = Bytes{0x16, 0x03, 0x01, 0x00, 0x00};
        put(bytes, captures().front().bytes);
        require_malformed(bytes, "empty handshake record");
    }
    SECTION("a record over 2^14+256 bytes, from its header alone") {
        require_malformed(Bytes{0x16, 0x03, 0x01, 0x41, 0x01}, "record longer than 2^14+256 bytes");
        REQUIRE(parse(Bytes{0x16, 0x03, 0x01, 0x41, 0x00}).status == HelloStatus::need_more);
    }
    SECTION("a first handshake message that is not a ClientHello, from its type byte") {
        Bytes bytes = captures().front().bytes;
        bytes[5] = 2;  // server_hello
        require_malformed(bytes, "first handshake message is not a ClientHello");
        bytes.resize(6);
        require_malformed(bytes, "first handshake message is not a ClientHello");
        const Bytes late = to_records(Bytes{0x00, 0x00, 0x00, 0x00}, [] { return 1; });  // hello_request
        require_malformed(late, "first handshake message is not a ClientHello");
    }
    SECTION("a ClientHello over 64 KiB, from its header") {
        // 4 + 65532 = 65536 is the most taken.
        Bytes at_limit = to_records(Bytes{0x01, 0x00, 0xff, 0xfc}, [] { return 1; });
        REQUIRE(parse(at_limit).status == HelloStatus::need_more);
        Bytes over = to_records(Bytes{0x01, 0x00, 0xff, 0xfd}, [] { return 1; });
        require_malformed(over, "ClientHello longer than 64 KiB");
        require_malformed(one_record(Bytes{0x01, 0xff, 0xff, 0xff}), "ClientHello longer than 64 KiB");
    }
    SECTION("a ClientHello of the largest size taken is complete") {
        HelloFields fields = typical_fields();
        fields.extensions.push_back({21, Bytes()});  // padding, sized below
        const std::size_t short_of =
            castellan::tls::max_client_hello_bytes - handshake_message(hello_body(fields)).size();
        fields.extensions.back().data.assign(short_of, 0);
        const Bytes message = handshake_message(hello_body(fields));
        REQUIRE(message.size() == castellan::tls::max_client_hello_bytes);
        const Bytes bytes = to_records(message, [] { return 16384; });
        const HelloParse result = parse(bytes);
        REQUIRE(result.status == HelloStatus::complete);
        REQUIRE(result.info.sni == "owa.contoso.com");
    }
}

TEST_CASE("malformed ClientHello fields", "[tls]") {
    const char* overrun = "ClientHello fields overrun its length";

    SECTION("the typical hello these cases start from is fine") {
        const HelloParse result = parse(hello_records(typical_fields()));
        REQUIRE(result.status == HelloStatus::complete);
        REQUIRE(result.info.sni == "owa.contoso.com");
        REQUIRE(result.info.alpn == std::vector<std::string>{"http/1.1"});
        REQUIRE(result.info.offers_tls13);
    }
    SECTION("a message too short for its fields, at every length") {
        const Bytes body = hello_body(typical_fields());
        // Cut after the compression methods is a valid hello without extensions.
        const std::size_t without_extensions = 2 + 32 + 1 + 32 + 2 + 4 + 1 + 1;
        for (std::size_t size = 0; size < body.size(); ++size) {
            CAPTURE(size);
            const Bytes cut(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(size));
            const Bytes bytes = one_record(handshake_message(cut));
            const HelloParse result = parse(bytes);
            if (size == without_extensions) {
                REQUIRE(result.status == HelloStatus::complete);
            } else {
                REQUIRE(result.status == HelloStatus::malformed);
                REQUIRE(result.error != nullptr);
            }
        }
        require_malformed(one_record(handshake_message(Bytes(body.begin(), body.begin() + 40))), overrun);
    }
    SECTION("a client version that is not 3.x") {
        HelloFields fields = typical_fields();
        fields.version = 0x0203;
        require_malformed(hello_records(fields), "ClientHello version is not 3.x");
    }
    SECTION("a session id over 32 bytes") {
        HelloFields fields = typical_fields();
        fields.session_id.assign(33, 1);
        require_malformed(hello_records(fields), "session id longer than 32 bytes");
    }
    SECTION("cipher suites empty or odd") {
        HelloFields fields = typical_fields();
        fields.cipher_suites = {};
        require_malformed(hello_records(fields), "cipher_suites length empty or odd");
        fields.cipher_suites = {0x13, 0x01, 0xc0};
        require_malformed(hello_records(fields), "cipher_suites length empty or odd");
    }
    SECTION("no compression method") {
        HelloFields fields = typical_fields();
        fields.compression = {};
        require_malformed(hello_records(fields), "no compression methods");
    }
    SECTION("an extensions length that overruns or falls short") {
        Bytes body = hello_body(typical_fields());
        const std::size_t at = 2 + 32 + 1 + 32 + 2 + 4 + 1 + 1;
        const std::size_t length = (std::size_t{body[at]} << 8) | body[at + 1];
        body[at + 1] = static_cast<std::uint8_t>(length + 1);
        require_malformed(one_record(handshake_message(body)), "extensions length does not match the ClientHello");
        body[at + 1] = static_cast<std::uint8_t>(length - 1);
        require_malformed(one_record(handshake_message(body)), "extensions length does not match the ClientHello");
        Bytes stray = hello_body(typical_fields());
        stray.resize(at + 1);  // one byte where the extensions length would start
        require_malformed(one_record(handshake_message(stray)), overrun);
    }
    SECTION("an extension that overruns the block, or a cut header") {
        HelloFields fields = typical_fields();
        Bytes body = hello_body(fields);
        // The last extension (supported_versions, 5 bytes of data) claims 6.
        body[body.size() - 6] = 6;
        require_malformed(one_record(handshake_message(body)), "extension overruns the ClientHello");
        Bytes cut = hello_body(typical_fields());
        cut.push_back(0x00);  // a lone byte of a next extension's type
        const std::size_t at = 2 + 32 + 1 + 32 + 2 + 4 + 1 + 1;
        cut[at + 1] = static_cast<std::uint8_t>(cut[at + 1] + 1);
        require_malformed(one_record(handshake_message(cut)), "extension header cut short");
    }
    SECTION("a duplicated server_name, ALPN or supported_versions extension") {
        HelloFields fields = typical_fields();
        fields.extensions.push_back(server_name("evil.example"));
        require_malformed(hello_records(fields), "duplicate server_name extension");
        fields = typical_fields();
        fields.extensions.push_back(alpn({"h2"}));
        require_malformed(hello_records(fields), "duplicate ALPN extension");
        fields = typical_fields();
        fields.extensions.push_back(supported_versions({0x0303}));
        require_malformed(hello_records(fields), "duplicate supported_versions extension");
        // Other extension types may repeat (a server decides about those).
        fields = typical_fields();
        fields.extensions.push_back({10, {0x00, 0x02, 0x00, 0x17}});
        REQUIRE(parse(hello_records(fields)).status == HelloStatus::complete);
    }
    SECTION("two host names in one server_name") {
        HelloFields fields = typical_fields();
        fields.extensions[0] = {0, server_name_data({{0, "owa.contoso.com"}, {0, "evil.example"}})};
        require_malformed(hello_records(fields), "two host names in server_name");
    }
    SECTION("an empty SNI host name") {
        HelloFields fields = typical_fields();
        fields.extensions[0] = server_name("");
        require_malformed(hello_records(fields), "empty SNI host name");
    }
    SECTION("an SNI host name of 255 bytes is taken, 256 is not") {
        HelloFields fields = typical_fields();
        const std::string longest = std::string(251, 'a') + ".com";
        fields.extensions[0] = server_name(longest);
        const HelloParse result = parse(hello_records(fields));
        REQUIRE(result.status == HelloStatus::complete);
        REQUIRE(result.info.sni == longest);
        fields.extensions[0] = server_name("a" + longest);
        require_malformed(hello_records(fields), "SNI host name longer than 255 bytes");
    }
    SECTION("an SNI host name with a byte outside printable ASCII") {
        for (const char c : {'\0', '\n', ' ', '\x7f', '\xc3', '\xff'}) {
            CAPTURE(static_cast<int>(static_cast<unsigned char>(c)));
            HelloFields fields = typical_fields();
            std::string name = "owa.contoso.com";
            name[3] = c;
            fields.extensions[0] = server_name(name);
            require_malformed(hello_records(fields), "SNI host name has a byte outside printable ASCII");
        }
        HelloFields fields = typical_fields();
        fields.extensions[0] = server_name("!~_-.0Zz");
        REQUIRE(parse(hello_records(fields)).info.sni == "!~_-.0Zz");
    }
    SECTION("a server_name whose lengths do not add up") {
        HelloFields fields = typical_fields();
        fields.extensions[0].data[1] += 1;  // the list claims a byte more than there is
        require_malformed(hello_records(fields), "server_name extension malformed");
        fields = typical_fields();
        fields.extensions[0].data = {0x00, 0x00};  // an empty list
        require_malformed(hello_records(fields), "server_name extension malformed");
        fields = typical_fields();
        fields.extensions[0].data[4] += 1;  // the name claims a byte more than the list
        require_malformed(hello_records(fields), "server_name entry overruns its extension");
        fields = typical_fields();
        fields.extensions[0].data = {0x00, 0x02, 0x00, 0x00};  // an entry cut after its type
        require_malformed(hello_records(fields), "server_name entry cut short");
    }
    SECTION("ALPN lists that are empty, hold an empty name, or overrun") {
        HelloFields fields = typical_fields();
        fields.extensions[2] = {16, {0x00, 0x00}};
        require_malformed(hello_records(fields), "ALPN extension malformed");
        fields.extensions[2] = alpn({"h2", ""});
        require_malformed(hello_records(fields), "empty ALPN protocol name");
        fields.extensions[2] = alpn({"h2"});
        fields.extensions[2].data[2] = 3;
        require_malformed(hello_records(fields), "ALPN protocol name overruns its extension");
    }
    SECTION("supported_versions of an odd or wrong length") {
        HelloFields fields = typical_fields();
        fields.extensions[3] = {43, {0x03, 0x03, 0x04, 0x03}};
        require_malformed(hello_records(fields), "supported_versions extension malformed");
        fields.extensions[3] = {43, {0x04, 0x03, 0x04}};
        require_malformed(hello_records(fields), "supported_versions extension malformed");
    }
}

TEST_CASE("hellos without SNI, without extensions, with other name types", "[tls]") {
    SECTION("no server_name extension") {
        HelloFields fields = typical_fields();
        fields.extensions.erase(fields.extensions.begin());
        const HelloParse result = parse(hello_records(fields));
        REQUIRE(result.status == HelloStatus::complete);
        REQUIRE_FALSE(result.info.sni);
        REQUIRE(result.info.alpn == std::vector<std::string>{"http/1.1"});
    }
    SECTION("no extensions at all (as before TLS 1.2), and an empty block") {
        HelloFields fields = typical_fields();
        fields.version = 0x0301;
        fields.has_extensions = false;
        HelloParse result = parse(hello_records(fields));
        REQUIRE(result.status == HelloStatus::complete);
        REQUIRE(result.info.client_version == 0x0301);
        REQUIRE_FALSE(result.info.sni);
        REQUIRE_FALSE(result.info.offers_tls13);
        fields.has_extensions = true;
        fields.extensions.clear();
        result = parse(hello_records(fields));
        REQUIRE(result.status == HelloStatus::complete);
        REQUIRE_FALSE(result.info.sni);
    }
    SECTION("a name type other than host_name is skipped") {
        HelloFields fields = typical_fields();
        fields.extensions[0] = {0, server_name_data({{7, "opaque"}, {0, "owa.contoso.com"}})};
        REQUIRE(parse(hello_records(fields)).info.sni == "owa.contoso.com");
        fields.extensions[0] = {0, server_name_data({{7, "opaque"}})};
        const HelloParse result = parse(hello_records(fields));
        REQUIRE(result.status == HelloStatus::complete);
        REQUIRE_FALSE(result.info.sni);
    }
    SECTION("supported_versions without TLS 1.3") {
        HelloFields fields = typical_fields();
        fields.extensions[3] = supported_versions({0x0303, 0x0302});
        const HelloParse result = parse(hello_records(fields));
        REQUIRE(result.status == HelloStatus::complete);
        REQUIRE_FALSE(result.info.offers_tls13);
    }
}
