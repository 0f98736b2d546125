// Readers of the value kinds the config schema shares: names, file paths,
// addresses, DNS names. Each reports through the ObjectReader's error list.
// Internal to conf/ (namespace detail).
#pragma once

#include "conf/json_walker.hpp"

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace castellan::conf::detail {

inline constexpr std::int64_t max_int = std::numeric_limits<int>::max();
inline constexpr std::int64_t one_week_s = 604800;
inline constexpr std::int64_t one_hour_ms = 3600000;

// What every part of the document needs while it is read.
struct Context {
    Errors& errors;
    std::filesystem::path base_dir;  // absolute; relative paths are joined to it
    std::map<std::string, PersistenceGroup> groups;
    bool groups_readable = true;  // false when persistence_groups was not an object
};

// `[A-Za-z0-9_.-]{1,64}`: service, real-server and group names.
bool is_name(std::string_view text);
extern const char* const name_rule;  // that rule in words, for messages
// RFC 9110 token: an HTTP method or a cookie name.
bool is_token(std::string_view text);
// Printable ASCII without spaces: what may go into a request line or a header.
bool is_visible_ascii(std::string_view text);

// "only allowed with KEY VALUES", for keys that do not belong with a type or mode.
std::string only_with(std::string_view key, std::string_view values);

// A required name (is_name).
bool read_name(ObjectReader& r, std::string_view key, std::string& out);
// `text` made absolute against ctx.base_dir.
std::string resolve_path(const std::string& text, const Context& ctx);
// A non-empty file path, made absolute. Whether the file exists is the runtime's
// business, at load.
bool read_path(ObjectReader& r, std::string_view key, std::string& out, const Context& ctx);
bool read_path(ObjectReader& r, std::string_view key, std::optional<std::string>& out, const Context& ctx);
// `HOST:PORT`; with `ip_only`, HOST must be an IP literal (listen addresses).
bool read_address(ObjectReader& r, std::string_view key, HostPort& out, bool ip_only);
// A DNS name to send as SNI (RFC 6066 allows no IP literal there).
bool read_dns_name(ObjectReader& r, std::string_view key, std::optional<std::string>& out);

}  // namespace castellan::conf::detail
