#include "healthcheck/passive_health.hpp"

#include <catch2/catch.hpp>

using castellan::healthcheck::PassiveHealth;
using namespace std::chrono_literals;

TEST_CASE("passive health skips a server after fall failed connects in a row", "[healthcheck]") {
    PassiveHealth health(2);
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    CHECK(health.available(t0));
    CHECK_FALSE(health.on_connect_failed(t0));
    CHECK(health.available(t0));
    CHECK(health.on_connect_failed(t0 + 1s));  // the second in a row takes it out
    CHECK_FALSE(health.available(t0 + 2s));
    CHECK_FALSE(health.available(t0 + 10s));
    CHECK(health.available(t0 + 11s));  // tried again 10 s later
}

TEST_CASE("passive health: a success resets the count", "[healthcheck]") {
    PassiveHealth health(2);
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    health.on_connect_failed(t0);
    health.on_connect_ok();
    CHECK_FALSE(health.on_connect_failed(t0));
    CHECK(health.available(t0));
    CHECK(health.failures_in_a_row() == 1);
}

TEST_CASE("passive health: after the skip one more failure skips again", "[healthcheck]") {
    PassiveHealth health(3);
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    health.on_connect_failed(t0);
    health.on_connect_failed(t0);
    CHECK(health.on_connect_failed(t0));
    CHECK(health.available(t0 + 10s));
    CHECK(health.on_connect_failed(t0 + 10s));
    CHECK_FALSE(health.available(t0 + 15s));
    health.on_connect_ok();
    CHECK(health.available(t0 + 15s));
}
