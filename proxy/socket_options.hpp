// Options every proxied TCP connection gets, on both legs.
#pragma once

#include <boost/asio/ip/tcp.hpp>

namespace castellan::proxy {

// TCP_NODELAY (the proxy must not add Nagle's delay to RPC round trips) and TCP
// keep-alive probing after 60 s idle, every 10 s, 6 times: a client that vanished
// (a laptop put to sleep) is found in about two minutes instead of holding its
// connection and its persistence entry for idle_s. Also puts the socket in
// non-blocking mode, which the pump relies on. Errors are ignored: a socket that
// refuses an option still proxies.
void tune_connection(boost::asio::ip::tcp::socket& socket);

}  // namespace castellan::proxy
