// A virtual service's `source_addresses`: the local addresses its connections
// to real servers come from, by family, and which one a connection uses.
//
// Why several: the kernel gives a connection from one local address to one real
// server address and port one of the ~28000 ports of
// net.ipv4.ip_local_port_range; each further source address adds that many
// (sockets are bound with IP_BIND_ADDRESS_NO_PORT, so the port is picked at
// connect() for the whole 4-tuple, not reserved for every destination by
// bind()). Connections to a real server take the addresses of its family in
// turn: the n-th connection to it starts at address n mod count, and when that
// one has no port left (or is not on this host) the next ones are tried.
// Pure: no sockets; the turn counter lives with each real server (runtime.hpp).
#pragma once

#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace castellan::proxy {

class SourceAddresses {
public:
    using address = boost::asio::ip::address;

    // None: every connection takes the kernel's choice.
    SourceAddresses() = default;
    // From the config's IP literals (checked by conf/, so each parses).
    explicit SourceAddresses(const std::vector<std::string>& texts);

    bool empty() const { return v4_.empty() && v6_.empty(); }
    // The addresses of one family, in config order; empty when the config gave
    // none of it (then conf/ or build_runtime() made sure no real server of
    // that family exists, or the list is empty and the kernel chooses).
    const std::vector<address>& of_family(bool v6) const { return v6 ? v6_ : v4_; }

    // Which of `count` addresses a connection tries at its `attempt`-th try
    // (0 first, then after each local failure), for its `turn` (0, 1, 2... per
    // real server): the turn's own address first, then the following ones in
    // order, wrapping, so that the first `count` attempts visit each address
    // once. `count` > 0.
    static std::size_t index_for(std::size_t count, std::uint64_t turn, std::size_t attempt) {
        return static_cast<std::size_t>((turn % count + attempt) % count);
    }

private:
    std::vector<address> v4_;
    std::vector<address> v6_;
};

}  // namespace castellan::proxy
