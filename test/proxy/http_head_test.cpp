#include "proxy/http_head.hpp"

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/empty_body.hpp>

#include <catch2/catch.hpp>

#include <initializer_list>
#include <string>

namespace http = castellan::proxy::http;
namespace bhttp = boost::beast::http;

namespace {

// Parses a request head as the session does; `chunked` says what the parser saw.
struct Parsed {
    http::RequestHead head;
    bool chunked = false;
    boost::system::error_code error;
};

Parsed parse(const std::string& text) {
    bhttp::request_parser<bhttp::empty_body> parser;
    parser.eager(false);
    parser.body_limit(boost::none);  // as the session: Outlook Anywhere announces 1 GiB
    Parsed parsed;
    parser.put(boost::asio::buffer(text), parsed.error);
    if (!parsed.error || parsed.error == bhttp::error::need_more || parsed.error == bhttp::error::unexpected_body) {
        parsed.head = parser.get().base();
        parsed.chunked = parser.chunked();
        if (parser.is_header_done()) parsed.error = {};
    }
    return parsed;
}

std::optional<unsigned> refusal_of(const std::string& text) {
    const Parsed parsed = parse(text);
    REQUIRE_FALSE(parsed.error);
    auto refusal = http::check_request(parsed.head, parsed.chunked);
    if (!refusal) return std::nullopt;
    return static_cast<unsigned>(refusal->status);
}

}  // namespace

TEST_CASE("http head: ordinary requests pass", "[http]") {
    CHECK_FALSE(refusal_of("GET /owa/ HTTP/1.1\r\nHost: mail.contoso.com\r\n\r\n"));
    CHECK_FALSE(refusal_of("GET / HTTP/1.0\r\n\r\n"));
    CHECK_FALSE(refusal_of("RPC_IN_DATA /rpc/rpcproxy.dll?cas1:6001 HTTP/1.1\r\nHost: mail.contoso.com\r\n"
                           "Content-Length: 1073741824\r\n\r\n"));
    CHECK_FALSE(refusal_of("POST /ews/exchange.asmx HTTP/1.1\r\nHost: mail:443\r\nTransfer-Encoding: chunked\r\n\r\n"));
    CHECK_FALSE(refusal_of("OPTIONS * HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"));
    CHECK_FALSE(refusal_of("GET http://mail.contoso.com/owa HTTP/1.1\r\nHost: mail.contoso.com\r\n\r\n"));
    CHECK_FALSE(refusal_of("PROPFIND /exchange/ HTTP/1.1\r\nHost: 192.168.0.30\r\n\r\n"));
}

TEST_CASE("http head: Host must be there once and valid in HTTP/1.1", "[http]") {
    CHECK(refusal_of("GET / HTTP/1.1\r\n\r\n") == 400u);
    CHECK(refusal_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400u);
    CHECK(refusal_of("GET / HTTP/1.1\r\nHost: a b\r\n\r\n") == 400u);
    CHECK(refusal_of("GET / HTTP/1.1\r\nHost: a:x\r\n\r\n") == 400u);
    CHECK(refusal_of("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n") == 400u);
    CHECK(refusal_of("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n") == 400u);
}

TEST_CASE("http head: only a lone chunked transfer coding passes", "[http]") {
    CHECK(refusal_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 400u);
    CHECK(refusal_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") == 400u);
    CHECK(refusal_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n") == 400u);
    CHECK(refusal_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n") == 400u);
    CHECK(refusal_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") == 400u);
    CHECK_FALSE(refusal_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"));
}

TEST_CASE("http head: the parser itself refuses conflicting framing", "[http]") {
    CHECK(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n").error);
    CHECK(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n").error);
    CHECK(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").error);
    CHECK(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n").error);
    CHECK(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n").error);
}

TEST_CASE("http head: targets that do not fit their method are refused, CONNECT too", "[http]") {
    CHECK(refusal_of("GET * HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK(refusal_of("GET owa HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK(refusal_of("GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK(refusal_of("CONNECT mail.contoso.com:443 HTTP/1.1\r\nHost: mail.contoso.com:443\r\n\r\n") == 405u);
}

TEST_CASE("http head: fragments, broken escapes, userinfo and empty hosts in targets are refused", "[http]") {
    CHECK(refusal_of("GET /owa#x HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK(refusal_of("GET /owa%zz HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK(refusal_of("GET /owa%2 HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK(refusal_of("GET /owa% HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK_FALSE(refusal_of("GET /owa%2Fx?y=%41 HTTP/1.1\r\nHost: a\r\n\r\n"));
    CHECK(refusal_of("GET http://user:pw@a/ HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK(refusal_of("GET http:///owa HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK(refusal_of("GET http://?x HTTP/1.1\r\nHost: a\r\n\r\n") == 400u);
    CHECK_FALSE(refusal_of("GET http://a:8080?x HTTP/1.1\r\nHost: a:8080\r\n\r\n"));
    CHECK_FALSE(refusal_of("GET https://[::1]:443/owa HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"));
}

TEST_CASE("http head: fields that read as framing once '_' is '-' are not passed on", "[http]") {
    const Parsed parsed = parse(
        "POST /x HTTP/1.1\r\nHost: m\r\nTransfer_Encoding: chunked\r\nContent_Length: 5\r\n"
        "X_Forwarded_For: 6.6.6.6\r\nhost_: y\r\nX_Custom: kept\r\nContent-Length: 3\r\n\r\n");
    REQUIRE_FALSE(parsed.error);
    REQUIRE_FALSE(http::check_request(parsed.head, parsed.chunked));
    const std::string out =
        http::forwarded_request(parsed.head, {http::Framing::content_length, 3}, true, "1.1.1.1", false, "x");
    CHECK(out.find("Transfer_Encoding") == std::string::npos);
    CHECK(out.find("Content_Length") == std::string::npos);
    CHECK(out.find("X_Forwarded_For") == std::string::npos);
    CHECK(out.find("6.6.6.6") == std::string::npos);
    CHECK(out.find("X_Custom: kept\r\n") != std::string::npos);
    CHECK(out.find("host_: y\r\n") != std::string::npos);  // not a lookalike: "host-"
}

TEST_CASE("http head: the forwarded request is written anew", "[http]") {
    const Parsed parsed = parse(
        "GET /owa/?a=1 HTTP/1.0\r\nHost: mail\r\nConnection: keep-alive, X-Private\r\nKeep-Alive: 300\r\n"
        "X-Private: secret\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nX-Forwarded-Proto: ftp\r\n"
        "TE: trailers\r\nProxy-Connection: keep-alive\r\nCookie: a=b\r\n\r\n");
    REQUIRE_FALSE(parsed.error);
    const std::string out = http::forwarded_request(parsed.head, {}, true, "192.168.1.57", true, "cas1:443");
    CHECK(out.rfind("GET /owa/?a=1 HTTP/1.1\r\n", 0) == 0);
    CHECK(out.find("Host: mail\r\n") != std::string::npos);
    CHECK(out.find("Cookie: a=b\r\n") != std::string::npos);
    CHECK(out.find("X-Forwarded-For: 10.0.0.1, 10.0.0.2, 192.168.1.57\r\n") != std::string::npos);
    CHECK(out.find("X-Forwarded-Proto: https\r\n") != std::string::npos);
    CHECK(out.find("ftp") == std::string::npos);
    for (const char* gone : {"Connection", "Keep-Alive", "X-Private", "TE:", "Proxy-Connection", "Content-Length"}) {
        CHECK(out.find(gone) == std::string::npos);
    }
    CHECK(out.size() > 4);
    CHECK(out.substr(out.size() - 4) == "\r\n\r\n");
}

TEST_CASE("http head: framing is castellan's own, and X-Forwarded-* left alone when off", "[http]") {
    const Parsed parsed =
        parse("POST /rpc HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n");
    REQUIRE_FALSE(parsed.error);
    const std::string chunked = http::forwarded_request(parsed.head, {http::Framing::chunked, 0}, false, "5.6.7.8", false, "cas1:443");
    CHECK(chunked.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    CHECK(chunked.find("X-Forwarded-For: 1.2.3.4\r\n") != std::string::npos);
    CHECK(chunked.find("5.6.7.8") == std::string::npos);
    CHECK(chunked.find("X-Forwarded-Proto") == std::string::npos);
    const std::string sized =
        http::forwarded_request(parsed.head, {http::Framing::content_length, 1073741824}, false, "5.6.7.8", false, "x");
    CHECK(sized.find("Content-Length: 1073741824\r\n") != std::string::npos);
    CHECK(sized.find("Transfer-Encoding") == std::string::npos);
}

TEST_CASE("http head: an upgrade request keeps its Connection and Upgrade", "[http]") {
    const Parsed parsed =
        parse("GET /ws HTTP/1.1\r\nHost: m\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
    REQUIRE_FALSE(parsed.error);
    const std::string out = http::forwarded_request(parsed.head, {}, true, "1.1.1.1", false, "x");
    CHECK(out.find("Connection: upgrade\r\nUpgrade: websocket\r\n") != std::string::npos);
}

TEST_CASE("http head: responses lose hop-by-hop fields and say how the connection goes on", "[http]") {
    http::ResponseHead head;
    head.result(bhttp::status::ok);
    head.version(11);
    head.set(bhttp::field::connection, "X-Hop");
    head.insert("X-Hop", "1");
    head.set(bhttp::field::keep_alive, "timeout=5");
    head.set(bhttp::field::content_type, "text/html");
    head.set(bhttp::field::transfer_encoding, "chunked");
    const std::string kept = http::forwarded_response(head, {http::Framing::chunked, 0}, true, 11);
    CHECK(kept.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(kept.find("Content-Type: text/html\r\n") != std::string::npos);
    CHECK(kept.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
    CHECK(kept.find("X-Hop") == std::string::npos);
    CHECK(kept.find("Keep-Alive") == std::string::npos);
    CHECK(kept.find("Connection") == std::string::npos);
    const std::string closing = http::forwarded_response(head, {http::Framing::content_length, 10}, false, 11);
    CHECK(closing.find("Connection: close\r\n") != std::string::npos);
    CHECK(closing.find("Content-Length: 10\r\n") != std::string::npos);
    const std::string old_client = http::forwarded_response(head, {http::Framing::content_length, 10}, true, 10);
    CHECK(old_client.find("Connection: keep-alive\r\n") != std::string::npos);
}

TEST_CASE("http head: castellan's own error responses close the connection", "[http]") {
    const std::string out = http::error_response(bhttp::status::service_unavailable);
    CHECK(out.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
    CHECK(out.find("Connection: close\r\n") != std::string::npos);
    CHECK(out.find("Content-Length: 24\r\n") != std::string::npos);
    CHECK(out.substr(out.size() - 24) == "503 Service Unavailable\n");
}

TEST_CASE("http head: an HTTP/1.0 request without Host gets the server's", "[http]") {
    const Parsed parsed = parse("GET /old HTTP/1.0\r\n\r\n");
    REQUIRE_FALSE(parsed.error);
    const std::string out = http::forwarded_request(parsed.head, {}, false, "1.1.1.1", false, "192.168.0.34:80");
    CHECK(out == "GET /old HTTP/1.1\r\nHost: 192.168.0.34:80\r\n\r\n");
}

TEST_CASE("http head: the logged path has no query string", "[http]") {
    CHECK(http::path_of("/owa/auth.owa?user=x&pw=y") == "/owa/auth.owa");
    CHECK(http::path_of("/rpc/rpcproxy.dll") == "/rpc/rpcproxy.dll");
    CHECK(http::path_of("*") == "*");
}

TEST_CASE("http head: Outlook Anywhere channels and Expect: 100-continue are told apart", "[http]") {
    const auto in_channel =
        parse("RPC_IN_DATA /rpc/rpcproxy.dll?mail:6001 HTTP/1.1\r\nHost: a\r\nContent-Length: 1073741824\r\n"
              "Expect: 100-Continue \r\n\r\n");
    REQUIRE_FALSE(in_channel.error);
    CHECK(http::is_rpc_channel(in_channel.head));
    CHECK(http::expects_continue(in_channel.head));  // case and surrounding spaces do not matter
    const auto out_channel = parse("RPC_OUT_DATA /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\nContent-Length: 76\r\n\r\n");
    CHECK(http::is_rpc_channel(out_channel.head));
    CHECK_FALSE(http::expects_continue(out_channel.head));
    const auto post = parse("POST /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 200-ok\r\n\r\n");
    CHECK_FALSE(http::is_rpc_channel(post.head));
    CHECK_FALSE(http::expects_continue(post.head));
}

TEST_CASE("http head: a 401 offering NTLM or Negotiate binds the connection, others do not", "[http]") {
    const auto with_challenges = [](unsigned status, std::initializer_list<const char*> challenges) {
        http::ResponseHead head;
        head.result(status);
        for (const char* challenge : challenges) head.insert(bhttp::field::www_authenticate, challenge);
        return http::offers_connection_auth(head);
    };
    CHECK(with_challenges(401, {"NTLM"}));
    CHECK(with_challenges(401, {"Negotiate"}));
    CHECK(with_challenges(401, {"ntlm TlRMTVNTUAACAAAA"}));  // the challenge leg: scheme, then a token
    CHECK(with_challenges(401, {"Basic realm=\"mail\"", "Negotiate"}));
    CHECK(with_challenges(401, {"Basic realm=\"mail\", NTLM"}));  // two challenges in one field
    CHECK_FALSE(with_challenges(401, {"Basic realm=\"mail\""}));
    CHECK_FALSE(with_challenges(401, {"Basic realm=NTLM"}));  // an auth-param's value is no scheme
    CHECK_FALSE(with_challenges(401, {}));
    CHECK_FALSE(with_challenges(200, {"NTLM"}));  // only a 401 is a challenge
    CHECK_FALSE(with_challenges(407, {"NTLM"}));  // a proxy's own: not the CAS's connection
}
