// Hashes whose values are part of the contract: the same on every build, compiler
// and machine, so two balancers (or one restarted) map a client to the same server.
//
// Plain integer arithmetic only (no std::hash, whose values are unspecified, and no
// floating point, whose library functions may round differently between machines).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace castellan::persistence {

// A 64-bit finaliser (the SplitMix64 / Stafford "mix13" one): a bijection whose
// every output bit depends on every input bit, used to spread FNV-1a's weak low
// bits and to combine a client hash with a server hash.
constexpr std::uint64_t mix64(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

// FNV-1a (64-bit) over `bytes`, unmixed: exposed for its published test vectors.
std::uint64_t fnv1a64(std::span<const std::uint8_t> bytes);

// FNV-1a followed by mix64: the stable hash of a byte string.
std::uint64_t stable_hash(std::span<const std::uint8_t> bytes);

// The stable hash of a real server's name (source_hash hashes names, never positions).
std::uint64_t stable_hash(std::string_view text);

}  // namespace castellan::persistence
