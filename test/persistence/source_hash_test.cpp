#include "persistence/client_key.hpp"
#include "persistence/source_hash.hpp"
#include "scheduler_test_util.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

using namespace castellan::persistence;
using castellan::persistence::test::Pool;

namespace {

constexpr int key_count = 100000;

// The key hash of client 10.b.c.d for the i-th test client.
std::uint64_t client_hash(int i) {
    const std::array<std::uint8_t, 4> address{10, static_cast<std::uint8_t>(i >> 16),
                                              static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
    return hash_client_key(client_key_from_v4(address));
}

std::vector<ServerEntry> servers_named(std::vector<std::string> names, std::vector<int> weights = {}) {
    std::vector<ServerEntry> servers;
    for (std::size_t i = 0; i < names.size(); ++i) {
        servers.push_back({names[i], weights.empty() ? 1 : weights[i]});
    }
    return servers;
}

// The server name each test client lands on.
std::vector<std::string> assign(const std::vector<ServerEntry>& servers, const Pool& pool) {
    SourceHashScheduler scheduler(servers);
    std::vector<std::string> names;
    names.reserve(key_count);
    for (int i = 0; i < key_count; ++i) {
        auto index = scheduler.pick(pool.request(client_hash(i)));
        names.push_back(index ? servers[*index].name : std::string("-"));
    }
    return names;
}

std::map<std::string, int> tally(const std::vector<std::string>& names) {
    std::map<std::string, int> counts;
    for (const auto& name : names) ++counts[name];
    return counts;
}

std::string percent(double fraction) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f %%", fraction * 100.0);
    return text;
}

}  // namespace

TEST_CASE("source_hash: -log2 in fixed point", "[persistence]") {
    constexpr std::uint64_t one = std::uint64_t{1} << 32;
    CHECK(fixed_neg_log2(std::uint64_t{1} << 63) == one);        // u = 1/2
    CHECK(fixed_neg_log2(std::uint64_t{1} << 62) == 2 * one);    // u = 1/4
    CHECK(fixed_neg_log2(1) == 64 * one);
    CHECK(fixed_neg_log2(0) == 64 * one);
    CHECK(fixed_neg_log2(~std::uint64_t{0}) >= 1);
    // u = 2^-0.5: 0.5, to within a couple of 2^-32 steps.
    const std::uint64_t half = fixed_neg_log2(0xB504F333F9DE6484ULL);
    CHECK(half >= one / 2 - 2);
    CHECK(half <= one / 2 + 2);
}

TEST_CASE("source_hash: the same key always lands on the same server", "[persistence]") {
    auto servers = servers_named({"cas1", "cas2", "cas3"});
    SourceHashScheduler first(servers);
    SourceHashScheduler second(servers);  // another balancer, or after a restart
    Pool pool(3);
    for (int i = 0; i < 1000; ++i) {
        auto a = first.pick(pool.request(client_hash(i)));
        REQUIRE(a);
        CHECK(first.pick(pool.request(client_hash(i))) == a);
        CHECK(second.pick(pool.request(client_hash(i))) == a);
    }
}

TEST_CASE("source_hash: hashes names, so the order of the list does not matter", "[persistence]") {
    auto forward = assign(servers_named({"cas1", "cas2", "cas3", "cas4"}), Pool(4));
    auto backward = assign(servers_named({"cas4", "cas3", "cas2", "cas1"}), Pool(4));
    CHECK(forward == backward);
}

TEST_CASE("source_hash: 100k keys over 4 equal servers are within 5 % of even", "[persistence]") {
    auto counts = tally(assign(servers_named({"cas1", "cas2", "cas3", "cas4"}), Pool(4)));
    REQUIRE(counts.size() == 4);
    for (const auto& [name, count] : counts) {
        std::cout << "source_hash 4 equal servers: " << name << " " << count << " ("
                  << percent(count / double(key_count)) << ")\n";
        CHECK(count >= key_count / 4 * 0.95);
        CHECK(count <= key_count / 4 * 1.05);
    }
}

TEST_CASE("source_hash: weights 2:1 are respected within 5 %", "[persistence]") {
    auto counts = tally(assign(servers_named({"big", "small"}, {2, 1}), Pool(2)));
    const double big = counts["big"] / double(key_count);
    std::cout << "source_hash weights 2:1: big " << percent(big) << ", small "
              << percent(counts["small"] / double(key_count)) << "\n";
    CHECK(big >= 2.0 / 3 * 0.95);
    CHECK(big <= 2.0 / 3 * 1.05);

    auto mixed = tally(assign(servers_named({"a", "b", "c"}, {1, 2, 5}), Pool(3)));
    for (const auto& [name, weight] : std::map<std::string, double>{{"a", 1}, {"b", 2}, {"c", 5}}) {
        const double share = mixed[name] / double(key_count);
        std::cout << "source_hash weights 1:2:5: " << name << " " << percent(share) << "\n";
        CHECK(share >= weight / 8 * 0.95);
        CHECK(share <= weight / 8 * 1.05);
    }
}

TEST_CASE("source_hash: removing 1 of 5 servers moves only its own clients", "[persistence]") {
    auto before = assign(servers_named({"cas1", "cas2", "cas3", "cas4", "cas5"}), Pool(5));
    auto after = assign(servers_named({"cas1", "cas2", "cas4", "cas5"}), Pool(4));
    int moved_own = 0;
    int moved_other = 0;
    for (int i = 0; i < key_count; ++i) {
        if (before[i] == after[i]) continue;
        if (before[i] == "cas3") {
            ++moved_own;
        } else {
            ++moved_other;
        }
    }
    const int own = tally(before)["cas3"];
    std::cout << "source_hash remove 1 of 5: " << moved_own << " of cas3's " << own
              << " clients moved, " << moved_other << " others moved\n";
    CHECK(moved_own == own);
    CHECK(moved_other == 0);

    // Marking it ineligible instead of removing it gives the same failover.
    Pool pool(5);
    pool.eligible[2] = 0;
    CHECK(assign(servers_named({"cas1", "cas2", "cas3", "cas4", "cas5"}), pool) == after);
}

TEST_CASE("source_hash: adding a 6th server moves about 1/6 of the clients, all to it", "[persistence]") {
    auto before = assign(servers_named({"cas1", "cas2", "cas3", "cas4", "cas5"}), Pool(5));
    auto after = assign(servers_named({"cas1", "cas2", "cas3", "cas4", "cas5", "cas6"}), Pool(6));
    int moved = 0;
    int moved_elsewhere = 0;
    for (int i = 0; i < key_count; ++i) {
        if (before[i] == after[i]) continue;
        ++moved;
        if (after[i] != "cas6") ++moved_elsewhere;
    }
    const double fraction = moved / double(key_count);
    std::cout << "source_hash add a 6th to 5: " << moved << " moved (" << percent(fraction)
              << ", ideal 16.67 %), " << moved_elsewhere << " not to the new one\n";
    CHECK(fraction >= 0.12);
    CHECK(fraction <= 0.22);
    CHECK(moved_elsewhere == 0);
}

TEST_CASE("source_hash: ineligible servers are skipped", "[persistence]") {
    auto servers = servers_named({"cas1", "cas2", "cas3"});
    SourceHashScheduler scheduler(servers);
    Pool pool(3);
    for (int i = 0; i < 200; ++i) {
        Pool attempt = pool;
        const std::size_t first = *scheduler.pick(attempt.request(client_hash(i)));
        attempt.eligible[first] = 0;
        const std::size_t second = *scheduler.pick(attempt.request(client_hash(i)));
        CHECK(second != first);
        attempt.eligible[second] = 0;
        const std::size_t third = *scheduler.pick(attempt.request(client_hash(i)));
        CHECK(third != first);
        CHECK(third != second);
        attempt.eligible[third] = 0;
        CHECK_FALSE(scheduler.pick(attempt.request(client_hash(i))));
    }
}

TEST_CASE("source_hash: golden assignments (a change of hash must be noticed)", "[persistence]") {
    // Pinned: two balancers, or an upgraded one, must keep sending these clients
    // where they went before. If this fails, the hash changed: that moves clients.
    auto servers = servers_named({"cas1", "cas2", "cas3", "cas4"});
    SourceHashScheduler scheduler(servers);
    Pool pool(4);
    auto name_for_v4 = [&](std::array<std::uint8_t, 4> address) {
        return servers[*scheduler.pick(pool.request(hash_client_key(client_key_from_v4(address))))].name;
    };
    auto name_for_v6 = [&](std::array<std::uint8_t, 16> address) {
        return servers[*scheduler.pick(pool.request(hash_client_key(client_key_from_v6(address))))].name;
    };
    // Checked against an independent implementation (Python, floating-point
    // rendezvous with the same FNV-1a + mix64 hashes) when they were pinned.
    CHECK(name_for_v4({192, 168, 0, 10}) == "cas4");
    CHECK(name_for_v4({192, 168, 0, 11}) == "cas2");
    CHECK(name_for_v4({192, 168, 0, 15}) == "cas3");
    CHECK(name_for_v4({192, 168, 0, 23}) == "cas1");
    CHECK(name_for_v4({192, 168, 0, 26}) == "cas1");
    CHECK(name_for_v4({10, 0, 0, 1}) == "cas3");
    CHECK(name_for_v4({203, 0, 113, 7}) == "cas2");
    CHECK(name_for_v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}) == "cas3");
    CHECK(name_for_v6({0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x15, 0x5d, 0xff, 0xfe, 0x01, 0x02, 0x03}) == "cas4");
}
