#include "conf/address.hpp"

#include <catch2/catch.hpp>

#include <string>

using castellan::conf::HostPort;
using castellan::conf::Ipv6Bytes;
using castellan::conf::is_valid_hostname;
using castellan::conf::listens_overlap;
using castellan::conf::parse_host_port;
using castellan::conf::parse_ipv4;
using castellan::conf::parse_ipv6;

namespace {

HostPort address(const std::string& text) {
    auto parsed = parse_host_port(text, true);
    REQUIRE(parsed);
    return *parsed;
}

std::string problem_of(const std::string& text, bool allow_hostname) {
    std::string problem = "not set";
    CHECK_FALSE(parse_host_port(text, allow_hostname, &problem));
    return problem;
}

}  // namespace

TEST_CASE("address: IPv4 literals", "[conf]") {
    for (const char* good : {"0.0.0.0", "127.0.0.1", "255.255.255.255", "192.168.0.34"}) {
        INFO(good);
        CHECK(parse_ipv4(good));
    }
    CHECK(*parse_ipv4("192.168.0.34") == castellan::conf::Ipv4Bytes{192, 168, 0, 34});
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4.", ".1.2.3", "01.2.3.4", "1..2.3",
                            "1.2.3.a", "1234.1.1.1", " 1.2.3.4"}) {
        INFO(bad);
        CHECK_FALSE(parse_ipv4(bad));
    }
}

TEST_CASE("address: IPv6 literals", "[conf]") {
    for (const char* good : {"::", "::1", "fe80::1", "2001:db8::8:800:200c:417a", "1:2:3:4:5:6:7:8", "1::",
                             "::ffff:192.0.2.1", "64:ff9b::192.0.2.33", "FE80::ABCD", "1:2:3:4:5:6::8"}) {
        INFO(good);
        CHECK(parse_ipv6(good));
    }
    for (const char* bad : {"", ":", ":::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::",
                            ":1::", "1:", "1:2:3:4:5:6:7:8::", "g::1", "::1.2.3", "1.2.3.4", "fe80::1%eth0",
                            "::1.2.3.4:5", "1:2:3:4:5:6:7::8"}) {
        INFO(bad);
        CHECK_FALSE(parse_ipv6(bad));
    }
    Ipv6Bytes loopback{};
    loopback[15] = 1;
    CHECK(*parse_ipv6("::1") == loopback);
    CHECK(*parse_ipv6("0:0:0:0:0:0:0:1") == loopback);
    const auto mapped = *parse_ipv6("::ffff:192.0.2.1");
    CHECK(mapped[10] == 0xff);
    CHECK(mapped[11] == 0xff);
    CHECK(mapped[12] == 192);
    CHECK(mapped[15] == 1);
}

TEST_CASE("address: RFC 1123 hostnames", "[conf]") {
    for (const char* good : {"cas1", "mail.contoso.com", "mail.contoso.com.", "a-b.c", "1cas", "x",
                             "3com.example", "xn--bcher-kva.example"}) {
        INFO(good);
        CHECK(is_valid_hostname(good));
    }
    const std::string label63(63, 'a');
    CHECK(is_valid_hostname(label63 + ".example"));
    CHECK_FALSE(is_valid_hostname(std::string(64, 'a') + ".example"));
    std::string long_name;
    while (long_name.size() < 250) long_name += "abcdefghi.";
    CHECK_FALSE(is_valid_hostname(long_name + "example"));
    for (const char* bad : {"", ".", "-cas", "cas-", "ca_s", "a..b", ".a", "a b", "1.2.3.256", "123", "cas:1",
                            "münchen.example"}) {
        INFO(bad);
        CHECK_FALSE(is_valid_hostname(bad));
    }
}

TEST_CASE("address: HOST:PORT forms and their kinds", "[conf]") {
    const HostPort v4 = address("192.168.0.34:135");
    CHECK(v4.host == "192.168.0.34");
    CHECK(v4.port == 135);
    CHECK(v4.kind == HostPort::Kind::ipv4);

    const HostPort v6 = address("[2001:db8::1]:443");
    CHECK(v6.host == "2001:db8::1");
    CHECK(v6.port == 443);
    CHECK(v6.kind == HostPort::Kind::ipv6);

    const HostPort name = address("cas1.contoso.local:65535");
    CHECK(name.host == "cas1.contoso.local");
    CHECK(name.port == 65535);
    CHECK(name.kind == HostPort::Kind::hostname);

    CHECK_FALSE(parse_host_port("cas1:80", false));
    CHECK(parse_host_port("10.0.0.1:80", false));
}

TEST_CASE("address: why a HOST:PORT is refused", "[conf]") {
    CHECK(problem_of("cas1", true).empty());
    CHECK(problem_of("", true).empty());
    CHECK(problem_of(":80", true).empty());
    CHECK(problem_of("cas1:0", true) == "port must be 1 to 65535");
    CHECK(problem_of("cas1:65536", true) == "port must be 1 to 65535");
    CHECK(problem_of("cas1:", true) == "port must be 1 to 65535");
    CHECK(problem_of("cas1:+80", true) == "port must be 1 to 65535");
    CHECK(problem_of("cas1:80a", true) == "port must be 1 to 65535");
    CHECK(problem_of("::1:80", true) == "an IPv6 address needs brackets, as in [::1]:443");
    CHECK(problem_of("[::1:80", true) == "missing ] after the IPv6 address");
    CHECK(problem_of("[::1]80", true) == "missing :PORT after ]");
    CHECK(problem_of("[::1]", true) == "missing :PORT after ]");
    CHECK(problem_of("[cas1]:80", true) == "not a valid IPv6 address");
    CHECK(problem_of("[1.2.3.4]:80", true) == "not a valid IPv6 address");
    CHECK(problem_of("1.2.3.256:80", true) == "not a valid IPv4 address");
    CHECK(problem_of("1.2.3:80", false) == "not a valid IPv4 address");
    CHECK(problem_of("cas1:80", false) == "an IP address is needed here, not a hostname");
    CHECK(problem_of("bad_name:80", true) == "not a valid hostname (letters, digits, hyphens and dots)");
}

TEST_CASE("address: to_string brackets IPv6 hosts", "[conf]") {
    CHECK(address("192.168.0.34:135").to_string() == "192.168.0.34:135");
    CHECK(address("[::]:443").to_string() == "[::]:443");
    CHECK(address("[fe80::1]:8080").to_string() == "[fe80::1]:8080");
    CHECK(address("cas1:25").to_string() == "cas1:25");
    CHECK(HostPort{"::1", 80, HostPort::Kind::ipv6}.to_string() == "[::1]:80");
}

TEST_CASE("address: wildcards of each family", "[conf]") {
    CHECK(address("0.0.0.0:80").is_wildcard());
    CHECK(address("[::]:80").is_wildcard());
    CHECK(address("[0:0:0:0:0:0:0:0]:80").is_wildcard());
    CHECK_FALSE(address("127.0.0.1:80").is_wildcard());
    CHECK_FALSE(address("[::1]:80").is_wildcard());
    CHECK_FALSE(address("zero:80").is_wildcard());
}

TEST_CASE("address: listens overlap on the same port of one family", "[conf]") {
    struct Row {
        const char* a;
        const char* b;
        bool overlap;
    };
    const Row rows[] = {
        {"10.0.0.1:443", "10.0.0.1:443", true},
        {"0.0.0.0:443", "10.0.0.1:443", true},
        {"10.0.0.1:443", "0.0.0.0:443", true},
        {"0.0.0.0:443", "0.0.0.0:443", true},
        {"10.0.0.1:443", "10.0.0.2:443", false},
        {"10.0.0.1:443", "10.0.0.1:444", false},
        {"0.0.0.0:443", "0.0.0.0:80", false},
        {"0.0.0.0:443", "[::]:443", false},  // [::] is bound IPv6-only
        {"[::]:443", "0.0.0.0:443", false},
        {"[::]:443", "[::1]:443", true},
        {"[::1]:443", "[0::1]:443", true},  // one address, two spellings
        {"[::1]:443", "[::2]:443", false},
        {"127.0.0.1:443", "[::1]:443", false},
    };
    for (const auto& row : rows) {
        INFO(row.a << " vs " << row.b);
        CHECK(listens_overlap(address(row.a), address(row.b)) == row.overlap);
    }
}
