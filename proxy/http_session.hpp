// One client connection of an http-mode virtual service, from accept to close.
#pragma once

#include "proxy/runtime.hpp"
#include "proxy/tcp_session.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>

namespace castellan::proxy {

// Reads each request head (Beast's parser, under http.max_header_bytes and
// timeouts.client_header_ms from its first byte), answers what must not pass
// (400, 431, 405 for CONNECT) itself, and otherwise passes it on to one real
// server, written anew (http_head.hpp), with its body and the response streamed
// both ways at once, never held whole. Routing is per connection: the real
// server chosen for the first request serves every request of this client
// connection, over one server connection that belongs to it alone (NTLM
// authenticates the connection). No server left: 503; a server that closes or
// answers garbage before its response head: 502. Keeps the client connection
// while both sides allow it; a 101 turns it into a tunnel. Logs one `request`
// line per request (access_log permitting). The environment is the tcp
// session's; so are the runtime and the threading rules.
boost::asio::awaitable<void> run_http_session(boost::asio::ip::tcp::socket client,
                                              boost::asio::ip::tcp::endpoint client_endpoint,
                                              std::shared_ptr<const Runtime> runtime, ServiceRuntime& service,
                                              SessionEnvironment environment);

}  // namespace castellan::proxy
