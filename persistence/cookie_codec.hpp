// The value of the persistence cookie: which real server a client belongs to,
// until when, sealed so that a client cannot forge or alter it. Pure code: the
// MAC (HMAC-SHA256 under the configured secret) is handed in, and so is the time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace castellan::persistence {

class CookieCodec {
public:
    using Digest = std::array<std::uint8_t, 32>;
    // The MAC of a message under the secret.
    using Mac = std::function<Digest(std::string_view message)>;

    explicit CookieCodec(Mac mac) : mac_(std::move(mac)) {}

    // `<server>.<expiry>.<mac>`: the server's name (base64url: names are
    // [A-Za-z0-9_.-], the dots must not split the value), its expiry in Unix
    // seconds or `-` for a session cookie, and the first 128 bits of the MAC of
    // both (base64url). No address or port of the server is in it.
    std::string encode(std::string_view server, std::optional<std::int64_t> expires_unix) const;

    struct Decoded {
        std::string server;
        std::optional<std::int64_t> expires_unix;
    };
    // The server a value names, when its MAC is right and it has not expired at
    // `now_unix`; nullopt for anything else (tampered, expired, malformed, from
    // another secret). Never throws.
    std::optional<Decoded> decode(std::string_view value, std::int64_t now_unix) const;

private:
    Mac mac_;
};

// The value of the cookie `name` in a Cookie header field value
// ("a=1; CASTELLAN=xyz"), or nullopt. The first one wins.
std::optional<std::string_view> find_cookie(std::string_view header, std::string_view name);

// base64url without padding (RFC 4648 5); decode gives nullopt on any other byte.
std::string base64url_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace castellan::persistence
