#include "healthcheck/health_state.hpp"

#include <catch2/catch.hpp>

using castellan::healthcheck::Health;
using castellan::healthcheck::HealthStateMachine;

TEST_CASE("health: a new server starts up", "[healthcheck]") {
    HealthStateMachine machine(2, 2);
    CHECK(machine.health() == Health::up);
}

TEST_CASE("health: fall failures in a row mark it down, rise passes bring it up", "[healthcheck]") {
    HealthStateMachine machine(3, 2);
    CHECK_FALSE(machine.on_check_failed());
    CHECK(machine.health() == Health::up);
    CHECK(machine.on_check_failed());
    CHECK(machine.health() == Health::down);
    CHECK_FALSE(machine.on_check_failed());  // already down: no new transition

    CHECK_FALSE(machine.on_check_passed());
    CHECK_FALSE(machine.on_check_passed());
    CHECK(machine.on_check_passed());
    CHECK(machine.health() == Health::up);
}

TEST_CASE("health: a pass between failures resets the count", "[healthcheck]") {
    HealthStateMachine machine(2, 2);
    machine.on_check_failed();
    machine.on_check_passed();
    CHECK_FALSE(machine.on_check_failed());
    CHECK(machine.health() == Health::up);
}

TEST_CASE("health: a failure while rising restarts the rise", "[healthcheck]") {
    HealthStateMachine machine(2, 1);
    CHECK(machine.on_check_failed());
    machine.on_check_passed();
    machine.on_check_failed();
    CHECK_FALSE(machine.on_check_passed());
    CHECK(machine.on_check_passed());
    CHECK(machine.health() == Health::up);
}

TEST_CASE("health: passive connect results", "[healthcheck]") {
    HealthStateMachine machine(2, 2);
    machine.on_connect_failed();
    machine.on_connect_succeeded();  // resets the failure count
    CHECK_FALSE(machine.on_connect_failed());
    CHECK(machine.on_connect_failed());
    CHECK(machine.health() == Health::down);
    machine.on_connect_succeeded();  // a lucky connect does not bring it up: checks do
    CHECK(machine.health() == Health::down);
}
