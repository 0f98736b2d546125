#include "persistence/least_connections.hpp"
#include "persistence/round_robin.hpp"
#include "persistence/scheduler.hpp"
#include "persistence/source_hash.hpp"
#include "persistence/weighted_round_robin.hpp"
#include "scheduler_test_util.hpp"

#include <catch2/catch.hpp>

using namespace castellan::persistence;
using castellan::conf::SchedulerKind;
using castellan::persistence::test::named_servers;
using castellan::persistence::test::Pool;

TEST_CASE("scheduler factory: every config kind builds its own policy", "[persistence]") {
    auto servers = named_servers({2, 1});
    CHECK(dynamic_cast<RoundRobinScheduler*>(make_scheduler(SchedulerKind::round_robin, servers).get()));
    CHECK(dynamic_cast<WeightedRoundRobinScheduler*>(
        make_scheduler(SchedulerKind::weighted_round_robin, servers).get()));
    CHECK(dynamic_cast<LeastConnectionsScheduler*>(
        make_scheduler(SchedulerKind::least_connections, servers).get()));
    CHECK(dynamic_cast<SourceHashScheduler*>(make_scheduler(SchedulerKind::source_hash, servers).get()));
}

TEST_CASE("scheduler factory: every kind answers nullopt with nothing eligible", "[persistence]") {
    for (auto kind : {SchedulerKind::round_robin, SchedulerKind::weighted_round_robin,
                      SchedulerKind::least_connections, SchedulerKind::source_hash}) {
        auto scheduler = make_scheduler(kind, named_servers({1, 1, 1}));
        Pool pool(3);
        CHECK(scheduler->pick(pool.request(42)));
        pool.eligible = {0, 0, 0};
        CHECK_FALSE(scheduler->pick(pool.request(42)));
        auto empty = make_scheduler(kind, {});
        CHECK_FALSE(empty->pick(Pool(0).request(42)));
    }
}
