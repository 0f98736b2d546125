#include "tls/client_hello.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace castellan::tls {
namespace {

constexpr std::uint8_t content_type_handshake = 22;
constexpr std::uint8_t handshake_type_client_hello = 1;
constexpr std::size_t record_header_bytes = 5;
constexpr std::size_t handshake_header_bytes = 4;
constexpr std::size_t random_bytes = 32;
constexpr std::size_t max_session_id_bytes = 32;
constexpr std::size_t max_host_name_bytes = 255;
constexpr std::uint16_t extension_server_name = 0;
constexpr std::uint16_t extension_alpn = 16;
constexpr std::uint16_t extension_supported_versions = 43;
constexpr std::uint8_t name_type_host_name = 0;
constexpr std::uint16_t tls13 = 0x0304;

HelloParse fail(HelloStatus status, const char* error) {
    HelloParse parse;
    parse.status = status;
    parse.error = error;
    return parse;
}

std::size_t read_u16_at(std::span<const std::uint8_t> bytes, std::size_t at) {
    return (std::size_t{bytes[at]} << 8) | bytes[at + 1];
}

// Reads the handshake stream: the fragments of consecutive records one after
// the other, their headers skipped, within `limit` bytes (those of the structure
// being read). Built only over records that parse_client_hello has checked;
// every read is still bounded by the bytes there are, so a bug gives a false
// answer, never a read out of bounds. A read that fails leaves the reader
// unusable: the caller gives up.
class FragmentReader {
public:
    // `pos`: where the next fragment byte is, `left_in_record` fragment bytes
    // from there on belonging to the current record (0: `pos` is at a header).
    FragmentReader(std::span<const std::uint8_t> bytes, std::size_t pos, std::size_t left_in_record,
                   std::size_t limit)
        : bytes_(bytes), pos_(pos), left_in_record_(left_in_record), limit_(limit) {}

    std::size_t remaining() const { return limit_; }
    bool empty() const { return limit_ == 0; }

    bool u8(std::uint8_t& out) {
        return consume(1, [&](const std::uint8_t* data, std::size_t) { out = data[0]; });
    }

    bool u16(std::uint16_t& out) {
        std::uint16_t value = 0;
        const bool ok = consume(2, [&](const std::uint8_t* data, std::size_t size) {
            for (std::size_t i = 0; i < size; ++i) value = static_cast<std::uint16_t>((value << 8) | data[i]);
        });
        out = value;
        return ok;
    }

    bool skip(std::size_t count) {
        return consume(count, [](const std::uint8_t*, std::size_t) {});
    }

    bool append(std::string& out, std::size_t count) {
        out.reserve(out.size() + std::min(count, limit_));
        return consume(count, [&](const std::uint8_t* data, std::size_t size) {
            out.append(reinterpret_cast<const char*>(data), size);
        });
    }

    // The next `count` bytes as a reader of their own; this one moves past them.
    bool take(std::size_t count, FragmentReader& part) {
        if (count > limit_) return false;
        part = *this;
        part.limit_ = count;
        return skip(count);
    }

private:
    template <class OnChunk>
    bool consume(std::size_t count, OnChunk&& on_chunk) {
        if (count > limit_) return false;
        limit_ -= count;
        while (count > 0) {
            if (left_in_record_ == 0) {
                if (bytes_.size() - pos_ < record_header_bytes) return false;
                left_in_record_ = read_u16_at(bytes_, pos_ + 3);
                pos_ += record_header_bytes;
                continue;
            }
            const std::size_t chunk = std::min({count, left_in_record_, bytes_.size() - pos_});
            if (chunk == 0) return false;
            on_chunk(bytes_.data() + pos_, chunk);
            pos_ += chunk;
            left_in_record_ -= chunk;
            count -= chunk;
        }
        return true;
    }

    std::span<const std::uint8_t> bytes_;
    std::size_t pos_;
    std::size_t left_in_record_;
    std::size_t limit_;
};

// Each gives null when the extension's data is well formed, else the reason.

const char* parse_server_name(FragmentReader data, ClientHelloInfo& info) {
    std::uint16_t list_bytes = 0;
    if (!data.u16(list_bytes) || list_bytes == 0 || list_bytes != data.remaining())
        return "server_name extension malformed";
    while (!data.empty()) {
        std::uint8_t type = 0;
        std::uint16_t name_bytes = 0;
        if (!data.u8(type) || !data.u16(name_bytes)) return "server_name entry cut short";
        // Only host_name is defined; other types are skipped, assuming the same
        // length-prefixed shape (RFC 6066 left that open).
        if (type != name_type_host_name) {
            if (!data.skip(name_bytes)) return "server_name entry overruns its extension";
            continue;
        }
        // Two names would let the balancer log one while the server serves the other.
        if (info.sni) return "two host names in server_name";
        if (name_bytes == 0) return "empty SNI host name";
        if (name_bytes > max_host_name_bytes) return "SNI host name longer than 255 bytes";
        std::string name;
        if (!data.append(name, name_bytes)) return "server_name entry overruns its extension";
        // Printable ASCII without the space: a name with a control byte or a
        // space could forge fields of the access log line it is written to.
        for (const char c : name) {
            const auto byte = static_cast<unsigned char>(c);
            if (byte < 0x21 || byte > 0x7e) return "SNI host name has a byte outside printable ASCII";
        }
        info.sni = std::move(name);
    }
    return nullptr;
}

const char* parse_alpn(FragmentReader data, ClientHelloInfo& info) {
    std::uint16_t list_bytes = 0;
    if (!data.u16(list_bytes) || list_bytes == 0 || list_bytes != data.remaining())
        return "ALPN extension malformed";
    while (!data.empty()) {
        std::uint8_t name_bytes = 0;
        if (!data.u8(name_bytes)) return "ALPN extension malformed";
        if (name_bytes == 0) return "empty ALPN protocol name";
        std::string name;
        if (!data.append(name, name_bytes)) return "ALPN protocol name overruns its extension";
        info.alpn.push_back(std::move(name));
    }
    return nullptr;
}

const char* parse_supported_versions(FragmentReader data, ClientHelloInfo& info) {
    std::uint8_t list_bytes = 0;
    if (!data.u8(list_bytes) || list_bytes < 2 || list_bytes % 2 != 0 || list_bytes != data.remaining())
        return "supported_versions extension malformed";
    while (!data.empty()) {
        std::uint16_t version = 0;
        if (!data.u16(version)) return "supported_versions extension malformed";
        if (version == tls13) info.offers_tls13 = true;
    }
    return nullptr;
}

// The body of a ClientHello whose bytes are all there (RFC 8446 4.1.2, RFC 5246
// 7.4.1.2: extensions may be absent altogether before TLS 1.3).
HelloParse parse_body(FragmentReader hello, std::uint16_t record_version) {
    constexpr const char* truncated = "ClientHello fields overrun its length";
    HelloParse parse;
    ClientHelloInfo& info = parse.info;
    info.record_version = record_version;

    if (!hello.u16(info.client_version)) return fail(HelloStatus::malformed, truncated);
    if ((info.client_version >> 8) != 3) return fail(HelloStatus::malformed, "ClientHello version is not 3.x");
    if (!hello.skip(random_bytes)) return fail(HelloStatus::malformed, truncated);

    std::uint8_t session_id_bytes = 0;
    if (!hello.u8(session_id_bytes)) return fail(HelloStatus::malformed, truncated);
    if (session_id_bytes > max_session_id_bytes)
        return fail(HelloStatus::malformed, "session id longer than 32 bytes");
    if (!hello.skip(session_id_bytes)) return fail(HelloStatus::malformed, truncated);

    std::uint16_t cipher_suite_bytes = 0;
    if (!hello.u16(cipher_suite_bytes)) return fail(HelloStatus::malformed, truncated);
    if (cipher_suite_bytes == 0 || cipher_suite_bytes % 2 != 0)
        return fail(HelloStatus::malformed, "cipher_suites length empty or odd");
    if (!hello.skip(cipher_suite_bytes)) return fail(HelloStatus::malformed, truncated);

    std::uint8_t compression_bytes = 0;
    if (!hello.u8(compression_bytes)) return fail(HelloStatus::malformed, truncated);
    if (compression_bytes == 0) return fail(HelloStatus::malformed, "no compression methods");
    if (!hello.skip(compression_bytes)) return fail(HelloStatus::malformed, truncated);

    if (!hello.empty()) {
        std::uint16_t extension_bytes = 0;
        if (!hello.u16(extension_bytes)) return fail(HelloStatus::malformed, truncated);
        if (extension_bytes != hello.remaining())
            return fail(HelloStatus::malformed, "extensions length does not match the ClientHello");
        bool seen_server_name = false;
        bool seen_alpn = false;
        bool seen_supported_versions = false;
        while (!hello.empty()) {
            std::uint16_t type = 0;
            std::uint16_t data_bytes = 0;
            if (!hello.u16(type) || !hello.u16(data_bytes))
                return fail(HelloStatus::malformed, "extension header cut short");
            FragmentReader data = hello;
            if (!hello.take(data_bytes, data))
                return fail(HelloStatus::malformed, "extension overruns the ClientHello");
            // Duplicates are refused only for the extensions read here (RFC 8446
            // forbids all, but a server may tolerate unknown ones): two of them
            // would make what is logged differ from what the server acts on.
            const char* error = nullptr;
            switch (type) {
                case extension_server_name:
                    if (std::exchange(seen_server_name, true))
                        return fail(HelloStatus::malformed, "duplicate server_name extension");
                    error = parse_server_name(data, info);
                    break;
                case extension_alpn:
                    if (std::exchange(seen_alpn, true))
                        return fail(HelloStatus::malformed, "duplicate ALPN extension");
                    error = parse_alpn(data, info);
                    break;
                case extension_supported_versions:
                    if (std::exchange(seen_supported_versions, true))
                        return fail(HelloStatus::malformed, "duplicate supported_versions extension");
                    error = parse_supported_versions(data, info);
                    break;
                default:
                    break;
            }
            if (error) return fail(HelloStatus::malformed, error);
        }
    }
    parse.status = HelloStatus::complete;
    return parse;
}

}  // namespace

// Walks the records in order, checking each header field as soon as its bytes are
// there, and collects the 4-byte handshake header (which may itself be split over
// records) to learn the ClientHello's length; its body is parsed only once all of
// it has arrived, in place (no reassembly copy).
HelloParse parse_client_hello(std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) return {};
    if (bytes[0] != content_type_handshake) return fail(HelloStatus::not_tls, "not a TLS handshake record");
    if (bytes.size() >= 2 && bytes[1] != 3) return fail(HelloStatus::not_tls, "not a TLS record version");

    std::array<std::uint8_t, handshake_header_bytes> header{};
    std::size_t header_have = 0;
    std::size_t message_bytes = 0;  // header included; known once header_have == 4
    std::size_t message_have = 0;
    std::size_t pos = 0;
    for (;;) {
        if (pos == bytes.size()) return {};
        const std::size_t header_available = std::min(record_header_bytes, bytes.size() - pos);
        if (bytes[pos] != content_type_handshake)
            return fail(HelloStatus::malformed, "a record other than handshake before the ClientHello ended");
        if (header_available >= 2 && bytes[pos + 1] != 3)
            return fail(HelloStatus::malformed, "record version is not 3.x");
        if (header_available < record_header_bytes) return {};
        const std::size_t record_bytes = read_u16_at(bytes, pos + 3);
        if (record_bytes == 0) return fail(HelloStatus::malformed, "empty handshake record");
        if (record_bytes > max_record_bytes)
            return fail(HelloStatus::malformed, "record longer than 2^14+256 bytes");

        const std::size_t fragment = pos + record_header_bytes;
        const std::size_t got = std::min(record_bytes, bytes.size() - fragment);
        for (std::size_t i = 0; i < got && header_have < handshake_header_bytes; ++i) {
            header[header_have++] = bytes[fragment + i];
            if (header_have == 1 && header[0] != handshake_type_client_hello)
                return fail(HelloStatus::malformed, "first handshake message is not a ClientHello");
            if (header_have == handshake_header_bytes) {
                message_bytes = handshake_header_bytes +
                                ((std::size_t{header[1]} << 16) | (std::size_t{header[2]} << 8) | header[3]);
                if (message_bytes > max_client_hello_bytes)
                    return fail(HelloStatus::malformed, "ClientHello longer than 64 KiB");
            }
        }
        message_have += got;
        if (header_have == handshake_header_bytes && message_have >= message_bytes) {
            FragmentReader hello(bytes, record_header_bytes, read_u16_at(bytes, 3), message_bytes);
            if (!hello.skip(handshake_header_bytes))
                return fail(HelloStatus::malformed, "ClientHello fields overrun its length");
            return parse_body(hello, static_cast<std::uint16_t>(read_u16_at(bytes, 1)));
        }
        if (got < record_bytes) return {};
        pos = fragment + record_bytes;
    }
}

const char* to_string(HelloStatus status) {
    switch (status) {
        case HelloStatus::complete: return "complete";
        case HelloStatus::need_more: return "need_more";
        case HelloStatus::not_tls: return "not_tls";
        case HelloStatus::malformed: return "malformed";
    }
    return "unknown";
}

}  // namespace castellan::tls
