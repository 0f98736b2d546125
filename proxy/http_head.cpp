#include "proxy/http_head.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

namespace castellan::proxy::http {

namespace {

using beast_http::field;

using boost::beast::iequals;

// RFC 9110 5.6.2 token characters.
bool is_token_char(char c) {
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
    static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return extra.find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) { return !text.empty() && std::all_of(text.begin(), text.end(), is_token_char); }

// Without the spaces and tabs around it (RFC 9110 5.6.3 OWS).
std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t");
    return text.substr(first, last - first + 1);
}

// Field values may hold visible characters, spaces, tabs and obs-text; never
// CR, LF or NUL (a bare CR is how a value smuggles a second field).
bool is_field_value(std::string_view value) {
    return std::none_of(value.begin(), value.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u == '\r' || u == '\n' || u == 0 || (u < 0x20 && u != '\t') || u == 0x7f;
    });
}

// RFC 3986 host [":" port]: a reg-name, an IPv4 address or a bracketed IP literal.
bool is_valid_host(std::string_view host) {
    if (host.empty()) return false;
    std::string_view name = host;
    if (name.front() == '[') {
        const auto close = name.find(']');
        if (close == std::string_view::npos) return false;
        const std::string_view literal = name.substr(1, close - 1);
        if (literal.empty() || !std::all_of(literal.begin(), literal.end(), [](char c) {
                return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
            })) {
            return false;
        }
        name = name.substr(close + 1);
        if (name.empty()) return true;
        if (name.front() != ':') return false;
        const std::string_view port = name.substr(1);
        return std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    }
    const auto colon = name.rfind(':');
    if (colon != std::string_view::npos) {
        const std::string_view port = name.substr(colon + 1);
        if (!std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
            return false;
        }
        name = name.substr(0, colon);
    }
    if (name.empty()) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~' ||
               c == '%' || c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
               c == '+' || c == ',' || c == ';' || c == '=';
    });
}

// Request-target characters (RFC 3986 pchar, query, and '%' escapes): no
// spaces, controls or bytes above 0x7e.
bool is_target_text(std::string_view target) {
    return std::all_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f && c != '"' && c != '<' && c != '>' && c != '\\' && c != '^' && c != '`' &&
               c != '{' && c != '|' && c != '}';
    });
}

// Every '%' starts an escape of two hex digits (RFC 3986 2.1): a server that
// decodes "%zz" its own way could route or authorise by a path castellan never saw.
bool has_valid_escapes(std::string_view target) {
    for (std::size_t at = target.find('%'); at != std::string_view::npos; at = target.find('%', at + 1)) {
        if (at + 2 >= target.size() || !std::isxdigit(static_cast<unsigned char>(target[at + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(target[at + 2]))) {
            return false;
        }
    }
    return true;
}

std::optional<Refusal> check_target(const RequestHead& head) {
    const std::string_view target = head.target();
    // A fragment is the client's own business and never sent (RFC 9112 3.2).
    if (target.empty() || !is_target_text(target) || target.find('#') != std::string_view::npos ||
        !has_valid_escapes(target)) {
        return Refusal{beast_http::status::bad_request, "bad_target"};
    }
    if (head.method() == beast_http::verb::connect) {
        return Refusal{beast_http::status::method_not_allowed, "connect_refused"};
    }
    if (target == "*") {
        if (head.method() != beast_http::verb::options) return Refusal{beast_http::status::bad_request, "bad_target"};
        return std::nullopt;
    }
    if (target.front() == '/') return std::nullopt;  // origin-form
    // absolute-form (RFC 9112 3.2.2): a scheme, "://", an authority.
    const auto scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos || scheme_end == 0) {
        return Refusal{beast_http::status::bad_request, "bad_target"};
    }
    const std::string_view scheme = target.substr(0, scheme_end);
    if (!iequals(scheme, "http") && !iequals(scheme, "https")) {
        return Refusal{beast_http::status::bad_request, "bad_target"};
    }
    // An http(s) URI has a host (RFC 9110 4.2.1) and no userinfo (4.2.4: a
    // recipient treats it as an error; it hides the real host from people).
    const std::string_view rest = target.substr(scheme_end + 3);
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    if (authority.find('@') != std::string_view::npos || !is_valid_host(authority)) {
        return Refusal{beast_http::status::bad_request, "bad_target"};
    }
    return std::nullopt;
}

// Fields that describe one connection, never passed on (RFC 9110 7.6.1), and
// the framing castellan writes itself.
bool is_hop_by_hop(field name) {
    switch (name) {
        case field::connection:
        case field::keep_alive:
        case field::proxy_connection:
        case field::te:
        case field::trailer:
        case field::transfer_encoding:
        case field::upgrade:
        case field::content_length:
            return true;
        default:
            return false;
    }
}

constexpr std::string_view x_forwarded_for = "X-Forwarded-For";
constexpr std::string_view x_forwarded_proto = "X-Forwarded-Proto";

// The field names the Connection field lists: hop-by-hop too.
template <typename Head>
bool named_by_connection(const Head& head, std::string_view name) {
    const auto [first, last] = head.equal_range(field::connection);
    for (auto connection = first; connection != last; ++connection) {
        for (auto token : beast_http::token_list(connection->value())) {
            if (iequals(token, name)) return true;
        }
    }
    return false;
}

// A name with '_' that reads as a field castellan frames or writes itself
// once '_' is taken for '-' ("Transfer_Encoding", "X_Forwarded_For"): servers
// that map header names to CGI variables (HTTP_TRANSFER_ENCODING) cannot tell
// the two apart, so such a field is not passed on (nginx drops every name with
// '_' by default).
bool is_lookalike(std::string_view name) {
    if (name.find('_') == std::string_view::npos) return false;
    std::string dashed(name);
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    const field known = beast_http::string_to_field(dashed);
    return (known != field::unknown && (is_hop_by_hop(known) || known == field::host)) ||
           iequals(dashed, x_forwarded_for) || iequals(dashed, x_forwarded_proto);
}

template <typename Head>
void append_end_to_end_fields(std::string& out, const Head& head, bool skip_forwarded) {
    for (const auto& entry : head) {
        if (is_hop_by_hop(entry.name()) || is_lookalike(entry.name_string())) continue;
        if (skip_forwarded &&
            (iequals(entry.name_string(), x_forwarded_for) || iequals(entry.name_string(), x_forwarded_proto))) {
            continue;
        }
        if (named_by_connection(head, entry.name_string())) continue;
        out.append(entry.name_string()).append(": ").append(entry.value()).append("\r\n");
    }
}

void append_framing(std::string& out, const BodyFraming& framing) {
    if (framing.framing == Framing::content_length) {
        out.append(fmt::format("Content-Length: {}\r\n", framing.length));
    } else if (framing.framing == Framing::chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
}

template <typename Head>
bool asks_upgrade(const Head& head) {
    return head.find(field::upgrade) != head.end() && named_by_connection(head, "upgrade");
}

}  // namespace

std::optional<Refusal> check_request(const RequestHead& head, bool parsed_chunked) {
    if (head.method() == beast_http::verb::unknown && !is_token(head.method_string())) {
        return Refusal{beast_http::status::bad_request, "bad_method"};
    }
    if (auto refusal = check_target(head)) return refusal;
    if (head.find(field::transfer_encoding) != head.end()) {
        // Only chunked, alone: any other coding is one the server might frame
        // differently from castellan (RFC 9112 6.1).
        if (!parsed_chunked || head.count(field::transfer_encoding) != 1 ||
            !iequals(head[field::transfer_encoding], "chunked")) {
            return Refusal{beast_http::status::bad_request, "bad_transfer_encoding"};
        }
        if (head.version() < 11) return Refusal{beast_http::status::bad_request, "bad_transfer_encoding"};
    }
    for (const auto& entry : head) {
        if (!is_token(entry.name_string()) || !is_field_value(entry.value())) {
            return Refusal{beast_http::status::bad_request, "bad_field"};
        }
    }
    const auto hosts = head.count(field::host);
    if (hosts > 1) return Refusal{beast_http::status::bad_request, "bad_host"};
    if (hosts == 0 && head.version() >= 11) return Refusal{beast_http::status::bad_request, "missing_host"};
    if (hosts == 1 && !is_valid_host(head[field::host])) return Refusal{beast_http::status::bad_request, "bad_host"};
    return std::nullopt;
}

bool is_rpc_channel(const RequestHead& head) {
    const std::string_view method = head.method_string();
    return method == "RPC_IN_DATA" || method == "RPC_OUT_DATA";
}

bool expects_continue(const RequestHead& head) {
    const auto expect = head.find(field::expect);
    return expect != head.end() && iequals(trim(expect->value()), "100-continue");
}

bool offers_connection_auth(const ResponseHead& head) {
    if (head.result_int() != 401) return false;
    const auto [first, last] = head.equal_range(field::www_authenticate);
    for (auto entry = first; entry != last; ++entry) {
        // Challenges are comma-separated; a challenge starts with its scheme,
        // a token followed by a space or nothing (an auth-param is `name=`).
        std::string_view rest = entry->value();
        while (!rest.empty()) {
            const std::size_t comma = rest.find(',');
            const std::string_view part = trim(rest.substr(0, comma));
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            const std::size_t end = part.find_first_of(" =");
            if (end != std::string_view::npos && part[end] == '=') continue;
            const std::string_view scheme = part.substr(0, end);
            if (iequals(scheme, "NTLM") || iequals(scheme, "Negotiate")) return true;
        }
    }
    return false;
}

bool is_idempotent(beast_http::verb method) {
    switch (method) {
        case beast_http::verb::get:
        case beast_http::verb::head:
        case beast_http::verb::options:
        case beast_http::verb::trace:
        case beast_http::verb::put:
        case beast_http::verb::delete_:
            return true;
        default:
            return false;
    }
}

std::string forwarded_request(const RequestHead& head, const BodyFraming& framing, bool forwarded_for,
                              std::string_view client_address, bool client_tls, std::string_view default_host) {
    std::string out;
    out.reserve(512);
    out.append(head.method_string()).append(" ").append(head.target()).append(" HTTP/1.1\r\n");
    if (head.find(field::host) == head.end()) out.append("Host: ").append(default_host).append("\r\n");
    append_end_to_end_fields(out, head, forwarded_for);
    if (forwarded_for) {
        std::string chain;
        const auto [first, last] = head.equal_range(x_forwarded_for);
        for (auto entry = first; entry != last; ++entry) {
            if (!chain.empty()) chain.append(", ");
            chain.append(entry->value());
        }
        if (!chain.empty()) chain.append(", ");
        chain.append(client_address);
        out.append("X-Forwarded-For: ").append(chain).append("\r\n");
        out.append("X-Forwarded-Proto: ").append(client_tls ? "https" : "http").append("\r\n");
    }
    if (asks_upgrade(head)) {
        out.append("Connection: upgrade\r\nUpgrade: ").append(head[field::upgrade]).append("\r\n");
    }
    append_framing(out, framing);
    out.append("\r\n");
    return out;
}

std::string forwarded_response(const ResponseHead& head, const BodyFraming& framing, bool keep_alive,
                               unsigned client_version, std::string_view extra_fields) {
    std::string out;
    out.reserve(512);
    const unsigned status = head.result_int();
    std::string_view reason = head.reason();
    if (reason.empty()) reason = beast_http::obsolete_reason(head.result());
    out.append(fmt::format("HTTP/1.1 {} ", status)).append(reason).append("\r\n");
    append_end_to_end_fields(out, head, false);
    out.append(extra_fields);
    if (status == 101) {
        out.append("Connection: upgrade\r\n");
        if (head.find(field::upgrade) != head.end()) out.append("Upgrade: ").append(head[field::upgrade]).append("\r\n");
    } else if (!keep_alive) {
        out.append("Connection: close\r\n");
    } else if (client_version < 11) {
        out.append("Connection: keep-alive\r\n");
    }
    append_framing(out, framing);
    out.append("\r\n");
    return out;
}

std::string set_cookie_field(std::string_view name, std::string_view value, bool secure,
                             std::optional<std::int64_t> expires_unix, std::int64_t max_age_s) {
    std::string out = fmt::format("Set-Cookie: {}={}; Path=/; HttpOnly", name, value);
    if (secure) out.append("; Secure");
    if (expires_unix) {
        const std::time_t when = static_cast<std::time_t>(*expires_unix);
        std::tm utc{};
        gmtime_r(&when, &utc);
        char date[64];
        const std::size_t size = std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
        out.append(fmt::format("; Max-Age={}; Expires=", max_age_s)).append(date, size);
    }
    out.append("\r\n");
    return out;
}

std::string error_response(beast_http::status status) {
    const std::string_view reason = beast_http::obsolete_reason(status);
    const std::string body = fmt::format("{} {}\n", static_cast<unsigned>(status), reason);
    return fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: "
        "no-store\r\n\r\n{}",
        static_cast<unsigned>(status), reason, body.size(), body);
}

std::string_view path_of(std::string_view target) {
    const auto query = target.find('?');
    return query == std::string_view::npos ? target : target.substr(0, query);
}

}  // namespace castellan::proxy::http
