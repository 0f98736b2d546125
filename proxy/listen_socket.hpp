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
//
// An address that is not on this host (EADDRNOTAVAIL) is told with its remedy
// (address_not_here): on the standby of a keepalived pair the virtual address
// is on the other node, and net.ipv4.ip_nonlocal_bind (net.ipv6.ip_nonlocal_bind)
// lets the standby listen on it anyway, so that it serves the moment the address
// arrives. That sysctl, not IP_FREEBIND on our listeners: it is what keepalived
// set-ups already use, it needs no config key, and without it a typo in `listen`
// still fails the start instead of listening on an address nobody will have.
int open_listen_socket(const conf::HostPort& address, std::string& error);

// The error text for a listen address that is not on this host, with the remedy.
std::string address_not_here(const conf::HostPort& address);

}  // namespace castellan::proxy
