#include "persistence/cookie_codec.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using castellan::persistence::base64url_decode;
using castellan::persistence::base64url_encode;
using castellan::persistence::CookieCodec;
using castellan::persistence::find_cookie;

namespace {

// A stand-in MAC: not cryptographic, but a different key gives a different
// digest and any change to the message changes it, which is all the codec needs.
CookieCodec::Mac toy_mac(std::string key) {
    return [key](std::string_view message) {
        CookieCodec::Digest digest{};
        std::uint64_t state = 1469598103934665603ull;
        for (char c : key + "|" + std::string(message)) {
            state = (state ^ static_cast<unsigned char>(c)) * 1099511628211ull;
        }
        for (std::size_t i = 0; i < digest.size(); ++i) {
            state = (state ^ i) * 1099511628211ull;
            digest[i] = static_cast<std::uint8_t>(state >> 56);
        }
        return digest;
    };
}

}  // namespace

TEST_CASE("cookie codec: a value names its server until it expires", "[persistence][cookie]") {
    const CookieCodec codec(toy_mac("secret"));
    const std::string session = codec.encode("cas1", std::nullopt);
    auto decoded = codec.decode(session, 1000);
    REQUIRE(decoded);
    CHECK(decoded->server == "cas1");
    CHECK_FALSE(decoded->expires_unix);

    const std::string timed = codec.encode("cas-2.b_x", 2000);
    decoded = codec.decode(timed, 1999);
    REQUIRE(decoded);
    CHECK(decoded->server == "cas-2.b_x");
    CHECK(decoded->expires_unix == 2000);
    CHECK_FALSE(codec.decode(timed, 2000));
    CHECK_FALSE(codec.decode(timed, 5000));
}

TEST_CASE("cookie codec: no address in the value, and only cookie-safe characters", "[persistence][cookie]") {
    const CookieCodec codec(toy_mac("secret"));
    const std::string value = codec.encode("cas1", 1767225600);
    CHECK(value.find("192.168") == std::string::npos);
    CHECK(value.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
          std::string::npos);
}

TEST_CASE("cookie codec: tampered, foreign and malformed values are refused", "[persistence][cookie]") {
    const CookieCodec codec(toy_mac("secret"));
    const CookieCodec other(toy_mac("another secret"));
    const std::string value = codec.encode("cas1", 5000);
    CHECK_FALSE(other.decode(value, 0));

    // Another server's name or a later expiry with the old MAC.
    const std::string mac = value.substr(value.rfind('.'));
    CHECK_FALSE(codec.decode(base64url_encode("cas2") + ".5000" + mac, 0));
    CHECK_FALSE(codec.decode(base64url_encode("cas1") + ".9999999999" + mac, 0));
    CHECK_FALSE(codec.decode(base64url_encode("cas1") + ".-" + mac, 0));
    // Every single-character change.
    for (std::size_t i = 0; i < value.size(); ++i) {
        std::string changed = value;
        changed[i] = changed[i] == 'A' ? 'B' : 'A';
        CHECK_FALSE(codec.decode(changed, 0));
    }
    for (const char* bad : {"", ".", "..", "cas1", "a.b", "a.b.c.d", "Y2FzMQ.5000.", "Y2FzMQ..xyz", "%%%.1.2"}) {
        CHECK_FALSE(codec.decode(bad, 0));
    }
    CHECK_FALSE(codec.decode(std::string(1000, 'A'), 0));
}

TEST_CASE("cookie codec: base64url round trips and refuses what it did not write", "[persistence][cookie]") {
    for (const std::string& text : std::vector<std::string>{"", "a", "ab", "abc", "abcd", "cas1", std::string("\0\xff\x10", 3)}) {
        auto decoded = base64url_decode(base64url_encode(text));
        REQUIRE(decoded);
        CHECK(*decoded == text);
    }
    CHECK_FALSE(base64url_decode("a"));      // no byte count ends with one character
    CHECK_FALSE(base64url_decode("ab+/"));   // base64, not base64url
    CHECK_FALSE(base64url_decode("YR"));     // leftover bits set: "YQ" is the only spelling of "a"
    CHECK(base64url_decode("YQ") == std::string("a"));
}

TEST_CASE("cookie codec: find_cookie takes the named cookie out of a Cookie field", "[persistence][cookie]") {
    CHECK(find_cookie("CASTELLAN=abc", "CASTELLAN") == std::string_view("abc"));
    CHECK(find_cookie("a=1; CASTELLAN=abc; b=2", "CASTELLAN") == std::string_view("abc"));
    CHECK(find_cookie("a=1;CASTELLAN=\"abc\"", "CASTELLAN") == std::string_view("abc"));
    CHECK(find_cookie("CASTELLAN=first; CASTELLAN=second", "CASTELLAN") == std::string_view("first"));
    CHECK_FALSE(find_cookie("XCASTELLAN=abc; CASTELLANX=def", "CASTELLAN"));
    CHECK_FALSE(find_cookie("", "CASTELLAN"));
    CHECK_FALSE(find_cookie("CASTELLAN", "CASTELLAN"));
}
