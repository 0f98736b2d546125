#include "persistence/stable_hash.hpp"

namespace castellan::persistence {

std::uint64_t fnv1a64(std::span<const std::uint8_t> bytes) {
    constexpr std::uint64_t offset_basis = 0xcbf29ce484222325ULL;
    constexpr std::uint64_t prime = 0x100000001b3ULL;
    std::uint64_t hash = offset_basis;
    for (std::uint8_t byte : bytes) {
        hash ^= byte;
        hash *= prime;
    }
    return hash;
}

std::uint64_t stable_hash(std::span<const std::uint8_t> bytes) {
    return mix64(fnv1a64(bytes));
}

std::uint64_t stable_hash(std::string_view text) {
    // Bytes as they are stored: a name is hashed by its UTF-8/ASCII bytes.
    const auto* data = reinterpret_cast<const std::uint8_t*>(text.data());
    return stable_hash(std::span<const std::uint8_t>(data, text.size()));
}

}  // namespace castellan::persistence
