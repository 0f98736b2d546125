#include "healthcheck/server_health.hpp"

#include <catch2/catch.hpp>

using castellan::healthcheck::Health;
using castellan::healthcheck::ServerHealth;
using namespace std::chrono_literals;

namespace {

castellan::conf::HealthCheck check_of(castellan::conf::HealthCheckKind type) {
    castellan::conf::HealthCheck check;
    check.type = type;
    check.rise = 2;
    check.fall = 2;
    return check;
}

const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
const auto wall = std::chrono::system_clock::time_point{} + 1h;

}  // namespace

TEST_CASE("server health: active checks decide, with the last result kept", "[healthcheck]") {
    ServerHealth health(check_of(castellan::conf::HealthCheckKind::http));
    CHECK(health.usable(t0));
    CHECK_FALSE(health.last_check());
    CHECK_FALSE(health.on_check(false, 3ms, "status 500", wall));
    auto change = health.on_check(false, 4ms, "status 500", wall);
    REQUIRE(change);
    CHECK(change->to == Health::down);
    CHECK(change->reason == "status 500");
    CHECK(change->by_active_check);
    CHECK_FALSE(health.usable(t0));
    REQUIRE(health.last_check());
    CHECK(health.last_check()->detail == "status 500");
    CHECK(health.last_check()->latency == 4ms);

    health.on_connect_ok();  // a lucky connect does not bring it back
    CHECK_FALSE(health.usable(t0));
    CHECK_FALSE(health.on_check(true, 1ms, "status 200", wall));
    auto back = health.on_check(true, 1ms, "status 200", wall);
    REQUIRE(back);
    CHECK(back->to == Health::up);
    CHECK(health.usable(t0));
}

TEST_CASE("server health: failed connects count toward fall but never close connections", "[healthcheck]") {
    ServerHealth health(check_of(castellan::conf::HealthCheckKind::tcp));
    CHECK_FALSE(health.on_connect_failed(t0, "connection refused"));
    auto change = health.on_connect_failed(t0, "connection refused");
    REQUIRE(change);
    CHECK(change->to == Health::down);
    CHECK_FALSE(change->by_active_check);
    CHECK_FALSE(health.usable(t0 + 1h));  // only checks bring an active-checked server back
}

TEST_CASE("server health: a successful connect resets the failure count", "[healthcheck]") {
    ServerHealth health(check_of(castellan::conf::HealthCheckKind::tcp));
    health.on_connect_failed(t0, "refused");
    health.on_connect_ok();
    CHECK_FALSE(health.on_connect_failed(t0, "refused"));
    CHECK(health.usable(t0));
}

TEST_CASE("server health: type none skips a failing server for 10 s", "[healthcheck]") {
    ServerHealth health(check_of(castellan::conf::HealthCheckKind::none));
    CHECK_FALSE(health.has_active_check());
    health.on_connect_failed(t0, "refused");
    auto change = health.on_connect_failed(t0, "refused");
    REQUIRE(change);
    CHECK_FALSE(health.usable(t0 + 5s));
    CHECK(health.usable(t0 + 11s));
    health.on_connect_ok();
    CHECK(health.usable(t0));
}
