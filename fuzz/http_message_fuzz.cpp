// libFuzzer target for what castellan itself makes of a client's HTTP message
// (scripts/fuzz.sh builds and runs it): the checks and the rewriting of a
// request head (proxy/http_head.cpp, after Beast's parser) and the strict
// chunked decoder (proxy/chunked_decoder.cpp). Besides crashes and
// out-of-bounds reads (ASan, UBSan), it checks their promises; a broken
// property aborts with its name:
//   - a head castellan passes is rewritten into one Beast parses whole, with the
//     same method and target, exactly one Host, and only castellan's framing;
//   - the decoder reads the same body and stops at the same byte however the
//     input is split, consumes every framing byte it is given (holds nothing),
//     and never hands out more data than it was given.
#include "proxy/chunked_decoder.hpp"
#include "proxy/http_head.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

namespace http = castellan::proxy::http;
namespace bhttp = boost::beast::http;

[[noreturn]] void broken(const char* property) {
    std::fprintf(stderr, "http_message_fuzz: broken property: %s\n", property);
    std::abort();
}

void check(bool holds, const char* property) {
    if (!holds) broken(property);
}

// The head as the session reads it: nullopt when Beast refuses it or it is not
// whole.
struct Head {
    http::RequestHead head;
    bool chunked = false;
    std::uint64_t length = 0;
    bool has_length = false;
    std::size_t used = 0;
};

bool parse_head(std::string_view text, Head& out) {
    bhttp::request_parser<bhttp::empty_body> parser;
    parser.eager(false);
    parser.body_limit(boost::none);
    parser.header_limit(64 * 1024);
    boost::system::error_code error;
    try {
        out.used = parser.put(boost::asio::buffer(text.data(), text.size()), error);
    } catch (const std::length_error&) {
        return false;  // the session answers 431
    }
    if (!parser.is_header_done()) return false;
    out.head = parser.get().base();
    out.chunked = parser.chunked();
    if (auto length = parser.content_length()) {
        out.length = *length;
        out.has_length = true;
    }
    return true;
}

void fuzz_head(std::string_view input) {
    Head parsed;
    if (!parse_head(input, parsed)) return;
    if (http::check_request(parsed.head, parsed.chunked)) return;

    http::BodyFraming framing;
    if (parsed.chunked) {
        framing = {http::Framing::chunked, 0};
    } else if (parsed.has_length) {
        framing = {http::Framing::content_length, parsed.length};
    }
    const std::string out = http::forwarded_request(parsed.head, framing, true, "192.0.2.1", false, "cas1:443");
    Head again;
    check(parse_head(out, again), "the forwarded head parses");
    check(again.used == out.size(), "the forwarded head is one head, nothing after it");
    check(again.head.method_string() == parsed.head.method_string(), "the method is kept");
    check(again.head.target() == parsed.head.target(), "the target is kept");
    check(again.head.count(bhttp::field::host) == 1, "exactly one Host");
    check(again.chunked == parsed.chunked, "chunked framing is kept, never made up");
    check(again.has_length == (framing.framing == http::Framing::content_length), "one Content-Length, castellan's");
    if (again.has_length) check(again.length == parsed.length, "the length is kept");
    check(!http::check_request(again.head, again.chunked), "the forwarded head passes castellan's own checks");
}

struct Decoded {
    std::string body;
    std::size_t used = 0;
    bool done = false;
    bool failed = false;
};

// Decodes `input` handed over in two pieces, cut at `cut`.
Decoded decode_split(std::string_view input, std::size_t cut) {
    http::ChunkedDecoder decoder(64, 256);  // small limits, so that the fuzzer reaches them
    Decoded out;
    std::string pending;
    std::size_t fed = 0;
    for (int round = 0; round < 100000 && !decoder.done() && !decoder.failed(); ++round) {
        if (pending.empty()) {
            if (fed == input.size()) break;
            const std::size_t end = fed < cut ? cut : input.size();
            pending.assign(input.substr(fed, end - fed));
            fed = end;
        }
        const auto piece = decoder.next(pending);
        check(piece.data.size() <= piece.used, "data is part of what was used");
        check(piece.used == pending.size() || !piece.data.empty() || decoder.done() || decoder.failed(),
              "every framing byte given is consumed");
        out.body.append(piece.data);
        out.used += piece.used;
        pending.erase(0, piece.used);
    }
    out.done = decoder.done();
    out.failed = decoder.failed();
    return out;
}

void fuzz_chunked(std::string_view input, std::size_t cut) {
    const Decoded whole = decode_split(input, input.size());
    const Decoded split = decode_split(input, cut % (input.size() + 1));
    check(whole.done == split.done && whole.failed == split.failed, "the same end however the input is split");
    check(whole.body == split.body, "the same body however the input is split");
    if (whole.done) {
        check(whole.used == split.used, "the body ends at the same byte however the input is split");
        check(whole.body.size() <= whole.used, "no more data than input");
        // What castellan sends on, one chunk, decodes to the same body.
        char size_line[32];
        const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", whole.body.size());
        std::string coded(size_line, static_cast<std::size_t>(n));
        coded += whole.body;
        coded += whole.body.empty() ? "\r\n" : "\r\n0\r\n\r\n";
        const Decoded recoded = decode_split(coded, coded.size() / 2);
        check(recoded.done && recoded.body == whole.body, "castellan's own coding decodes to the same body");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    // The first byte picks the part under test and where the input is cut.
    const std::uint8_t selector = data[0];
    const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
    if (selector & 1) {
        fuzz_chunked(input, selector >> 1);
    } else {
        fuzz_head(input);
    }
    return 0;
}
