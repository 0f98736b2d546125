#include "persistence/round_robin.hpp"
#include "persistence/scheduler.hpp"
#include "scheduler_test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <iostream>
#include <thread>
#include <vector>

using namespace castellan::persistence;
using castellan::persistence::test::count_picks;
using castellan::persistence::test::named_servers;
using castellan::persistence::test::Pool;

TEST_CASE("round_robin: two servers get exactly 10/10 of 20 picks, in turn", "[persistence]") {
    RoundRobinScheduler scheduler(2);
    Pool pool(2);
    std::vector<std::size_t> order;
    for (int i = 0; i < 20; ++i) order.push_back(*scheduler.pick(pool.request()));
    for (std::size_t i = 0; i < order.size(); ++i) CHECK(order[i] == i % 2);
    auto counts = count_picks(scheduler, pool, 20);
    CHECK(counts[0] == 10);
    CHECK(counts[1] == 10);
}

TEST_CASE("round_robin: ignores weights", "[persistence]") {
    auto scheduler = make_scheduler(castellan::conf::SchedulerKind::round_robin, named_servers({5, 1}));
    Pool pool(2);
    auto counts = count_picks(*scheduler, pool, 20);
    CHECK(counts[0] == 10);
    CHECK(counts[1] == 10);
}

TEST_CASE("round_robin: exact across threads hammering one scheduler", "[persistence]") {
    constexpr int thread_count = 4;
    SECTION("20 picks from 4 threads are 10/10, 200 times over") {
        for (int round = 0; round < 200; ++round) {
            RoundRobinScheduler scheduler(2);
            Pool pool(2);
            std::atomic<int> counts[2] = {0, 0};
            std::vector<std::thread> threads;
            for (int t = 0; t < thread_count; ++t) {
                threads.emplace_back([&] {
                    for (int i = 0; i < 5; ++i) counts[*scheduler.pick(pool.request())]++;
                });
            }
            for (auto& thread : threads) thread.join();
            REQUIRE(counts[0] == 10);
            REQUIRE(counts[1] == 10);
        }
    }
    SECTION("4 x 30000 picks over 3 servers are 40000 each") {
        RoundRobinScheduler scheduler(3);
        Pool pool(3);
        std::atomic<int> counts[3] = {0, 0, 0};
        std::vector<std::thread> threads;
        for (int t = 0; t < thread_count; ++t) {
            threads.emplace_back([&] {
                for (int i = 0; i < 30000; ++i) counts[*scheduler.pick(pool.request())]++;
            });
        }
        for (auto& thread : threads) thread.join();
        std::cout << "round_robin 4 threads x 30000 picks over 3: " << counts[0] << " / " << counts[1]
                  << " / " << counts[2] << "\n";
        CHECK(counts[0] == 40000);
        CHECK(counts[1] == 40000);
        CHECK(counts[2] == 40000);
    }
}

TEST_CASE("round_robin: skips ineligible servers and keeps the rest even", "[persistence]") {
    RoundRobinScheduler scheduler(3);
    Pool pool(3);
    pool.eligible[1] = 0;
    auto counts = count_picks(scheduler, pool, 20);
    CHECK(counts[0] == 10);
    CHECK(counts[1] == 0);
    CHECK(counts[2] == 10);
}

TEST_CASE("round_robin: a retry with the failed server ineligible picks another", "[persistence]") {
    RoundRobinScheduler scheduler(2);
    Pool pool(2);
    for (int i = 0; i < 10; ++i) {
        Pool attempt = pool;
        const std::size_t first = *scheduler.pick(attempt.request());
        attempt.eligible[first] = 0;
        const auto second = scheduler.pick(attempt.request());
        REQUIRE(second);
        CHECK(*second != first);
        attempt.eligible[*second] = 0;
        CHECK_FALSE(scheduler.pick(attempt.request()));
    }
}

TEST_CASE("round_robin: none eligible or no server gives nullopt", "[persistence]") {
    RoundRobinScheduler scheduler(2);
    Pool pool(2);
    pool.eligible = {0, 0};
    CHECK_FALSE(scheduler.pick(pool.request()));
    RoundRobinScheduler empty(0);
    CHECK_FALSE(empty.pick(Pool(0).request()));
    // Spans shorter than the server list read as "not eligible", never past the end.
    Pool shorter(1);
    for (int i = 0; i < 4; ++i) CHECK(scheduler.pick(shorter.request()) == std::size_t{0});
}
