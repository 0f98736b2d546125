#include "persistence/weighted_round_robin.hpp"
#include "scheduler_test_util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

using namespace castellan::persistence;
using castellan::persistence::test::count_picks;
using castellan::persistence::test::named_servers;
using castellan::persistence::test::Pool;

namespace {

// The longest run of one server in `picks`, read as a cycle (its end wraps).
std::size_t longest_run(const std::vector<std::size_t>& picks) {
    std::size_t longest = 0;
    for (std::size_t start = 0; start < picks.size(); ++start) {
        std::size_t length = 1;
        while (length < picks.size() && picks[(start + length) % picks.size()] == picks[start]) ++length;
        longest = std::max(longest, length);
    }
    return longest;
}

std::string letters(const std::vector<std::size_t>& picks) {
    std::string text;
    for (std::size_t pick : picks) text += static_cast<char>('a' + pick);
    return text;
}

std::vector<std::size_t> pick_many(Scheduler& scheduler, const Pool& pool, int picks) {
    std::vector<std::size_t> result;
    for (int i = 0; i < picks; ++i) result.push_back(*scheduler.pick(pool.request()));
    return result;
}

}  // namespace

TEST_CASE("weighted_round_robin: the smooth sequence of nginx", "[persistence]") {
    const std::vector<std::uint32_t> weights{5, 1, 1};
    const auto sequence = smooth_weighted_sequence(weights);
    const std::vector<std::uint32_t> expected{0, 0, 1, 0, 2, 0, 0};  // a a b a c a a
    CHECK(sequence == expected);
}

TEST_CASE("weighted_round_robin: 3:1 over 40 picks is 30/10", "[persistence]") {
    WeightedRoundRobinScheduler scheduler(named_servers({3, 1}));
    Pool pool(2);
    auto picks = pick_many(scheduler, pool, 40);
    std::cout << "weighted_round_robin 3:1 first cycles: " << letters(picks).substr(0, 12) << "\n";
    CHECK(std::count(picks.begin(), picks.end(), 0) == 30);
    CHECK(std::count(picks.begin(), picks.end(), 1) == 10);
}

TEST_CASE("weighted_round_robin: 5:1:1 never sends 5 in a row to one server", "[persistence]") {
    WeightedRoundRobinScheduler scheduler(named_servers({5, 1, 1}));
    Pool pool(3);
    auto picks = pick_many(scheduler, pool, 70);
    std::cout << "weighted_round_robin 5:1:1: " << letters(picks).substr(0, 14)
              << " longest run " << longest_run(picks) << "\n";
    CHECK(letters(picks).substr(0, 7) == "aabacaa");
    CHECK(longest_run(picks) < 5);
    CHECK(std::count(picks.begin(), picks.end(), 0) == 50);
    CHECK(std::count(picks.begin(), picks.end(), 1) == 10);
    CHECK(std::count(picks.begin(), picks.end(), 2) == 10);
}

TEST_CASE("weighted_round_robin: weights with a common divisor make a short cycle", "[persistence]") {
    WeightedRoundRobinScheduler scheduler(named_servers({200, 100}));
    CHECK(scheduler.cycle() == std::vector<std::uint32_t>{0, 1, 0});
    WeightedRoundRobinScheduler equal(named_servers({7, 7, 7}));
    CHECK(equal.cycle() == std::vector<std::uint32_t>{0, 1, 2});
}

TEST_CASE("weighted_round_robin: exact across threads", "[persistence]") {
    WeightedRoundRobinScheduler scheduler(named_servers({5, 1, 1}));
    Pool pool(3);
    std::atomic<int> counts[3] = {0, 0, 0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 7000; ++i) counts[*scheduler.pick(pool.request())]++;
        });
    }
    for (auto& thread : threads) thread.join();
    std::cout << "weighted_round_robin 5:1:1, 4 threads x 7000 picks: " << counts[0] << " / " << counts[1]
              << " / " << counts[2] << "\n";
    CHECK(counts[0] == 20000);
    CHECK(counts[1] == 4000);
    CHECK(counts[2] == 4000);
}

TEST_CASE("weighted_round_robin: an ineligible server's share goes to the rest by weight", "[persistence]") {
    SECTION("5:1:1 with the heavy one out: b and c alternate") {
        WeightedRoundRobinScheduler scheduler(named_servers({5, 1, 1}));
        Pool pool(3);
        pool.eligible[0] = 0;
        auto picks = pick_many(scheduler, pool, 20);
        CHECK(letters(picks) == "bcbcbcbcbcbcbcbcbcbc");
    }
    SECTION("3:2:1 with the middle one out: 3:1, smoothly") {
        WeightedRoundRobinScheduler scheduler(named_servers({3, 2, 1}));
        Pool pool(3);
        pool.eligible[1] = 0;
        auto picks = pick_many(scheduler, pool, 400);
        CHECK(std::count(picks.begin(), picks.end(), 0) == 300);
        CHECK(std::count(picks.begin(), picks.end(), 1) == 0);
        CHECK(std::count(picks.begin(), picks.end(), 2) == 100);
    }
    SECTION("equal weights with one out: the others stay even") {
        WeightedRoundRobinScheduler scheduler(named_servers({1, 1, 1, 1}));
        Pool pool(4);
        pool.eligible[2] = 0;
        auto counts = count_picks(scheduler, pool, 300);
        CHECK(counts[0] == 100);
        CHECK(counts[1] == 100);
        CHECK(counts[3] == 100);
    }
    SECTION("none eligible") {
        WeightedRoundRobinScheduler scheduler(named_servers({2, 1}));
        Pool pool(2);
        pool.eligible = {0, 0};
        CHECK_FALSE(scheduler.pick(pool.request()));
        WeightedRoundRobinScheduler empty(named_servers({}));
        CHECK_FALSE(empty.pick(Pool(0).request()));
    }
}
