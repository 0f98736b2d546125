#include "persistence/cookie_codec.hpp"

#include <charconv>

namespace castellan::persistence {

namespace {

constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::size_t mac_bytes = 16;
// A cookie value longer than this is not one of ours: not worth a MAC.
constexpr std::size_t most_value_bytes = 256;

int value_of(char c) {
    const auto at = alphabet.find(c);
    return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

std::string sealed_part(std::string_view server_field, std::string_view expiry_field) {
    std::string message;
    message.reserve(server_field.size() + expiry_field.size() + 1);
    message.append(server_field).append(".").append(expiry_field);
    return message;
}

// Comparison in time independent of where the first difference is.
bool same_bytes(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned difference = 0;
    for (std::size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i]);
    return difference == 0;
}

}  // namespace

std::string base64url_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::uint32_t bits = 0;
    int held = 0;
    for (unsigned char byte : bytes) {
        bits = (bits << 8) | byte;
        held += 8;
        while (held >= 6) {
            held -= 6;
            out.push_back(alphabet[(bits >> held) & 0x3f]);
        }
    }
    if (held > 0) out.push_back(alphabet[(bits << (6 - held)) & 0x3f]);
    return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    if (text.size() % 4 == 1) return std::nullopt;  // no byte count ends that way
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t bits = 0;
    int held = 0;
    for (char c : text) {
        const int value = value_of(c);
        if (value < 0) return std::nullopt;
        bits = (bits << 6) | static_cast<std::uint32_t>(value);
        held += 6;
        if (held >= 8) {
            held -= 8;
            out.push_back(static_cast<char>((bits >> held) & 0xff));
        }
    }
    // Leftover bits must be zero, or two texts would decode the same.
    if (held > 0 && (bits & ((1u << held) - 1)) != 0) return std::nullopt;
    return out;
}

std::string CookieCodec::encode(std::string_view server, std::optional<std::int64_t> expires_unix) const {
    const std::string server_field = base64url_encode(server);
    const std::string expiry_field = expires_unix ? std::to_string(*expires_unix) : "-";
    const std::string message = sealed_part(server_field, expiry_field);
    const Digest digest = mac_(message);
    const std::string mac_field =
        base64url_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), mac_bytes));
    return message + "." + mac_field;
}

std::optional<CookieCodec::Decoded> CookieCodec::decode(std::string_view value, std::int64_t now_unix) const {
    if (value.empty() || value.size() > most_value_bytes) return std::nullopt;
    const auto first_dot = value.find('.');
    if (first_dot == std::string_view::npos) return std::nullopt;
    const auto second_dot = value.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos || value.find('.', second_dot + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    const std::string_view server_field = value.substr(0, first_dot);
    const std::string_view expiry_field = value.substr(first_dot + 1, second_dot - first_dot - 1);
    const std::string_view mac_field = value.substr(second_dot + 1);

    const Digest digest = mac_(sealed_part(server_field, expiry_field));
    const std::string expected =
        base64url_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), mac_bytes));
    if (!same_bytes(expected, mac_field)) return std::nullopt;

    Decoded decoded;
    if (expiry_field != "-") {
        std::int64_t expires = 0;
        const auto [end, error] = std::from_chars(expiry_field.data(), expiry_field.data() + expiry_field.size(), expires);
        if (error != std::errc() || end != expiry_field.data() + expiry_field.size()) return std::nullopt;
        if (expires <= now_unix) return std::nullopt;
        decoded.expires_unix = expires;
    }
    auto server = base64url_decode(server_field);
    if (!server || server->empty()) return std::nullopt;
    decoded.server = std::move(*server);
    return decoded;
}

std::optional<std::string_view> find_cookie(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        const auto end = header.find(';');
        std::string_view pair = header.substr(0, end);
        header = end == std::string_view::npos ? std::string_view() : header.substr(end + 1);
        while (!pair.empty() && (pair.front() == ' ' || pair.front() == '\t')) pair.remove_prefix(1);
        while (!pair.empty() && (pair.back() == ' ' || pair.back() == '\t')) pair.remove_suffix(1);
        const auto equals = pair.find('=');
        if (equals == std::string_view::npos || pair.substr(0, equals) != name) continue;
        std::string_view value = pair.substr(equals + 1);
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        return value;
    }
    return std::nullopt;
}

}  // namespace castellan::persistence
