// libFuzzer target for tls::parse_client_hello (scripts/fuzz.sh builds and runs it).
// Besides "never crashes, never reads out of bounds" (ASan, UBSan), it checks what
// the passthrough session relies on; a broken property aborts with its name.
#include "tls/client_hello.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace {

using castellan::tls::ClientHelloInfo;
using castellan::tls::HelloParse;
using castellan::tls::HelloStatus;
using Bytes = std::vector<std::uint8_t>;

[[noreturn]] void broken(const char* property) {
    std::fprintf(stderr, "client_hello_fuzz: broken property: %s\n", property);
    std::abort();
}

void check(bool holds, const char* property) {
    if (!holds) broken(property);
}

HelloParse parse(std::span<const std::uint8_t> bytes) { return castellan::tls::parse_client_hello(bytes); }

bool same_info(const ClientHelloInfo& a, const ClientHelloInfo& b) {
    return a.sni == b.sni && a.alpn == b.alpn && a.record_version == b.record_version &&
           a.client_version == b.client_version && a.offers_tls13 == b.offers_tls13;
}

bool same_parse(const HelloParse& a, const HelloParse& b) {
    const std::string_view error_a = a.error ? a.error : "";
    const std::string_view error_b = b.error ? b.error : "";
    return a.status == b.status && error_a == error_b && same_info(a.info, b.info);
}

void check_shape(const HelloParse& result) {
    const bool decided_against = result.status == HelloStatus::not_tls || result.status == HelloStatus::malformed;
    check(decided_against == (result.error != nullptr), "an error exactly for not_tls and malformed");
    if (result.status != HelloStatus::complete) {
        check(!result.info.sni && result.info.alpn.empty() && !result.info.offers_tls13,
              "info is empty unless complete");
        return;
    }
    if (result.info.sni) {
        const std::string& name = *result.info.sni;
        check(!name.empty() && name.size() <= 255, "SNI of 1 to 255 bytes");
        for (const char c : name) {
            const auto byte = static_cast<unsigned char>(c);
            check(byte >= 0x21 && byte <= 0x7e, "SNI in printable ASCII");
        }
    }
    for (const auto& protocol : result.info.alpn)
        check(!protocol.empty() && protocol.size() <= 255, "ALPN names of 1 to 255 bytes");
}

// The handshake bytes of the first `wanted` of a well-formed record stream.
Bytes handshake_prefix(std::span<const std::uint8_t> records, std::size_t wanted) {
    Bytes stream;
    std::size_t pos = 0;
    while (stream.size() < wanted && pos + 5 <= records.size()) {
        const std::size_t length = (std::size_t{records[pos + 3]} << 8) | records[pos + 4];
        const std::size_t got = std::min(length, records.size() - pos - 5);
        stream.insert(stream.end(), records.begin() + static_cast<std::ptrdiff_t>(pos + 5),
                      records.begin() + static_cast<std::ptrdiff_t>(pos + 5 + got));
        pos += 5 + length;
    }
    if (stream.size() > wanted) stream.resize(wanted);
    return stream;
}

// `stream` in records of `size` bytes, the first with `first_version`.
Bytes to_records(const Bytes& stream, std::size_t size, std::uint16_t first_version) {
    Bytes records;
    for (std::size_t pos = 0; pos < stream.size(); pos += size) {
        const std::size_t chunk = std::min(size, stream.size() - pos);
        const std::uint16_t version = pos == 0 ? first_version : 0x0303;
        records.insert(records.end(), {22, static_cast<std::uint8_t>(version >> 8),
                                       static_cast<std::uint8_t>(version & 0xff), 0,
                                       static_cast<std::uint8_t>(chunk)});
        records.insert(records.end(), stream.begin() + static_cast<std::ptrdiff_t>(pos),
                       stream.begin() + static_cast<std::ptrdiff_t>(pos + chunk));
    }
    return records;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    const HelloParse result = parse(input);
    check_shape(result);

    // A prefix either needs more or has already decided what the whole input gives.
    for (const std::size_t cut : {size / 2, size > 0 ? size - 1 : 0}) {
        const HelloParse prefix = parse(input.first(cut));
        check_shape(prefix);
        check(prefix.status == HelloStatus::need_more || same_parse(prefix, result),
              "a decided prefix decides the whole input the same");
    }

    // Once decided, appended bytes change nothing (the session reads in chunks and
    // may hold bytes past the ClientHello).
    if (result.status != HelloStatus::need_more) {
        Bytes longer(input.begin(), input.end());
        static constexpr std::uint8_t tail[] = {0x16, 0x03, 0x03, 0x00, 0x01, 0x02, 'G', 'E', 'T', ' ', 0x00, 0xff};
        longer.insert(longer.end(), std::begin(tail), std::end(tail));
        check(same_parse(parse(longer), result), "appended bytes change nothing once decided");
    }

    // A complete hello re-split into 1-byte and 3-byte records says the same.
    if (result.status == HelloStatus::complete) {
        const Bytes header = handshake_prefix(input, 4);
        check(header.size() == 4, "a complete hello has its handshake header");
        const std::size_t length =
            4 + ((std::size_t{header[1]} << 16) | (std::size_t{header[2]} << 8) | header[3]);
        const Bytes message = handshake_prefix(input, length);
        check(message.size() == length, "a complete hello has all its bytes");
        for (const std::size_t record_size : {std::size_t{1}, std::size_t{3}}) {
            const HelloParse split = parse(to_records(message, record_size, result.info.record_version));
            check(same_parse(split, result), "record boundaries do not change a complete hello");
        }
    }
    return 0;
}
