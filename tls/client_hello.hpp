// Reading a TLS ClientHello from the first bytes of a connection, without
// consuming them: a passthrough service logs the name the client asks for (SNI)
// and then sends the same bytes on, untouched, to the real server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace castellan::tls {

// What a complete ClientHello says.
struct ClientHelloInfo {
    // The host_name entry of the server_name extension, exactly as sent (not
    // lower-cased): 1 to 255 bytes, each 0x21..0x7e (printable ASCII, no space).
    // It may still hold '=', '"' or '\\': quote it before putting it in a log line.
    std::optional<std::string> sni;
    // The ALPN protocol names offered, in the client's order; opaque bytes as sent
    // (RFC 7301), each 1 to 255 bytes: escape them before logging.
    std::vector<std::string> alpn;
    std::uint16_t record_version = 0;  // of the first record (often 0x0301)
    std::uint16_t client_version = 0;  // legacy_version of the ClientHello (0x0303 for TLS 1.2 and 1.3)
    bool offers_tls13 = false;         // supported_versions lists 0x0304
};

enum class HelloStatus {
    complete,   // a whole ClientHello was found; `info` holds what it says
    need_more,  // the bytes are a valid prefix: read more and call again with all of them
    not_tls,    // the first bytes are not a TLS handshake record (plain HTTP, SSLv2, ...)
    malformed,  // a TLS handshake record, but something no TLS server would accept
};

struct HelloParse {
    HelloStatus status = HelloStatus::need_more;
    ClientHelloInfo info;         // filled when complete, empty otherwise
    const char* error = nullptr;  // not_tls and malformed: a short reason for the log (a static string)
};

// The largest ClientHello handshake message taken, its 4-byte header included.
// Since a record carries at least one byte of it, need_more is never the answer
// for more than 6 * max_client_hello_bytes bytes.
inline constexpr std::size_t max_client_hello_bytes = 64 * 1024;

// The longest record accepted: TLS allows 2^14 bytes of plaintext; the 256 more of
// a ciphertext record are tolerated.
inline constexpr std::size_t max_record_bytes = (1u << 14) + 256;

// Parses `bytes`, everything the client sent so far from the first byte of the
// connection. The ClientHello may span several records, down to one byte each;
// bytes after it (in its last record or beyond) are never looked at, so once the
// answer is complete, not_tls or malformed it stays the same, error included,
// whatever bytes are appended. A decision on malformed input is made as soon as
// the bytes that show it have arrived: header fields (record type, version and
// length; handshake type and length) at once, the ClientHello's body once all of
// it is there.
//
// Malformed: a record of another type than handshake, or not version 3.x, before
// the ClientHello ends; an empty record or one over max_record_bytes; a first
// handshake message that is not a ClientHello or is over max_client_hello_bytes;
// lengths inside it that overrun or do not add up; a duplicated server_name, ALPN
// or supported_versions extension; a server_name with two host_name entries, or
// one that is empty, over 255 bytes, or has a byte outside 0x21..0x7e; an empty
// ALPN list or protocol name.
//
// Pure and reentrant: any thread. Never reads past bytes.size(), never throws
// (except std::bad_alloc while filling `info`), allocates only what `info` holds,
// O(bytes.size()).
HelloParse parse_client_hello(std::span<const std::uint8_t> bytes);

// "complete", "need_more", "not_tls" or "malformed".
const char* to_string(HelloStatus status);

}  // namespace castellan::tls
