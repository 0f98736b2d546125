#include "conf/service_parser.hpp"

#include "conf/address.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace castellan::conf::detail {

namespace {

constexpr std::array modes{Mode::tcp, Mode::http};
constexpr std::array schedulers{SchedulerKind::round_robin, SchedulerKind::weighted_round_robin,
                                SchedulerKind::least_connections, SchedulerKind::source_hash};
constexpr std::array persistence_kinds{PersistenceKind::none, PersistenceKind::source_ip, PersistenceKind::cookie,
                                       PersistenceKind::rpc_http};
constexpr std::array rpc_http_fallbacks{PersistenceKind::cookie, PersistenceKind::source_ip, PersistenceKind::none};
constexpr std::array health_check_kinds{HealthCheckKind::tcp,    HealthCheckKind::http,   HealthCheckKind::https,
                                        HealthCheckKind::smtp,   HealthCheckKind::dcerpc, HealthCheckKind::none};
constexpr std::array tls_modes{TlsMode::terminate, TlsMode::passthrough, TlsMode::reencrypt};
constexpr std::array server_down_actions{OnServerDown::keep, OnServerDown::close};

// source_ip's keys: a group (whose timeout and size apply) or this service's
// own timeout_s and max_entries.
void read_source_ip_keys(ObjectReader& r, Context& ctx, Persistence& out) {
    if (r.has("group")) {
        std::string group;
        if (r.string("group", group)) {
            const auto found = ctx.groups.find(group);
            if (found != ctx.groups.end()) {
                // The group's table is what applies; copied so that a reader of
                // this struct alone sees the effective values.
                out.timeout_s = found->second.timeout_s;
                out.max_entries = found->second.max_entries;
            } else if (ctx.groups_readable) {
                r.error("group", fmt::format("persistence group {} is not defined in /persistence_groups",
                                             quote(group)));
            }
            out.group = std::move(group);
        }
        r.reject("timeout_s", "not allowed together with group (the group's timeout_s applies)");
        r.reject("max_entries", "not allowed together with group (the group's max_entries applies)");
    } else {
        r.integer("timeout_s", out.timeout_s, 1, one_week_s);
        r.integer("max_entries", out.max_entries, 1, no_upper_limit);
    }
}

// The cookie's keys; `timeout_s` is the cookie's only where the caller says
// (under rpc_http falling back to source_ip it is the table's).
void read_cookie_keys(ObjectReader& r, Context& ctx, Persistence& out, bool cookie_timeout) {
    if (std::string name; r.string("cookie_name", name)) {
        if (is_token(name)) {
            out.cookie_name = std::move(name);
        } else {
            r.error("cookie_name", fmt::format("expected a cookie name (letters, digits and {}), got {}",
                                               "!#$%&'*+-.^_`|~", quote(name)));
        }
    }
    if (cookie_timeout) r.integer("timeout_s", out.cookie_timeout_s, 1, one_week_s);
    read_path(r, "cookie_secret_file", out.cookie_secret_file, ctx);
}

void require_http_mode(ObjectReader& r, std::optional<Mode> mode, PersistenceKind type) {
    if (mode && *mode != Mode::http) {
        r.error("type", fmt::format("{} persistence needs mode \"http\" (this service's mode is {})", to_string(type),
                                    quote(to_string(*mode))));
    }
}

void parse_persistence(const Json& value, const std::string& path, std::optional<Mode> mode, Context& ctx,
                       Persistence& out) {
    ObjectReader r(value, path, ctx.errors);
    if (!r.ok()) return;
    std::optional<PersistenceKind> type;
    if (r.require("type")) {
        PersistenceKind kind{};
        if (r.enumeration("type", kind, persistence_kinds)) type = kind;
    }
    if (!type) {
        // Unknown type: the other keys cannot be judged; take them so that they
        // are not also reported as unknown.
        for (auto key : {"group", "timeout_s", "max_entries", "cookie_name", "cookie_secret_file", "fallback"}) {
            r.take(key);
        }
        r.finish();
        return;
    }
    out.type = *type;
    const std::string source_ip_only = only_with("type", "\"source_ip\"");
    const std::string cookie_only = only_with("type", "\"cookie\"");
    if (*type != PersistenceKind::rpc_http) r.reject("fallback", only_with("type", "\"rpc_http\""));
    switch (*type) {
    case PersistenceKind::none:
        for (auto key : {"group", "max_entries"}) r.reject(key, source_ip_only);
        r.reject("timeout_s", only_with("type", "\"source_ip\" or \"cookie\""));
        for (auto key : {"cookie_name", "cookie_secret_file"}) r.reject(key, cookie_only);
        break;
    case PersistenceKind::source_ip:
        read_source_ip_keys(r, ctx, out);
        for (auto key : {"cookie_name", "cookie_secret_file"}) r.reject(key, cookie_only);
        break;
    case PersistenceKind::cookie:
        require_http_mode(r, mode, *type);
        read_cookie_keys(r, ctx, out, true);
        for (auto key : {"group", "max_entries"}) r.reject(key, source_ip_only);
        break;
    case PersistenceKind::rpc_http: {
        require_http_mode(r, mode, *type);
        r.enumeration("fallback", out.fallback, rpc_http_fallbacks);
        const std::string with_source_ip = only_with("fallback", "\"source_ip\"");
        switch (out.fallback) {
        case PersistenceKind::source_ip:
            read_source_ip_keys(r, ctx, out);
            read_cookie_keys(r, ctx, out, false);
            break;
        case PersistenceKind::none:
            for (auto key : {"group", "max_entries"}) r.reject(key, with_source_ip);
            r.reject("timeout_s", only_with("fallback", "\"source_ip\" or \"cookie\""));
            for (auto key : {"cookie_name", "cookie_secret_file"}) {
                r.reject(key, only_with("fallback", "\"cookie\" or \"source_ip\""));
            }
            break;
        default:  // cookie
            read_cookie_keys(r, ctx, out, true);
            for (auto key : {"group", "max_entries"}) r.reject(key, with_source_ip);
            break;
        }
        break;
    }
    }
    r.finish();
}

RealServer parse_real_server(const Json& value, const std::string& path, Context& ctx, bool& name_ok) {
    RealServer server;
    ObjectReader r(value, path, ctx.errors);
    if (!r.ok()) return server;
    name_ok = read_name(r, "name", server.name);
    if (r.require("address")) read_address(r, "address", server.address, false);
    r.integer("weight", server.weight, 1, 256);
    r.boolean("enabled", server.enabled);
    r.finish();
    return server;
}

void parse_real_servers(ObjectReader& service, Context& ctx, std::vector<RealServer>& out) {
    if (!service.require("real_servers")) return;
    const Json& list = *service.take("real_servers");
    const std::string path = service.path_of("real_servers");
    if (!list.is_array()) {
        ctx.errors.push_back({path, fmt::format("expected an array of real servers, got {}", describe(list))});
        return;
    }
    if (list.empty()) {
        ctx.errors.push_back({path, "expected at least one real server"});
        return;
    }
    std::map<std::string, std::size_t> first_index;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string server_path = detail::pointer_join(path, i);
        bool name_ok = false;
        out.push_back(parse_real_server(list[i], server_path, ctx, name_ok));
        if (!name_ok) continue;
        const auto [it, inserted] = first_index.emplace(out.back().name, i);
        if (!inserted) {
            ctx.errors.push_back({detail::pointer_join(server_path, "name"),
                                  fmt::format("name {} is already used by {}", quote(out.back().name),
                                              detail::pointer_join(path, it->second))});
        }
    }
}

void parse_expect_status(const Json& list, const std::string& path, Context& ctx, std::vector<StatusRange>& out) {
    if (!list.is_array() || list.empty()) {
        ctx.errors.push_back({path, fmt::format("expected a non-empty array of status codes and classes "
                                                "such as [\"2xx\", 401], got {}",
                                                describe(list))});
        return;
    }
    std::vector<StatusRange> ranges;
    bool ok = true;
    for (std::size_t i = 0; i < list.size(); ++i) {
        const Json& item = list[i];
        if (item.is_number_integer() && item.get<std::int64_t>() >= 100 && item.get<std::int64_t>() <= 599) {
            const int code = item.get<int>();
            ranges.push_back({code, code});
            continue;
        }
        if (item.is_string()) {
            const auto& text = item.get_ref<const std::string&>();
            if (text.size() == 3 && text[0] >= '1' && text[0] <= '5' && (text[1] == 'x' || text[1] == 'X') &&
                (text[2] == 'x' || text[2] == 'X')) {
                const int low = (text[0] - '0') * 100;
                ranges.push_back({low, low + 99});
                continue;
            }
        }
        ctx.errors.push_back({detail::pointer_join(path, i),
                              fmt::format("expected a status code from 100 to 599 or a class \"1xx\" to \"5xx\", "
                                          "got {}",
                                          describe(item))});
        ok = false;
    }
    if (ok) out = std::move(ranges);
}

// "8-4-4-4-12" hex digits, as RPC interface UUIDs are written.
std::optional<std::array<std::uint8_t, 16>> parse_uuid(std::string_view text) {
    if (text.size() != 36) return std::nullopt;
    std::array<std::uint8_t, 16> out{};
    std::size_t byte = 0;
    for (std::size_t i = 0; i < text.size();) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') return std::nullopt;
            ++i;
            continue;
        }
        int value = 0;
        for (int half = 0; half < 2; ++half, ++i) {
            const char c = text[i];
            const int digit = c >= '0' && c <= '9'   ? c - '0'
                              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1;
            if (digit < 0) return std::nullopt;
            value = value * 16 + digit;
        }
        out[byte++] = static_cast<std::uint8_t>(value);
    }
    return out;
}

// "MAJOR.MINOR", each 0-65535.
std::optional<std::pair<std::uint16_t, std::uint16_t>> parse_interface_version(std::string_view text) {
    const auto dot = text.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    auto number = [](std::string_view digits) -> std::optional<std::uint16_t> {
        if (digits.empty() || digits.size() > 5) return std::nullopt;
        unsigned value = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (value > 65535) return std::nullopt;
        return static_cast<std::uint16_t>(value);
    };
    const auto major = number(text.substr(0, dot));
    const auto minor = number(text.substr(dot + 1));
    if (!major || !minor) return std::nullopt;
    return std::pair(*major, *minor);
}

void parse_rpc_interface(const Json& value, const std::string& path, Context& ctx, RpcInterface& out) {
    ObjectReader r(value, path, ctx.errors);
    if (!r.ok()) return;
    if (std::string uuid; r.require("uuid") && r.string("uuid", uuid)) {
        if (auto bytes = parse_uuid(uuid)) {
            out.uuid = *bytes;
        } else {
            r.error("uuid", fmt::format("expected a UUID such as e1af8308-5d1f-11c9-91a4-08002b14a0fa, got {}",
                                        quote(uuid)));
        }
    }
    if (std::string version; r.require("version") && r.string("version", version)) {
        if (auto numbers = parse_interface_version(version)) {
            out.major = numbers->first;
            out.minor = numbers->second;
        } else {
            r.error("version", fmt::format("expected \"MAJOR.MINOR\" such as \"3.0\", got {}", quote(version)));
        }
    }
    r.finish();
}

void parse_health_check(const Json& value, const std::string& path, Context& ctx, HealthCheck& out) {
    ObjectReader r(value, path, ctx.errors);
    if (!r.ok()) return;
    // The type decides which other keys belong; unknown when it is invalid.
    // (A bool beside the value, not an optional: g++ 12 -O2 warns falsely on it.)
    const bool type_known = !r.has("type") || r.enumeration("type", out.type, health_check_kinds);
    const HealthCheckKind type = out.type;

    const bool interval_given = r.has("interval_ms");
    const bool interval_ok = r.integer("interval_ms", out.interval_ms, 100, one_hour_ms);
    const bool timeout_given = r.has("timeout_ms");
    const bool timeout_ok = r.integer("timeout_ms", out.timeout_ms, 50, 60000);
    if (interval_given == interval_ok && timeout_given == timeout_ok && out.timeout_ms >= out.interval_ms) {
        if (timeout_given) {
            r.error("timeout_ms", fmt::format("must be less than interval_ms ({}), got {}", out.interval_ms,
                                              out.timeout_ms));
        } else {
            r.error("interval_ms", fmt::format("must be greater than timeout_ms ({} by default), got {}",
                                               out.timeout_ms, out.interval_ms));
        }
    }
    r.integer("rise", out.rise, 1, 100);
    r.integer("fall", out.fall, 1, 100);
    r.integer("port", out.port, 1, 65535);

    const bool http_like = !type_known || type == HealthCheckKind::http || type == HealthCheckKind::https;
    if (http_like) {
        if (std::string method; r.string("method", method)) {
            if (is_token(method)) {
                out.method = std::move(method);
            } else {
                r.error("method", fmt::format("expected an HTTP method such as GET or HEAD, got {}", quote(method)));
            }
        }
        if (std::string target; r.string("path", target)) {
            if (!target.empty() && target.front() == '/' && is_visible_ascii(target)) {
                out.path = std::move(target);
            } else {
                r.error("path", fmt::format("expected a path starting with / (no spaces or control characters), "
                                            "got {}",
                                            quote(target)));
            }
        }
        if (std::string host; r.string("host", host)) {
            if (is_visible_ascii(host)) {
                out.host = std::move(host);
            } else {
                r.error("host", fmt::format("expected a Host header value (no spaces), got {}", quote(host)));
            }
        }
        if (const Json* list = r.take("expect_status")) {
            parse_expect_status(*list, r.path_of("expect_status"), ctx, out.expect_status);
        }
    } else {
        const std::string message = only_with("type", "\"http\" or \"https\"");
        for (auto key : {"method", "path", "host", "expect_status"}) r.reject(key, message);
    }

    if (!type_known || type == HealthCheckKind::https) {
        r.boolean("verify", out.verify);
        read_path(r, "ca", out.ca, ctx);
        read_dns_name(r, "sni", out.sni);
    } else {
        for (auto key : {"verify", "ca", "sni"}) r.reject(key, only_with("type", "\"https\""));
    }

    if (!type_known || type == HealthCheckKind::dcerpc) {
        if (const Json* item = r.take("interface")) parse_rpc_interface(*item, r.path_of("interface"), ctx, out.rpc_interface);
    } else {
        r.reject("interface", only_with("type", "\"dcerpc\""));
    }
    r.finish();
}

void parse_upstream_tls(const Json& value, const std::string& path, Context& ctx, UpstreamTls& out) {
    ObjectReader r(value, path, ctx.errors);
    r.boolean("verify", out.verify);
    read_path(r, "ca", out.ca, ctx);
    read_dns_name(r, "sni", out.sni);
    r.finish();
}

Tls parse_tls(const Json& value, const std::string& path, std::optional<Mode> service_mode, Context& ctx) {
    Tls tls;
    ObjectReader r(value, path, ctx.errors);
    if (!r.ok()) return tls;
    std::optional<TlsMode> mode;
    if (r.require("mode") && r.enumeration("mode", tls.mode, tls_modes)) mode = tls.mode;
    const bool passthrough = mode == TlsMode::passthrough;
    if (passthrough && service_mode == Mode::http) {
        r.error("mode", "passthrough cannot be used with mode \"http\": HTTP inside TLS that castellan does "
                        "not terminate cannot be read");
    }

    if (passthrough) {
        r.reject("certificates", "not allowed with mode \"passthrough\" (the real servers present their own)");
    } else if (const Json* list = r.take("certificates")) {
        const std::string list_path = r.path_of("certificates");
        if (!list->is_array()) {
            ctx.errors.push_back({list_path, fmt::format("expected an array of {{\"cert\": ..., \"key\": ...}}, "
                                                         "got {}",
                                                         describe(*list))});
        } else if (list->empty()) {
            ctx.errors.push_back({list_path, "expected at least one certificate"});
        }
        for (std::size_t i = 0; list->is_array() && i < list->size(); ++i) {
            Certificate certificate;
            ObjectReader entry((*list)[i], detail::pointer_join(list_path, i), ctx.errors);
            if (entry.require("cert")) read_path(entry, "cert", certificate.cert, ctx);
            if (entry.require("key")) read_path(entry, "key", certificate.key, ctx);
            entry.finish();
            tls.certificates.push_back(std::move(certificate));
        }
    } else if (mode) {
        r.error("certificates", fmt::format("required for mode {}", quote(to_string(*mode))));
    }

    if (passthrough) {
        const std::string message = "not allowed with mode \"passthrough\" (castellan takes no part in that TLS)";
        for (auto key : {"min_version", "ciphers", "ciphersuites"}) r.reject(key, message);
    } else {
        if (const Json* version = r.take("min_version")) {
            if (version->is_string() && (*version == "1.2" || *version == "1.3")) {
                tls.min_version = version->get<std::string>();
            } else {
                r.error("min_version", fmt::format("expected \"1.2\" or \"1.3\", got {}", describe(*version)));
            }
        }
        for (auto key : {"ciphers", "ciphersuites"}) {
            std::optional<std::string>& target = std::string_view(key) == "ciphers" ? tls.ciphers : tls.ciphersuites;
            if (std::string text; r.string(key, text)) {
                if (text.empty()) {
                    r.error(key, "expected an OpenSSL cipher string, got \"\"");
                } else {
                    target = std::move(text);
                }
            }
        }
    }

    if (mode && *mode != TlsMode::reencrypt) {
        r.reject("upstream", only_with("mode", "\"reencrypt\""));
    } else if (const Json* upstream = r.take("upstream")) {
        parse_upstream_tls(*upstream, r.path_of("upstream"), ctx, tls.upstream);
    }
    r.finish();
    return tls;
}

void parse_http(const Json& value, const std::string& path, Context& ctx, Http& out) {
    ObjectReader r(value, path, ctx.errors);
    r.boolean("x_forwarded_for", out.x_forwarded_for);
    r.integer("max_header_bytes", out.max_header_bytes, 1024, 1048576);
    r.finish();
}

// Returns whether idle_s was given (its default depends on the mode).
bool parse_timeouts(const Json& value, const std::string& path, Context& ctx, Timeouts& out) {
    ObjectReader r(value, path, ctx.errors);
    r.integer("connect_ms", out.connect_ms, 1, one_hour_ms);
    r.integer("handshake_ms", out.handshake_ms, 1, one_hour_ms);
    r.integer("client_header_ms", out.client_header_ms, 1, one_hour_ms);
    const bool idle_given = r.has("idle_s");
    r.integer("idle_s", out.idle_s, 1, one_week_s);
    r.finish();
    return idle_given;
}

const char* family_name(HostPort::Kind kind) { return kind == HostPort::Kind::ipv6 ? "IPv6" : "IPv4"; }

// source_addresses: IP literals (no port, no brackets), not a wildcard (that is
// the kernel's choice, which an empty list already says), no address twice
// (it would take two turns of the rotation). Then every real server given by IP
// needs one address of its family: a connection to it can only come from one.
// A real server given by hostname is checked when it is resolved (runtime).
void parse_source_addresses(ObjectReader& service, Context& ctx, const std::vector<RealServer>& servers,
                            std::vector<std::string>& out) {
    const Json* list = service.take("source_addresses");
    if (!list) return;
    const std::string path = service.path_of("source_addresses");
    if (!list->is_array()) {
        ctx.errors.push_back({path, fmt::format("expected an array of IP addresses, got {}", describe(*list))});
        return;
    }
    std::vector<std::string> addresses;
    // Parsed bytes of the valid ones, to find the same address spelled twice
    // ("::1" and "0::1"), with the index that first gave it.
    std::vector<std::pair<std::vector<std::uint8_t>, std::size_t>> seen;
    bool families[2] = {false, false};  // ipv4, ipv6
    bool ok = true;
    for (std::size_t i = 0; i < list->size(); ++i) {
        const Json& item = (*list)[i];
        const std::string item_path = detail::pointer_join(path, i);
        const std::string text = item.is_string() ? item.get<std::string>() : std::string();
        std::vector<std::uint8_t> bytes;
        if (const auto v4 = item.is_string() ? parse_ipv4(text) : std::nullopt) {
            bytes.assign(v4->begin(), v4->end());
        } else if (const auto v6 = item.is_string() ? parse_ipv6(text) : std::nullopt) {
            bytes.assign(v6->begin(), v6->end());
        } else {
            std::string message = fmt::format("expected an IP address such as \"192.0.2.10\" or \"2001:db8::10\", got {}",
                                              describe(item));
            if (item.is_string() && text.find(':') != std::string::npos && text.find('.') != std::string::npos &&
                text.find('[') == std::string::npos && parse_ipv4(text.substr(0, text.rfind(':')))) {
                message += " (no port: castellan picks one)";
            } else if (item.is_string() && !text.empty() && text.front() == '[') {
                message += " (without brackets)";
            }
            ctx.errors.push_back({item_path, std::move(message)});
            ok = false;
            continue;
        }
        if (std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; })) {
            ctx.errors.push_back({item_path, fmt::format("{} is the wildcard address, which means the kernel's "
                                                         "choice: leave source_addresses out for that",
                                                         quote(text))});
            ok = false;
            continue;
        }
        const auto same = std::find_if(seen.begin(), seen.end(), [&](const auto& entry) { return entry.first == bytes; });
        if (same != seen.end()) {
            ctx.errors.push_back({item_path, fmt::format("{} is already listed at {}", quote(text),
                                                         detail::pointer_join(path, same->second))});
            ok = false;
            continue;
        }
        seen.emplace_back(std::move(bytes), i);
        families[seen.back().first.size() == 16 ? 1 : 0] = true;
        addresses.push_back(text);
    }
    if (!ok || addresses.empty()) {
        if (ok) out = std::move(addresses);  // [] = the kernel's choice, as when absent
        return;
    }
    for (const auto kind : {HostPort::Kind::ipv4, HostPort::Kind::ipv6}) {
        if (families[kind == HostPort::Kind::ipv6 ? 1 : 0]) continue;
        const auto needing = std::find_if(servers.begin(), servers.end(), [&](const RealServer& server) {
            // (A server whose address did not parse has an empty host: its error is reported.)
            return server.address.kind == kind && !server.address.host.empty();
        });
        if (needing == servers.end()) continue;
        ctx.errors.push_back(
            {path, fmt::format("has no {} address, which real server {} ({}) needs: a connection to a real server "
                               "comes from an address of its family",
                               family_name(kind), quote(needing->name), needing->address.to_string())});
        ok = false;
    }
    if (ok) out = std::move(addresses);
}

// transparent: a connection to a real server then comes from the client's own
// address, so it cannot also come from source_addresses, and a real server must
// be of the client's family, which is the listener's (`[::]` is IPv6 only). A
// real server given by hostname is checked when it is resolved (runtime).
void parse_transparent(ObjectReader& service, Context& ctx, const VirtualService& s, bool listen_ok, bool& out) {
    if (!service.has("transparent")) return;
    bool transparent = false;
    if (!service.boolean("transparent", transparent) || !transparent) return;
    const std::string path = service.path_of("transparent");
    bool ok = true;
    if (!s.source_addresses.empty()) {
        ctx.errors.push_back({path, "cannot be used with source_addresses: a transparent connection comes from the "
                                    "client's own address; leave source_addresses out"});
        ok = false;
    }
    if (listen_ok) {
        const auto needing = std::find_if(s.real_servers.begin(), s.real_servers.end(), [&](const RealServer& server) {
            return server.address.kind != HostPort::Kind::hostname && !server.address.host.empty() &&
                   server.address.kind != s.listen.kind;
        });
        if (needing != s.real_servers.end()) {
            ctx.errors.push_back(
                {path, fmt::format("real server {} ({}) is {}, the clients of {} are {}: a transparent connection "
                                   "carries the client's address, so it can only reach a real server of its family",
                                   quote(needing->name), needing->address.to_string(),
                                   family_name(needing->address.kind), s.listen.to_string(),
                                   family_name(s.listen.kind))});
            ok = false;
        }
    }
    out = ok;
}

}  // namespace

ServiceResult parse_service(const Json& value, const std::string& path, Context& ctx) {
    ServiceResult result;
    VirtualService& s = result.service;
    ObjectReader r(value, path, ctx.errors);
    if (!r.ok()) return result;
    result.name_ok = read_name(r, "name", s.name);
    result.listen_ok = r.require("listen") && read_address(r, "listen", s.listen, true);
    // The mode decides what other keys mean; unknown when it is invalid.
    std::optional<Mode> mode = s.mode;
    if (r.has("mode")) mode = r.enumeration("mode", s.mode, modes) ? std::optional(s.mode) : std::nullopt;
    r.enumeration("scheduler", s.scheduler, schedulers);

    if (const Json* persistence = r.take("persistence")) {
        parse_persistence(*persistence, r.path_of("persistence"), mode, ctx, s.persistence);
    }
    parse_real_servers(r, ctx, s.real_servers);
    if (const Json* health_check = r.take("health_check")) {
        parse_health_check(*health_check, r.path_of("health_check"), ctx, s.health_check);
    }
    if (const Json* tls = r.take("tls")) s.tls = parse_tls(*tls, r.path_of("tls"), mode, ctx);
    if (mode && *mode != Mode::http) {
        r.reject("http", only_with("mode", "\"http\""));
    } else if (const Json* http = r.take("http")) {
        parse_http(*http, r.path_of("http"), ctx, s.http);
    }
    bool idle_given = false;
    if (const Json* timeouts = r.take("timeouts")) {
        idle_given = parse_timeouts(*timeouts, r.path_of("timeouts"), ctx, s.timeouts);
    }
    if (!idle_given && s.mode == Mode::http) s.timeouts.idle_s = 3600;
    r.integer("max_connections", s.max_connections, 0, max_int);
    r.enumeration("on_server_down", s.on_server_down, server_down_actions);
    r.integer("drain_timeout_s", s.drain_timeout_s, 1, max_int);
    parse_source_addresses(r, ctx, s.real_servers, s.source_addresses);
    parse_transparent(r, ctx, s, result.listen_ok, s.transparent);
    r.finish();
    return result;
}

}  // namespace castellan::conf::detail
