#include "persistence/client_key.hpp"

#include "persistence/stable_hash.hpp"

#include <algorithm>

namespace castellan::persistence {

ClientKey client_key_from_v4(std::span<const std::uint8_t, 4> bytes) {
    // ::ffff:a.b.c.d (RFC 4291 2.5.5.2): ten zero bytes, two 0xff, then the address.
    ClientKey key{};
    key[10] = 0xff;
    key[11] = 0xff;
    std::copy(bytes.begin(), bytes.end(), key.begin() + 12);
    return key;
}

ClientKey client_key_from_v6(std::span<const std::uint8_t, 16> bytes) {
    // A v4-mapped v6 address is already in the form client_key_from_v4 gives, so a
    // client reaching a dual-stack listener and a v4 one has one key.
    ClientKey key{};
    std::copy(bytes.begin(), bytes.end(), key.begin());
    return key;
}

std::uint64_t hash_client_key(const ClientKey& key) {
    return stable_hash(std::span<const std::uint8_t>(key.data(), key.size()));
}

}  // namespace castellan::persistence
