// The protocol text of the active checks, apart from any socket: the HTTP request a
// check sends and the parse of what a real server answers (an HTTP status line, an
// SMTP banner). Pure functions of their arguments; untrusted input is refused with
// an empty result, never asserted on.
#pragma once

#include "conf/config.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace castellan::healthcheck {

// The first line of `received` without its line end ("\r\n" or "\n"), or nothing
// while no line end has arrived yet.
std::optional<std::string_view> first_line(std::string_view received);

// The status code of an HTTP/1.x status line ("HTTP/1.1 401 Unauthorized",
// "HTTP/1.1 302" without a reason phrase; a trailing line end is allowed). Nothing
// for anything else: another protocol, a code that is not exactly three digits or
// is outside 100-599.
std::optional<int> parse_http_status_line(std::string_view line);

// Whether `status` is in one of the accepted ranges (a check's expect_status).
bool status_expected(int status, const std::vector<conf::StatusRange>& expected);

// The reply code of the first line of an SMTP reply ("220 mail ready",
// "220-first\r\n220 last", "554"): three digits, 100-599, followed by a space, a
// hyphen or the end of the line. Nothing for anything else.
std::optional<int> parse_smtp_reply_code(std::string_view text);

// Where an SMTP reply stands after `received` (all the bytes read so far): lines
// "NNN-..." announce more, a line "NNN ..." or "NNN" ends the reply.
struct SmtpReplyScan {
    enum class State { incomplete, complete, malformed };
    State state = State::incomplete;
    int code = 0;  // the final line's code when complete
};
SmtpReplyScan scan_smtp_reply(std::string_view received);

// The HTTP/1.1 request of an http or https check:
// "METHOD PATH HTTP/1.1\r\nHost: HOST\r\nUser-Agent: castellan-health\r\n"
// "Connection: close\r\nAccept: */*\r\n\r\n". `check.method` and `check.path` were
// validated with the config (a token, a visible-ASCII path).
std::string build_http_check_request(const conf::HealthCheck& check, std::string_view host);

}  // namespace castellan::healthcheck
