#include "healthcheck/response_parsers.hpp"

namespace castellan::healthcheck {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Drops one trailing "\n" and then one trailing "\r", so that a line can be given
// with or without its end.
std::string_view without_line_end(std::string_view line) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

// A three-digit code in 100-599 at the start of `text`, or nothing.
std::optional<int> three_digit_code(std::string_view text) {
    if (text.size() < 3 || !is_digit(text[0]) || !is_digit(text[1]) || !is_digit(text[2])) return std::nullopt;
    const int code = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
    if (code < 100 || code > 599) return std::nullopt;
    return code;
}

// One line of an SMTP reply (no line end): its code and whether more lines follow.
struct SmtpLine {
    int code = 0;
    bool more = false;
};

std::optional<SmtpLine> parse_smtp_line(std::string_view line) {
    auto code = three_digit_code(line);
    if (!code) return std::nullopt;
    if (line.size() == 3) return SmtpLine{*code, false};
    if (line[3] == ' ') return SmtpLine{*code, false};
    if (line[3] == '-') return SmtpLine{*code, true};
    return std::nullopt;
}

}  // namespace

std::optional<std::string_view> first_line(std::string_view received) {
    const auto end = received.find('\n');
    if (end == std::string_view::npos) return std::nullopt;
    return without_line_end(received.substr(0, end + 1));
}

std::optional<int> parse_http_status_line(std::string_view line) {
    line = without_line_end(line);
    // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 section 2.3)
    constexpr std::string_view prefix = "HTTP/";
    if (line.substr(0, prefix.size()) != prefix) return std::nullopt;
    line.remove_prefix(prefix.size());
    if (line.size() < 4 || !is_digit(line[0]) || line[1] != '.' || !is_digit(line[2]) || line[3] != ' ') {
        return std::nullopt;
    }
    line.remove_prefix(4);
    auto code = three_digit_code(line);
    if (!code) return std::nullopt;
    // The code ends the line or is followed by a space and the (possibly empty)
    // reason phrase; "2000" or "200OK" is not a status line.
    if (line.size() > 3 && line[3] != ' ') return std::nullopt;
    return code;
}

bool status_expected(int status, const std::vector<conf::StatusRange>& expected) {
    for (const auto& range : expected) {
        if (range.contains(status)) return true;
    }
    return false;
}

std::optional<int> parse_smtp_reply_code(std::string_view text) {
    if (const auto end = text.find('\n'); end != std::string_view::npos) text = text.substr(0, end + 1);
    auto line = parse_smtp_line(without_line_end(text));
    if (!line) return std::nullopt;
    return line->code;
}

SmtpReplyScan scan_smtp_reply(std::string_view received) {
    while (!received.empty()) {
        const auto end = received.find('\n');
        if (end == std::string_view::npos) break;  // a line still arriving
        auto line = parse_smtp_line(without_line_end(received.substr(0, end + 1)));
        if (!line) return {SmtpReplyScan::State::malformed, 0};
        if (!line->more) return {SmtpReplyScan::State::complete, line->code};
        received.remove_prefix(end + 1);
    }
    return {SmtpReplyScan::State::incomplete, 0};
}

std::string build_http_check_request(const conf::HealthCheck& check, std::string_view host) {
    std::string request;
    request.reserve(check.method.size() + check.path.size() + host.size() + 96);
    request.append(check.method).append(" ").append(check.path).append(" HTTP/1.1\r\n");
    request.append("Host: ").append(host).append("\r\n");
    request.append("User-Agent: castellan-health\r\n");
    // One request per connection: the real server may close after its answer, and
    // the check never reads the body.
    request.append("Connection: close\r\n");
    request.append("Accept: */*\r\n\r\n");
    return request;
}

}  // namespace castellan::healthcheck
