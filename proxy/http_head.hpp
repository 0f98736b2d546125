// What castellan decides about one HTTP/1.1 message head, as pure functions over
// Beast's parsed headers: whether a request may pass, and the head each side is
// sent. The heads are written anew from the parsed fields, never copied: a
// server reads exactly what castellan understood (RFC 9112 11.2, smuggling).
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/fields.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace castellan::proxy::http {

namespace beast_http = boost::beast::http;
using RequestHead = beast_http::request_header<>;
using ResponseHead = beast_http::response_header<>;

// How a message's body is delimited, as parsed.
enum class Framing {
    none,            // no body (or a response to HEAD, a 1xx, 204, 304)
    content_length,  // `length` bytes
    chunked,         // chunked transfer coding (passed on re-chunked)
    until_close,     // a response that ends when the server closes
};

struct BodyFraming {
    Framing framing = Framing::none;
    std::uint64_t length = 0;
};

// Why a request is answered by castellan itself instead of being passed on.
struct Refusal {
    beast_http::status status;
    const char* reason;  // for the log
};

// The checks of RFC 9112 and 9110 a proxy must make itself, beyond what the
// parser refused: a Transfer-Encoding other than exactly `chunked` (a coding
// the server might read differently), a missing, repeated or invalid Host in
// HTTP/1.1, a request target not valid for its method (CONNECT is refused: no
// tunnels to arbitrary hosts), header names or values with bytes no field may
// hold. Nullopt when the request may pass.
std::optional<Refusal> check_request(const RequestHead& head, bool parsed_chunked);

// Whether a request opens an Outlook Anywhere channel (RPC_IN_DATA or
// RPC_OUT_DATA, MS-RPCH 2.1.2.1).
bool is_rpc_channel(const RequestHead& head);

// Whether a request carries `Expect: 100-continue` (its client waits for a 100
// before it sends the body).
bool expects_continue(const RequestHead& head);

// Whether a response is a 401 offering NTLM or Negotiate: authentication that
// binds the TCP connection, so the client's next request must reach the same
// server over the same connection.
bool offers_connection_auth(const ResponseHead& head);

// Whether a request may be sent again after its server connection closed
// before answering (RFC 9110 9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE).
bool is_idempotent(beast_http::verb method);

// What a client's request head becomes towards the real server: HTTP/1.1, its
// hop-by-hop fields (Connection and those it names, Keep-Alive, TE, Trailer,
// Transfer-Encoding, Upgrade unless asked for, Proxy-Connection) and framing
// fields dropped, `framing` written anew, X-Forwarded-For appended to
// (`client_address` after whatever the client sent, as one field) and
// X-Forwarded-Proto set when `forwarded_for`. An upgrade request keeps its
// `Connection: upgrade` and `Upgrade`. An HTTP/1.0 request without Host gets
// `Host: default_host` (the server gets HTTP/1.1, where Host is required).
std::string forwarded_request(const RequestHead& head, const BodyFraming& framing, bool forwarded_for,
                              std::string_view client_address, bool client_tls, std::string_view default_host);

// What a real server's response head becomes towards the client: its
// hop-by-hop fields dropped, `framing` written anew, `Connection: close` when
// `keep_alive` is false (and `keep-alive` for an HTTP/1.0 client kept alive).
// A 101 keeps its Connection and Upgrade fields.
// `extra_fields`: whole field lines castellan adds ("Set-Cookie: ...\r\n").
std::string forwarded_response(const ResponseHead& head, const BodyFraming& framing, bool keep_alive,
                               unsigned client_version, std::string_view extra_fields = {});

// The Set-Cookie field line of the persistence cookie: Path=/, HttpOnly,
// Secure when the client came over TLS, and when `expires_unix` is set both
// Max-Age (`max_age_s`) and Expires (older clients, Outlook 2010's WinINet
// among them, know only Expires); without it, a session cookie.
std::string set_cookie_field(std::string_view name, std::string_view value, bool secure,
                             std::optional<std::int64_t> expires_unix, std::int64_t max_age_s);

// A whole response of castellan's own (400, 431, 502, 503, ...): a short text
// body, `Connection: close`.
std::string error_response(beast_http::status status);

// The path of a request target without its query string (which can carry
// secrets), for the log.
std::string_view path_of(std::string_view target);

}  // namespace castellan::proxy::http
