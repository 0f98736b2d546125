// Options every proxied TCP connection gets, on both legs.
//
// TCP_NODELAY: the proxy must not add Nagle's delay to RPC round trips. TCP
// keep-alive probing after 60 s idle, every 10 s, 6 times: a client that vanished
// (a laptop put to sleep) is found in about two minutes instead of holding its
// connection and its persistence entry for idle_s. Errors are ignored: a socket
// that refuses an option still proxies.
#pragma once

#include <boost/asio/ip/tcp.hpp>

namespace castellan::proxy {

// Sets the options on a raw descriptor. Set on a listening socket, Linux hands
// them down to every accepted connection, which then needs no syscall of its own.
void set_connection_options(int fd);

// For a connection made by us (the real-server leg): TCP_NODELAY and keep-alive
// with the kernel's probe timing. The probe timing above is for clients that
// vanish; a real server that dies is found by its health check (and
// on_server_down), and three setsockopt calls per connection are measurable in
// the connection rate.
void tune_upstream_connection(boost::asio::ip::tcp::socket& socket);

}  // namespace castellan::proxy
