// libFuzzer target for the persistence cookie's codec (scripts/fuzz.sh builds and
// runs it): what a client sends in its Cookie field reaches find_cookie() and
// CookieCodec::decode() before anything else looks at it. Besides crashes and
// out-of-bounds reads (ASan, UBSan), it checks the codec's promises; a broken
// property aborts with its name.
#include "persistence/cookie_codec.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using castellan::persistence::base64url_decode;
using castellan::persistence::base64url_encode;
using castellan::persistence::CookieCodec;
using castellan::persistence::find_cookie;

[[noreturn]] void broken(const char* property) {
    std::fprintf(stderr, "cookie_fuzz: broken property: %s\n", property);
    std::abort();
}

void check(bool holds, const char* property) {
    if (!holds) broken(property);
}

// A keyed stand-in for HMAC-SHA256 (no OpenSSL in the fuzz build): any change of
// the message changes the digest, which is all the codec relies on.
CookieCodec::Digest toy_mac(std::string_view message) {
    CookieCodec::Digest digest{};
    std::uint64_t state = 0x6a09e667f3bcc908ull;
    for (unsigned char c : message) state = (state ^ c) * 0x100000001b3ull;
    for (std::size_t i = 0; i < digest.size(); ++i) {
        state = (state ^ i) * 0x100000001b3ull;
        digest[i] = static_cast<std::uint8_t>(state >> 56);
    }
    return digest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    static const CookieCodec codec(toy_mac);

    // Whatever a client sends: a Cookie field, and a value in it.
    if (auto value = find_cookie(input, "CASTELLAN")) {
        check(value->size() <= input.size(), "find_cookie gives a part of its input");
        if (auto decoded = codec.decode(*value, 1'000'000)) {
            // Anything accepted is what the codec itself would have written.
            check(codec.encode(decoded->server, decoded->expires_unix) == *value, "accepted values are canonical");
            check(!decoded->server.empty(), "an accepted value names a server");
            check(!decoded->expires_unix || *decoded->expires_unix > 1'000'000, "an accepted value is unexpired");
        }
    }
    (void)codec.decode(input, 0);

    // base64url: round trips, and only canonical text decodes.
    const std::string encoded = base64url_encode(input);
    const auto decoded = base64url_decode(encoded);
    check(decoded && *decoded == input, "base64url round trip");
    if (auto bytes = base64url_decode(input)) check(base64url_encode(*bytes) == input, "base64url decodes canonical text only");

    // A value the codec writes for a name made of the input decodes to it.
    if (!input.empty() && input.size() <= 64) {
        const std::string value = codec.encode(input, 2'000'000);
        const auto back = codec.decode(value, 1'000'000);
        check(back && back->server == input && back->expires_unix == 2'000'000, "encode then decode");
        check(!codec.decode(value, 2'000'000), "expired at its expiry");
    }
    return 0;
}
