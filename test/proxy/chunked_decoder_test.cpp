#include "proxy/chunked_decoder.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>

namespace http = castellan::proxy::http;
using namespace std::literals;

namespace {

// What decoding `input` in pieces of `step` bytes gives: the body, and whether
// the framing ended well, failed, or wants more.
struct Decoded {
    std::string body;
    bool done = false;
    bool failed = false;
    std::size_t left = 0;  // input after the end of the body
};

Decoded decode(std::string_view input, std::size_t step = 1 << 20, http::ChunkedDecoder decoder = http::ChunkedDecoder()) {
    Decoded out;
    std::string pending;
    std::size_t fed = 0;
    while (!decoder.done() && !decoder.failed()) {
        if (fed < input.size()) {
            const std::size_t more = std::min(step, input.size() - fed);
            pending.append(input.substr(fed, more));
            fed += more;
        }
        const auto piece = decoder.next(pending);
        out.body.append(piece.data);
        pending.erase(0, piece.used);
        if (piece.used == 0 && fed == input.size()) break;
    }
    out.done = decoder.done();
    out.failed = decoder.failed();
    out.left = pending.size() + (input.size() - fed);
    return out;
}

bool refused(std::string_view input) { return decode(input).failed; }

}  // namespace

TEST_CASE("chunked: bodies decode whole and in single bytes", "[chunked]") {
    const std::string_view wire = "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\nGET /next";
    for (std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
        const Decoded d = decode(wire, step);
        CHECK(d.done);
        CHECK(d.body == "hello, world");
        CHECK(d.left == std::string_view("GET /next").size());  // the next request is not touched
    }
    CHECK(decode("0\r\n\r\n").done);
    CHECK(decode("000\r\n\r\n").done);
    CHECK(decode("A\r\n0123456789\r\n0\r\n\r\n").body == "0123456789");
    CHECK(decode("a\r\n0123456789\r\n0\r\n\r\n").done);
}

TEST_CASE("chunked: extensions of the RFC's grammar pass, and are not data", "[chunked]") {
    CHECK(decode("5;ext\r\nhello\r\n0\r\n\r\n").body == "hello");
    CHECK(decode("5;a=b;c=\"quoted; \\\"x\\\"\"\r\nhello\r\n0;last\r\n\r\n").body == "hello");
    CHECK(decode("5 ;a = b\r\nhello\r\n0\r\n\r\n").body == "hello");
    CHECK(decode("5\t; a\r\nhello\r\n0\r\n\r\n").done);
}

TEST_CASE("chunked: trailers are read, checked and dropped", "[chunked]") {
    const Decoded d = decode("5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other:\r\n\r\nNEXT");
    CHECK(d.done);
    CHECK(d.body == "hello");
    CHECK(d.left == 4);
    CHECK(refused("0\r\n X-Folded: a\r\n\r\n"));
    CHECK(refused("0\r\nX-A : b\r\n\r\n"));
    CHECK(refused("0\r\nX-A: b\nX-B: c\r\n\r\n"));
    CHECK(refused("0\r\nX-A: b\r\n\n"));
    CHECK(refused("0\r\nX-A: b\0c\r\n\r\n"sv));  // a NUL in a value
}

TEST_CASE("chunked: size lines outside the grammar are refused", "[chunked]") {
    CHECK(refused("\r\nhello\r\n0\r\n\r\n"));         // no size
    CHECK(refused("5 \r\nhello\r\n0\r\n\r\n"));        // whitespace without an extension
    CHECK(refused(" 5\r\nhello\r\n0\r\n\r\n"));        // leading whitespace
    CHECK(refused("+5\r\nhello\r\n0\r\n\r\n"));
    CHECK(refused("0x5\r\nhello\r\n0\r\n\r\n"));
    CHECK(refused("5\nhello\r\n0\r\n\r\n"));           // bare LF
    CHECK(refused("5\rhello\r\n0\r\n\r\n"));           // bare CR
    CHECK(refused("5;\r\nhello\r\n0\r\n\r\n"));        // ';' without a name
    CHECK(refused("5;a=\r\nhello\r\n0\r\n\r\n"));      // '=' without a value
    CHECK(refused("5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n"));  // LF inside a quoted value
    CHECK(refused("5;a=\"b\r\nhello\r\n0\r\n\r\n"));   // a quote that does not end on its line
    CHECK(refused("5;a b\r\nhello\r\n0\r\n\r\n"));
    CHECK(refused("11111111111111111\r\n"));           // 2^64 and more
    CHECK(refused("FFFFFFFFFFFFFFFFF\r\n"));
}

TEST_CASE("chunked: data must end exactly where its size says", "[chunked]") {
    CHECK(refused("3\r\nhello\r\n0\r\n\r\n"));
    CHECK(refused("5\r\nhello\n0\r\n\r\n"));
    CHECK(refused("5\r\nhello\r0\r\n\r\n"));
    CHECK(refused("5\r\nhelloX\r\n0\r\n\r\n"));
}

TEST_CASE("chunked: lines and trailers are bounded, and nothing is held", "[chunked]") {
    // An endless chunk line or run of zeros fails at the limit, however it is fed.
    const std::string endless_extension = "5;" + std::string(5000, 'a');
    CHECK(decode(endless_extension, 100).failed);
    CHECK(decode(std::string(5000, '0'), 7).failed);
    CHECK(decode("5;" + std::string(100, 'e') + "\r\nhello\r\n0\r\n\r\n").done);
    const std::string long_trailer = "0\r\nX-T: " + std::string(20000, 't') + "\r\n\r\n";
    CHECK(decode(long_trailer, 512).failed);
    http::ChunkedDecoder roomy(4096, 64 * 1024);
    CHECK(decode(long_trailer, 512, roomy).done);

    // Every framing byte is consumed as it comes: the caller never has to keep
    // more than one read.
    http::ChunkedDecoder decoder;
    const auto piece = decoder.next("5;abc");
    CHECK(piece.used == 5);
    CHECK(piece.data.empty());
    CHECK_FALSE(decoder.failed());
    CHECK_FALSE(decoder.done());
}

TEST_CASE("chunked: data comes out a chunk at a time, never past its chunk", "[chunked]") {
    http::ChunkedDecoder decoder;
    const std::string_view wire = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    auto piece = decoder.next(wire);
    CHECK(piece.data == "abc");
    CHECK(piece.used == 6);
    piece = decoder.next(wire.substr(6));
    CHECK(piece.data == "de");
    piece = decoder.next(wire.substr(6 + piece.used));
    CHECK(piece.data.empty());
    CHECK(decoder.done());
    CHECK(std::string_view(decoder.error() ? decoder.error() : "") == "");
}
