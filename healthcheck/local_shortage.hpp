// Whether a failed socket call says that this host lacks something (a local
// port, a source address, a descriptor, memory) rather than that the peer failed.
//
// A connect that fails for such a reason says nothing of the real server: it
// must not count against it (connect_failures, passive health, a failed check),
// or castellan running out of ephemeral ports would mark every real server down
// and turn its own shortage into an outage. The proxy's connects to real servers
// and the health checks both ask here; it lives in healthcheck/, the lowest
// folder both use (DESIGN.md), so that the list is kept in one place.
#pragma once

#include <boost/system/error_code.hpp>

#include <cstddef>

namespace castellan::healthcheck {

enum class LocalShortage {
    none,            // not local: the peer's answer (refused, reset, unreachable...)
    ports,           // no free local port for this destination (EADDRNOTAVAIL from connect, EADDRINUSE)
    source_address,  // a source address this host does not have (EADDRNOTAVAIL from bind)
    resources,       // out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)
    // transparent mode: the socket could not take the client's address (no
    // IP_TRANSPARENT: the capability is gone, or bind() refused the address)
    transparent_source,
};

// How many kinds there are, none included: the size of tables indexed by kind.
inline constexpr std::size_t local_shortage_kinds = 5;

// The socket call whose error is judged: EADDRNOTAVAIL means an address the
// host does not have when bind() says it, and no port left when connect() does.
enum class SocketStep { open, bind, connect };

// What `error` from `step` says. Any failed bind() is local (it never reaches
// the peer); a failed open() is local; connect() is local only for the errors
// listed above. Pure; any thread.
LocalShortage local_shortage_of(const boost::system::error_code& error, SocketStep step);

// Descriptors or memory (the `resources` errors), whatever the step: the errors
// accept() also meets.
bool is_out_of_resources(const boost::system::error_code& error);

// The config-facing word for each shortage: `local_ports_exhausted`,
// `source_address_unavailable`, `out_of_resources` (the log's close reason);
// "" for none.
const char* to_string(LocalShortage shortage);

}  // namespace castellan::healthcheck
