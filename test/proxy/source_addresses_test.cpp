// The rotation over source_addresses: pure index arithmetic and the split by family.
#include "proxy/source_addresses.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

using castellan::proxy::SourceAddresses;

TEST_CASE("source addresses: split by family, config order kept", "[proxy]") {
    const SourceAddresses none;
    CHECK(none.empty());
    CHECK(none.of_family(false).empty());
    CHECK(none.of_family(true).empty());

    const SourceAddresses mixed({"192.0.2.11", "2001:db8::10", "192.0.2.10"});
    CHECK_FALSE(mixed.empty());
    REQUIRE(mixed.of_family(false).size() == 2);
    CHECK(mixed.of_family(false)[0].to_string() == "192.0.2.11");
    CHECK(mixed.of_family(false)[1].to_string() == "192.0.2.10");
    REQUIRE(mixed.of_family(true).size() == 1);
    CHECK(mixed.of_family(true)[0].to_string() == "2001:db8::10");

    const SourceAddresses only_v6({"2001:db8::10"});
    CHECK(only_v6.of_family(false).empty());
}

TEST_CASE("source addresses: connections take the addresses in turn", "[proxy]") {
    // Three addresses, 300 connections: 100 each, in the order 0, 1, 2, 0, ...
    std::map<std::size_t, int> used;
    for (std::uint64_t turn = 0; turn < 300; ++turn) {
        const std::size_t index = SourceAddresses::index_for(3, turn, 0);
        CHECK(index == turn % 3);
        ++used[index];
    }
    CHECK(used == std::map<std::size_t, int>{{0, 100}, {1, 100}, {2, 100}});
    // One address: always it.
    for (std::uint64_t turn : {0ULL, 1ULL, 7ULL, ~0ULL}) CHECK(SourceAddresses::index_for(1, turn, 0) == 0);
}

TEST_CASE("source addresses: after a local failure the next ones, each once", "[proxy]") {
    for (std::size_t count : {1, 2, 3, 5}) {
        for (std::uint64_t turn : {0ULL, 1ULL, 4ULL, 1000003ULL, ~0ULL}) {
            INFO("count " << count << ", turn " << turn);
            std::vector<std::size_t> order;
            for (std::size_t attempt = 0; attempt < count; ++attempt) {
                order.push_back(SourceAddresses::index_for(count, turn, attempt));
            }
            CHECK(order.front() == turn % count);  // the turn's own address first
            CHECK(std::set<std::size_t>(order.begin(), order.end()).size() == count);  // every one once
            for (std::size_t i = 1; i < order.size(); ++i) CHECK(order[i] == (order[i - 1] + 1) % count);
        }
    }
}
