#include "persistence/least_connections.hpp"
#include "scheduler_test_util.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace castellan::persistence;
using castellan::persistence::test::count_picks;
using castellan::persistence::test::named_servers;
using castellan::persistence::test::Pool;

TEST_CASE("least_connections: picks the least loaded server", "[persistence]") {
    LeastConnectionsScheduler scheduler(named_servers({1, 1, 1}));
    Pool pool(3);
    pool.active = {5, 2, 7};
    CHECK(scheduler.pick(pool.request()) == std::size_t{1});
    pool.active = {0, 2, 7};
    CHECK(scheduler.pick(pool.request()) == std::size_t{0});
}

TEST_CASE("least_connections: skips ineligible servers, however idle", "[persistence]") {
    LeastConnectionsScheduler scheduler(named_servers({1, 1, 1}));
    Pool pool(3);
    pool.active = {5, 0, 7};
    pool.eligible[1] = 0;
    CHECK(scheduler.pick(pool.request()) == std::size_t{0});
    pool.eligible = {0, 0, 0};
    CHECK_FALSE(scheduler.pick(pool.request()));
}

TEST_CASE("least_connections: load is active divided by weight", "[persistence]") {
    LeastConnectionsScheduler scheduler(named_servers({3, 1}));
    Pool pool(2);
    pool.active = {5, 2};  // 5/3 < 2/1
    CHECK(scheduler.pick(pool.request()) == std::size_t{0});
    pool.active = {7, 2};  // 7/3 > 2/1
    CHECK(scheduler.pick(pool.request()) == std::size_t{1});

    // Filling an empty 3:1 pool one connection at a time keeps the ratio 3:1.
    pool.active = {0, 0};
    for (int i = 0; i < 400; ++i) ++pool.active[*scheduler.pick(pool.request())];
    CHECK(pool.active[0] == 300);
    CHECK(pool.active[1] == 100);
}

TEST_CASE("least_connections: ties are broken round robin", "[persistence]") {
    LeastConnectionsScheduler scheduler(named_servers({1, 1, 1, 1}));
    Pool pool(4);
    pool.active = {3, 1, 4, 1};  // 1 and 3 tie at the lowest load
    auto counts = count_picks(scheduler, pool, 20);
    CHECK(counts[1] == 10);
    CHECK(counts[3] == 10);

    // Equal ratios with unequal weights tie too: 2/2 == 1/1.
    LeastConnectionsScheduler weighted(named_servers({2, 1}));
    Pool pair(2);
    pair.active = {2, 1};
    auto pair_counts = count_picks(weighted, pair, 20);
    CHECK(pair_counts[0] == 10);
    CHECK(pair_counts[1] == 10);
}

TEST_CASE("least_connections: an idle pool is served exactly in turn across threads", "[persistence]") {
    LeastConnectionsScheduler scheduler(named_servers({1, 1}));
    Pool pool(2);
    std::atomic<int> counts[2] = {0, 0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) counts[*scheduler.pick(pool.request())]++;
        });
    }
    for (auto& thread : threads) thread.join();
    CHECK(counts[0] == 20000);
    CHECK(counts[1] == 20000);
}
