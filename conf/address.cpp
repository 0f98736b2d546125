#include "conf/address.hpp"

#include <vector>

namespace castellan::conf {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

int hex_value(char c) {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool all_digits_or_dots(std::string_view text) {
    for (char c : text) {
        if (!is_digit(c) && c != '.') return false;
    }
    return true;
}

// One IPv6 piece of 1-4 hex digits.
std::optional<std::uint16_t> parse_hex_group(std::string_view piece) {
    if (piece.empty() || piece.size() > 4) return std::nullopt;
    unsigned value = 0;
    for (char c : piece) {
        const int digit = hex_value(c);
        if (digit < 0) return std::nullopt;
        value = value * 16 + static_cast<unsigned>(digit);
    }
    return static_cast<std::uint16_t>(value);
}

// 1-65535, decimal digits only.
std::optional<std::uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5) return std::nullopt;
    unsigned value = 0;
    for (char c : text) {
        if (!is_digit(c)) return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value < 1 || value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

void set_problem(std::string* problem, std::string text) {
    if (problem) *problem = std::move(text);
}

}  // namespace

std::optional<Ipv4Bytes> parse_ipv4(std::string_view text) {
    Ipv4Bytes bytes{};
    std::size_t part = 0;
    std::size_t pos = 0;
    while (true) {
        const std::size_t dot = text.find('.', pos);
        const std::string_view digits = text.substr(pos, dot - pos);  // to the end when no dot
        if (digits.empty() || digits.size() > 3 || part >= 4) return std::nullopt;
        if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
        unsigned value = 0;
        for (char c : digits) {
            if (!is_digit(c)) return std::nullopt;
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (value > 255) return std::nullopt;
        bytes[part++] = static_cast<std::uint8_t>(value);
        if (dot == std::string_view::npos) break;
        pos = dot + 1;
    }
    if (part != 4) return std::nullopt;
    return bytes;
}

std::optional<Ipv6Bytes> parse_ipv6(std::string_view text) {
    // Groups before and after the `::` gap; an embedded IPv4 tail counts as two.
    std::vector<std::uint16_t> head;
    std::vector<std::uint16_t> tail;
    bool gap = false;
    std::size_t pos = 0;
    if (text.substr(0, 2) == "::") {
        gap = true;
        pos = 2;
    }
    while (pos < text.size()) {
        const std::size_t colon = text.find(':', pos);
        const std::string_view piece = text.substr(pos, colon - pos);  // to the end when no colon
        auto& groups = gap ? tail : head;
        if (colon == std::string_view::npos && piece.find('.') != std::string_view::npos) {
            const auto v4 = parse_ipv4(piece);
            if (!v4) return std::nullopt;
            groups.push_back(static_cast<std::uint16_t>(((*v4)[0] << 8) | (*v4)[1]));
            groups.push_back(static_cast<std::uint16_t>(((*v4)[2] << 8) | (*v4)[3]));
            break;
        }
        const auto group = parse_hex_group(piece);
        if (!group) return std::nullopt;
        groups.push_back(*group);
        if (colon == std::string_view::npos) break;
        if (colon + 1 < text.size() && text[colon + 1] == ':') {
            if (gap) return std::nullopt;  // a second `::`
            gap = true;
            pos = colon + 2;
        } else {
            pos = colon + 1;
            if (pos == text.size()) return std::nullopt;  // a trailing single colon
        }
    }
    if (text.empty()) return std::nullopt;
    const std::size_t count = head.size() + tail.size();
    if (gap ? count > 7 : count != 8) return std::nullopt;

    Ipv6Bytes bytes{};
    std::size_t index = 0;
    for (auto group : head) {
        bytes[index++] = static_cast<std::uint8_t>(group >> 8);
        bytes[index++] = static_cast<std::uint8_t>(group & 0xff);
    }
    index = 16 - 2 * tail.size();
    for (auto group : tail) {
        bytes[index++] = static_cast<std::uint8_t>(group >> 8);
        bytes[index++] = static_cast<std::uint8_t>(group & 0xff);
    }
    return bytes;
}

bool is_valid_hostname(std::string_view text) {
    if (!text.empty() && text.back() == '.') text.remove_suffix(1);
    if (text.empty() || text.size() > 253) return false;
    std::string_view last_label;
    std::size_t pos = 0;
    while (true) {
        const std::size_t dot = text.find('.', pos);
        const std::string_view label = text.substr(pos, dot - pos);  // to the end when no dot
        if (label.empty() || label.size() > 63) return false;
        if (label.front() == '-' || label.back() == '-') return false;
        for (char c : label) {
            if (!is_alnum(c) && c != '-') return false;
        }
        last_label = label;
        if (dot == std::string_view::npos) break;
        pos = dot + 1;
    }
    return !all_digits_or_dots(last_label);
}

std::optional<HostPort> parse_host_port(std::string_view text, bool allow_hostname, std::string* problem) {
    HostPort result;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos) {
            set_problem(problem, "missing ] after the IPv6 address");
            return std::nullopt;
        }
        const std::string_view host = text.substr(1, close - 1);
        const std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') {
            set_problem(problem, "missing :PORT after ]");
            return std::nullopt;
        }
        if (!parse_ipv6(host)) {
            set_problem(problem, "not a valid IPv6 address");
            return std::nullopt;
        }
        result.host = std::string(host);
        result.kind = HostPort::Kind::ipv6;
        port_text = rest.substr(1);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos || colon == 0) {
            set_problem(problem, "");
            return std::nullopt;
        }
        const std::string_view host = text.substr(0, colon);
        if (host.find(':') != std::string_view::npos) {
            set_problem(problem, "an IPv6 address needs brackets, as in [::1]:443");
            return std::nullopt;
        }
        if (parse_ipv4(host)) {
            result.kind = HostPort::Kind::ipv4;
        } else if (all_digits_or_dots(host)) {
            set_problem(problem, "not a valid IPv4 address");
            return std::nullopt;
        } else if (!allow_hostname) {
            set_problem(problem, "an IP address is needed here, not a hostname");
            return std::nullopt;
        } else if (!is_valid_hostname(host)) {
            set_problem(problem, "not a valid hostname (letters, digits, hyphens and dots)");
            return std::nullopt;
        } else {
            result.kind = HostPort::Kind::hostname;
        }
        result.host = std::string(host);
        port_text = text.substr(colon + 1);
    }
    const auto port = parse_port(port_text);
    if (!port) {
        set_problem(problem, "port must be 1 to 65535");
        return std::nullopt;
    }
    result.port = *port;
    return result;
}

bool listens_overlap(const HostPort& a, const HostPort& b) {
    if (a.port != b.port || a.kind != b.kind) return false;
    switch (a.kind) {
    case HostPort::Kind::ipv4: {
        const auto x = parse_ipv4(a.host);
        const auto y = parse_ipv4(b.host);
        if (!x || !y) return false;
        return *x == *y || a.is_wildcard() || b.is_wildcard();
    }
    case HostPort::Kind::ipv6: {
        const auto x = parse_ipv6(a.host);
        const auto y = parse_ipv6(b.host);
        if (!x || !y) return false;
        return *x == *y || a.is_wildcard() || b.is_wildcard();
    }
    case HostPort::Kind::hostname:
        return false;
    }
    return false;
}

}  // namespace castellan::conf
