#include "healthcheck/response_parsers.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>

using namespace castellan::healthcheck;
using castellan::conf::HealthCheck;
using castellan::conf::StatusRange;

TEST_CASE("parsers: HTTP status lines of every accepted form", "[healthcheck]") {
    CHECK(parse_http_status_line("HTTP/1.0 200 OK") == 200);
    CHECK(parse_http_status_line("HTTP/1.1 401 Unauthorized") == 401);
    CHECK(parse_http_status_line("HTTP/1.1 302") == 302);             // no reason phrase
    CHECK(parse_http_status_line("HTTP/1.1 302 ") == 302);            // empty reason phrase
    CHECK(parse_http_status_line("HTTP/1.1 500 Internal Server Error\r\n") == 500);
    CHECK(parse_http_status_line("HTTP/1.1 204 No Content\n") == 204);
    CHECK(parse_http_status_line("HTTP/1.1 100 Continue") == 100);
    CHECK(parse_http_status_line("HTTP/1.1 599 x") == 599);
}

TEST_CASE("parsers: anything but an HTTP/1.x status line is refused", "[healthcheck]") {
    CHECK_FALSE(parse_http_status_line(""));
    CHECK_FALSE(parse_http_status_line("\r\n"));
    CHECK_FALSE(parse_http_status_line("HTTP/1.1 abc"));
    CHECK_FALSE(parse_http_status_line("HTTP/1.1 20"));        // two digits
    CHECK_FALSE(parse_http_status_line("HTTP/1.1 2000 OK"));   // four digits
    CHECK_FALSE(parse_http_status_line("HTTP/1.1 200OK"));
    CHECK_FALSE(parse_http_status_line("HTTP/1.1 099 Low"));
    CHECK_FALSE(parse_http_status_line("HTTP/1.1 600 High"));
    CHECK_FALSE(parse_http_status_line("HTTP/1.1  200 OK"));   // two spaces
    CHECK_FALSE(parse_http_status_line("HTTP/1.1"));
    CHECK_FALSE(parse_http_status_line("HTTP/11 200 OK"));
    CHECK_FALSE(parse_http_status_line("http/1.1 200 OK"));
    CHECK_FALSE(parse_http_status_line("HTTP/x.1 200 OK"));
    CHECK_FALSE(parse_http_status_line("ICY 200 OK"));
    CHECK_FALSE(parse_http_status_line("220 mail.contoso.com ESMTP"));
    CHECK_FALSE(parse_http_status_line("<html>garbage</html>"));
    CHECK_FALSE(parse_http_status_line(std::string("HTTP/1.1 2\0" "0 OK", 15)));
}

TEST_CASE("parsers: first_line waits for a line end and drops it", "[healthcheck]") {
    CHECK_FALSE(first_line(""));
    CHECK_FALSE(first_line("HTTP/1.1 200 OK"));
    CHECK_FALSE(first_line("HTTP/1.1 200 OK\r"));
    CHECK(first_line("HTTP/1.1 200 OK\r\nServer: x\r\n") == std::optional<std::string_view>("HTTP/1.1 200 OK"));
    CHECK(first_line("HTTP/1.1 200 OK\nServer: x") == std::optional<std::string_view>("HTTP/1.1 200 OK"));
    CHECK(first_line("\r\n") == std::optional<std::string_view>(""));
}

TEST_CASE("parsers: the default expect_status takes what a live Exchange answers", "[healthcheck]") {
    const auto expected = HealthCheck{}.expect_status;  // ["2xx", 301, 302, 401]
    for (int status : {200, 204, 299, 301, 302, 401}) {
        INFO(status);
        CHECK(status_expected(status, expected));
    }
    for (int status : {100, 199, 300, 303, 304, 400, 403, 404, 500, 503}) {
        INFO(status);
        CHECK_FALSE(status_expected(status, expected));
    }
}

TEST_CASE("parsers: expect_status lists are ranges and single codes", "[healthcheck]") {
    const std::vector<StatusRange> only_200{{200, 200}};
    CHECK(status_expected(200, only_200));
    CHECK_FALSE(status_expected(204, only_200));
    const std::vector<StatusRange> classes{{300, 399}, {500, 500}};
    CHECK(status_expected(304, classes));
    CHECK(status_expected(500, classes));
    CHECK_FALSE(status_expected(200, classes));
    CHECK_FALSE(status_expected(200, {}));
}

TEST_CASE("parsers: SMTP reply codes of single and multi-line replies", "[healthcheck]") {
    CHECK(parse_smtp_reply_code("220 mail.contoso.com Microsoft ESMTP MAIL Service ready\r\n") == 220);
    CHECK(parse_smtp_reply_code("220-first\r\n220 last\r\n") == 220);
    CHECK(parse_smtp_reply_code("220-first\r\n220 last") == 220);
    CHECK(parse_smtp_reply_code("554 no service") == 554);
    CHECK(parse_smtp_reply_code("421") == 421);
    CHECK(parse_smtp_reply_code("421\r\n") == 421);
}

TEST_CASE("parsers: bad SMTP replies are refused", "[healthcheck]") {
    CHECK_FALSE(parse_smtp_reply_code(""));
    CHECK_FALSE(parse_smtp_reply_code("\r\n"));
    CHECK_FALSE(parse_smtp_reply_code("22"));
    CHECK_FALSE(parse_smtp_reply_code("2200 ready"));
    CHECK_FALSE(parse_smtp_reply_code("220_ready"));
    CHECK_FALSE(parse_smtp_reply_code("abc ready"));
    CHECK_FALSE(parse_smtp_reply_code("600 too high"));
    CHECK_FALSE(parse_smtp_reply_code("HTTP/1.1 200 OK"));
    CHECK_FALSE(parse_smtp_reply_code("garbage\r\n220 later"));  // only the first line counts
}

TEST_CASE("parsers: an SMTP reply is complete at its final line", "[healthcheck]") {
    using State = SmtpReplyScan::State;
    CHECK(scan_smtp_reply("").state == State::incomplete);
    CHECK(scan_smtp_reply("220 mail ready").state == State::incomplete);  // no line end yet
    CHECK(scan_smtp_reply("220-first\r\n").state == State::incomplete);
    CHECK(scan_smtp_reply("220-first\r\n220 la").state == State::incomplete);

    auto single = scan_smtp_reply("220 mail ready\r\n");
    CHECK(single.state == State::complete);
    CHECK(single.code == 220);

    auto multi = scan_smtp_reply("220-first\r\n220-second\r\n220 last\r\n");
    CHECK(multi.state == State::complete);
    CHECK(multi.code == 220);

    auto bare = scan_smtp_reply("554\n");
    CHECK(bare.state == State::complete);
    CHECK(bare.code == 554);

    auto refused = scan_smtp_reply("554 no service\r\n");
    CHECK(refused.state == State::complete);
    CHECK(refused.code == 554);

    CHECK(scan_smtp_reply("hello\r\n").state == State::malformed);
    CHECK(scan_smtp_reply("220-first\r\nbroken\r\n").state == State::malformed);
    CHECK(scan_smtp_reply("HTTP/1.1 400 Bad Request\r\n").state == State::malformed);
}

TEST_CASE("parsers: the HTTP check request", "[healthcheck]") {
    HealthCheck check;
    CHECK(build_http_check_request(check, "192.168.0.34:80") ==
          "GET / HTTP/1.1\r\n"
          "Host: 192.168.0.34:80\r\n"
          "User-Agent: castellan-health\r\n"
          "Connection: close\r\n"
          "Accept: */*\r\n"
          "\r\n");

    check.method = "HEAD";
    check.path = "/owa/auth/logon.aspx?replaceCurrent=1";
    CHECK(build_http_check_request(check, "mail.contoso.com") ==
          "HEAD /owa/auth/logon.aspx?replaceCurrent=1 HTTP/1.1\r\n"
          "Host: mail.contoso.com\r\n"
          "User-Agent: castellan-health\r\n"
          "Connection: close\r\n"
          "Accept: */*\r\n"
          "\r\n");
}
