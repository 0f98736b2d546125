#include "proxy/chunked_decoder.hpp"

#include <algorithm>
#include <limits>

namespace castellan::proxy::http {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }

// RFC 9110 5.6.2 tchar.
bool is_tchar(char c) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return true;
    switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~':
            return true;
        default:
            return false;
    }
}

// VCHAR or obs-text.
bool is_visible(char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x21 && u <= 0x7e) || u >= 0x80;
}

// RFC 9110 5.6.4 qdtext.
bool is_qdtext(char c) { return is_space(c) || (is_visible(c) && c != '"' && c != '\\'); }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

ChunkedDecoder::Piece ChunkedDecoder::next(std::string_view input) {
    Piece piece;
    while (piece.used < input.size() && state_ != State::done && state_ != State::failed) {
        if (state_ == State::data) {
            const auto size = static_cast<std::size_t>(
                std::min<std::uint64_t>(data_left_, input.size() - piece.used));
            piece.data = input.substr(piece.used, size);
            piece.used += size;
            data_left_ -= size;
            if (data_left_ == 0) state_ = State::data_cr;
            return piece;
        }
        if (!take(input[piece.used++])) break;
    }
    return piece;
}

bool ChunkedDecoder::fail(const char* why) {
    state_ = State::failed;
    error_ = why;
    return false;
}

bool ChunkedDecoder::take(char c) {
    const bool in_size_line = state_ <= State::line_lf;
    if (in_size_line && ++line_bytes_ > line_limit_) return fail("chunk line too long");
    const bool in_trailers = state_ >= State::trailer_line_start && state_ <= State::end_lf;
    if (in_trailers && ++trailer_bytes_ > trailer_limit_) return fail("trailers too long");

    switch (state_) {
        case State::size: {
            const int digit = hex_value(c);
            if (digit >= 0) {
                if (size_ > (std::numeric_limits<std::uint64_t>::max() >> 4)) return fail("chunk size too large");
                size_ = size_ * 16 + static_cast<std::uint64_t>(digit);
                ++digits_;
                return true;
            }
            if (digits_ == 0) return fail("no chunk size");
            if (c == ';') state_ = State::ext_before_name;
            else if (is_space(c)) state_ = State::size_space;
            else if (c == '\r') state_ = State::line_lf;
            else return fail("bad chunk size");
            return true;
        }
        case State::size_space:
            // BWS is allowed only before an extension: "5 \r\n" is not a chunk line.
            if (c == ';') state_ = State::ext_before_name;
            else if (!is_space(c)) return fail("whitespace after chunk size");
            return true;
        case State::ext_before_name:
            if (is_tchar(c)) state_ = State::ext_name;
            else if (!is_space(c)) return fail("bad chunk extension");
            return true;
        case State::ext_name:
        case State::ext_token_value:
            if (is_tchar(c)) return true;
            if (is_space(c)) state_ = state_ == State::ext_name ? State::ext_after_name : State::ext_after_value;
            else if (c == '=' && state_ == State::ext_name) state_ = State::ext_before_value;
            else if (c == ';') state_ = State::ext_before_name;
            else if (c == '\r') state_ = State::line_lf;
            else return fail("bad chunk extension");
            return true;
        case State::ext_after_name:
            if (c == '=') state_ = State::ext_before_value;
            else if (c == ';') state_ = State::ext_before_name;
            else if (c == '\r') state_ = State::line_lf;
            else if (!is_space(c)) return fail("bad chunk extension");
            return true;
        case State::ext_before_value:
            if (c == '"') state_ = State::ext_quoted_value;
            else if (is_tchar(c)) state_ = State::ext_token_value;
            else if (!is_space(c)) return fail("bad chunk extension");
            return true;
        case State::ext_quoted_value:
            // A quoted string ends on its line: a CR or LF inside is an error,
            // never a line end the server might see and castellan not.
            if (c == '"') state_ = State::ext_after_value;
            else if (c == '\\') state_ = State::ext_quoted_pair;
            else if (!is_qdtext(c)) return fail("bad chunk extension");
            return true;
        case State::ext_quoted_pair:
            if (!is_space(c) && !is_visible(c)) return fail("bad chunk extension");
            state_ = State::ext_quoted_value;
            return true;
        case State::ext_after_value:
            if (c == ';') state_ = State::ext_before_name;
            else if (c == '\r') state_ = State::line_lf;
            else if (!is_space(c)) return fail("bad chunk extension");
            return true;
        case State::line_lf:
            if (c != '\n') return fail("bare CR in chunk line");
            line_bytes_ = 0;
            digits_ = 0;
            if (size_ == 0) {
                state_ = State::trailer_line_start;
            } else {
                data_left_ = size_;
                size_ = 0;
                state_ = State::data;
            }
            return true;
        case State::data_cr:
            if (c != '\r') return fail("chunk data longer than its size");
            state_ = State::data_lf;
            return true;
        case State::data_lf:
            if (c != '\n') return fail("bare CR after chunk data");
            state_ = State::size;
            return true;
        case State::trailer_line_start:
            if (c == '\r') state_ = State::end_lf;
            else if (is_tchar(c)) state_ = State::trailer_name;
            else if (is_space(c)) return fail("obs-fold in trailers");
            else return fail("bad trailer field");
            return true;
        case State::trailer_name:
            if (c == ':') state_ = State::trailer_value;
            else if (!is_tchar(c)) return fail("bad trailer field");
            return true;
        case State::trailer_value:
            if (c == '\r') state_ = State::trailer_lf;
            else if (!is_space(c) && !is_visible(c)) return fail("bad trailer field");
            return true;
        case State::trailer_lf:
            if (c != '\n') return fail("bare CR in trailers");
            state_ = State::trailer_line_start;
            return true;
        case State::end_lf:
            if (c != '\n') return fail("bare CR in trailers");
            state_ = State::done;
            return true;
        case State::data:
        case State::done:
        case State::failed:
            break;
    }
    return fail("decoder misuse");
}

}  // namespace castellan::proxy::http
