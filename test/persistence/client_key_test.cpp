#include "persistence/client_key.hpp"
#include "persistence/stable_hash.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string_view>

using namespace castellan::persistence;

namespace {

std::span<const std::uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace

TEST_CASE("client_key: IPv4 is its IPv4-mapped IPv6 address", "[persistence]") {
    const std::array<std::uint8_t, 4> v4{192, 0, 2, 33};
    const std::array<std::uint8_t, 16> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 33};
    CHECK(client_key_from_v4(v4) == mapped);
    CHECK(client_key_from_v6(mapped) == client_key_from_v4(v4));
    CHECK(hash_client_key(client_key_from_v6(mapped)) == hash_client_key(client_key_from_v4(v4)));
}

TEST_CASE("client_key: FNV-1a matches its published test vectors", "[persistence]") {
    CHECK(fnv1a64(bytes_of("")) == 0xcbf29ce484222325ULL);
    CHECK(fnv1a64(bytes_of("a")) == 0xaf63dc4c8601ec8cULL);
    CHECK(fnv1a64(bytes_of("foobar")) == 0x85944171f73967e8ULL);
}

TEST_CASE("client_key: the hash is pinned (stable across builds and machines)", "[persistence]") {
    // Values checked against an independent FNV-1a + mix64 written in Python.
    const std::array<std::uint8_t, 4> v4{192, 0, 2, 1};
    std::array<std::uint8_t, 16> loopback6{};
    loopback6[15] = 1;
    CHECK(hash_client_key(client_key_from_v4(v4)) == 0x395c5bc678c14723ULL);
    CHECK(hash_client_key(client_key_from_v6(loopback6)) == 0x1af7b85a5eef58e4ULL);
    CHECK(stable_hash(std::string_view("cas1")) == 0xf3163d67362bb7b6ULL);
}

TEST_CASE("client_key: neighbouring addresses hash far apart", "[persistence]") {
    // Every bit of the hash should be about half set over consecutive addresses.
    std::array<int, 64> ones{};
    std::set<std::uint64_t> seen;
    constexpr int count = 4096;
    for (int i = 0; i < count; ++i) {
        const std::array<std::uint8_t, 4> v4{10, 0, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
        const std::uint64_t hash = hash_client_key(client_key_from_v4(v4));
        seen.insert(hash);
        for (int bit = 0; bit < 64; ++bit) ones[bit] += (hash >> bit) & 1;
    }
    CHECK(seen.size() == count);
    for (int bit = 0; bit < 64; ++bit) {
        INFO("bit " << bit);
        CHECK(ones[bit] > count * 0.45);
        CHECK(ones[bit] < count * 0.55);
    }
}
