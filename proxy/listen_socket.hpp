// Listening sockets for virtual services.
#pragma once

#include "conf/config.hpp"

#include <string>

namespace castellan::proxy {

// Opens, binds and listens on `address`; gives the descriptor, or -1 with `error`
// set ("address in use", ...).
//
// One listening socket per virtual service, shared by every worker (each accepts
// from its own dup of it, as HAProxy does by default), and no SO_REUSEPORT: so a
// second castellan, or anything else already on the address, makes the bind fail
// instead of silently sharing the traffic, and closing the socket never resets
// connections queued on a sibling. SO_REUSEADDR lets a restart bind while old
// connections sit in TIME_WAIT. IPv6 sockets are IPV6_V6ONLY (`[::]` is IPv6 only).
int open_listen_socket(const conf::HostPort& address, std::string& error);

}  // namespace castellan::proxy
