#include "conf/field_readers.hpp"

#include "conf/address.hpp"

#include <fmt/format.h>

#include <cstring>

namespace castellan::conf::detail {

const char* const name_rule = "1 to 64 letters, digits, '_', '.' or '-'";

bool is_name(std::string_view text) {
    if (text.empty() || text.size() > 64) return false;
    for (char c : text) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool is_token(std::string_view text) {
    if (text.empty()) return false;
    for (char c : text) {
        // strchr also finds the terminating NUL, hence the explicit test.
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
        if (!ok) return false;
    }
    return true;
}

bool is_visible_ascii(std::string_view text) {
    if (text.empty()) return false;
    for (char c : text) {
        if (c < '!' || c > '~') return false;
    }
    return true;
}

std::string only_with(std::string_view key, std::string_view values) {
    return fmt::format("only allowed with {} {}", key, values);
}

bool read_name(ObjectReader& r, std::string_view key, std::string& out) {
    if (!r.require(key)) return false;
    std::string text;
    if (!r.string(key, text)) return false;
    if (!is_name(text)) {
        r.error(key, fmt::format("expected a name of {}, got {}", name_rule, quote(text)));
        return false;
    }
    out = std::move(text);
    return true;
}

std::string resolve_path(const std::string& text, const Context& ctx) {
    const std::filesystem::path path(text);
    if (path.is_absolute()) return text;
    // "." parts are dropped, ".." parts kept: a folder reached through a symlink
    // then resolves as the kernel would resolve it.
    std::filesystem::path joined = ctx.base_dir;
    for (const auto& part : path) {
        if (part != ".") joined /= part;
    }
    return joined.string();
}

bool read_path(ObjectReader& r, std::string_view key, std::string& out, const Context& ctx) {
    std::string text;
    if (!r.string(key, text)) return false;
    if (text.empty() || text.find('\0') != std::string::npos) {
        r.error(key, fmt::format("expected a file path, got {}", quote(text)));
        return false;
    }
    out = resolve_path(text, ctx);
    return true;
}

bool read_path(ObjectReader& r, std::string_view key, std::optional<std::string>& out, const Context& ctx) {
    std::string path;
    if (!read_path(r, key, path, ctx)) return false;
    out = std::move(path);
    return true;
}

bool read_address(ObjectReader& r, std::string_view key, HostPort& out, bool ip_only) {
    const Json* value = r.take(key);
    if (!value) return false;
    const char* expected = ip_only ? "expected IP:PORT" : "expected HOST:PORT";
    if (!value->is_string()) {
        r.error(key, fmt::format("{} (a string), got {}", expected, describe(*value)));
        return false;
    }
    const auto& text = value->get_ref<const std::string&>();
    std::string problem;
    auto parsed = parse_host_port(text, !ip_only, &problem);
    if (!parsed) {
        std::string message = fmt::format("{}, got {}", expected, quote(text));
        if (!problem.empty()) message += fmt::format(" ({})", problem);
        r.error(key, std::move(message));
        return false;
    }
    out = std::move(*parsed);
    return true;
}

bool read_dns_name(ObjectReader& r, std::string_view key, std::optional<std::string>& out) {
    std::string text;
    if (!r.string(key, text)) return false;
    if (!is_valid_hostname(text)) {
        r.error(key, fmt::format("expected a DNS name, got {}", quote(text)));
        return false;
    }
    out = std::move(text);
    return true;
}

}  // namespace castellan::conf::detail
