// A strict decoder of HTTP/1.1's chunked transfer coding (RFC 9112 7.1), byte
// by byte over whatever has arrived: castellan's own, not Beast's, because a
// proxy's chunk parser is where request smuggling lives. It accepts only the
// RFC's grammar (no bare CR or LF, no whitespace around a chunk size except
// before an extension, no obs-fold in trailers), bounds every line it does not
// pass on, and never holds input: what it has read is consumed, so a sender
// cannot make castellan buffer without limit. Pure code, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace castellan::proxy::http {

class ChunkedDecoder {
public:
    // What one call made of its input.
    struct Piece {
        std::size_t used = 0;   // bytes of the input consumed (including `data`)
        std::string_view data;  // chunk data to pass on: a prefix of the unconsumed input
    };

    // `line_limit`: the most bytes of one chunk-size line with its extensions;
    // `trailer_limit`: the most bytes of the whole trailer section (RFC 9112
    // 7.1.1 asks a recipient to limit extensions; trailers are read and
    // discarded, as 7.1.2 allows a recipient that removes the coding).
    explicit ChunkedDecoder(std::size_t line_limit = 4096, std::size_t trailer_limit = 16 * 1024)
        : line_limit_(line_limit), trailer_limit_(trailer_limit) {}

    // Consumes framing bytes from the front of `input` until it reaches chunk
    // data (returned in `data`, at most what is left of that chunk), the end of
    // the body, a framing error, or the end of the input.
    Piece next(std::string_view input);

    bool done() const { return state_ == State::done; }
    bool failed() const { return state_ == State::failed; }
    // For the log and the tests: why the framing was refused.
    const char* error() const { return error_; }

private:
    enum class State {
        size,            // chunk-size digits
        size_space,      // whitespace after the size: only before ';'
        ext_before_name, // after ';', optional whitespace
        ext_name,
        ext_after_name,  // whitespace, '=', ';' or CR
        ext_before_value,
        ext_token_value,
        ext_quoted_value,
        ext_quoted_pair,
        ext_after_value, // whitespace, ';' or CR
        line_lf,         // CR seen at the end of a size line
        data,
        data_cr,
        data_lf,
        trailer_line_start,
        trailer_name,
        trailer_value,
        trailer_lf,      // CR seen at the end of a trailer field line
        end_lf,          // CR seen at the start of a line: the end of the trailers
        done,
        failed,
    };

    bool fail(const char* why);
    // One framing byte; false when it broke the framing.
    bool take(char c);

    std::size_t line_limit_;
    std::size_t trailer_limit_;
    State state_ = State::size;
    std::uint64_t size_ = 0;     // of the chunk being read
    std::size_t digits_ = 0;     // of its size
    std::size_t line_bytes_ = 0; // of the current size line
    std::size_t trailer_bytes_ = 0;
    std::uint64_t data_left_ = 0;
    const char* error_ = nullptr;
};

}  // namespace castellan::proxy::http
