// A client address as a persistence and hashing key.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace castellan::persistence {

// IPv6 bytes; an IPv4 client is its IPv4-mapped IPv6 address (::ffff:a.b.c.d), so
// one client has one key whichever family its listener uses.
using ClientKey = std::array<std::uint8_t, 16>;

ClientKey client_key_from_v4(std::span<const std::uint8_t, 4> bytes);
ClientKey client_key_from_v6(std::span<const std::uint8_t, 16> bytes);

// A stable 64-bit hash (the same on every build and machine, so two balancers
// or a restarted one agree on source_hash).
std::uint64_t hash_client_key(const ClientKey& key);

}  // namespace castellan::persistence
