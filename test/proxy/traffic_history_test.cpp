#include "proxy/admin/traffic_history.hpp"

#include <catch2/catch.hpp>

using castellan::proxy::admin::rates_json;
using castellan::proxy::admin::TrafficHistory;
using castellan::proxy::admin::TrafficRates;
using castellan::proxy::admin::TrafficTotals;
using namespace std::chrono_literals;

namespace {

const auto t0 = std::chrono::steady_clock::time_point() + 1000s;

TrafficTotals totals(std::uint64_t connections, std::uint64_t bytes_in, std::uint64_t bytes_out) {
    return TrafficTotals{connections, bytes_in, bytes_out};
}

}  // namespace

TEST_CASE("traffic history: no rate until two samples, then per second", "[traffic_history]") {
    TrafficHistory history(5s, 120);
    CHECK(history.step() == 5s);
    CHECK(history.rates("cas-rpc").connections_per_s.empty());
    history.record("cas-rpc", totals(10, 1000, 2000), t0);
    CHECK(history.rates("cas-rpc").connections_per_s.empty());
    CHECK(history.rates("cas-rpc").bytes_in_per_s.empty());
    history.record("cas-rpc", totals(20, 6000, 2000), t0 + 5s);
    const TrafficRates rates = history.rates("cas-rpc");
    REQUIRE(rates.connections_per_s.size() == 1);
    REQUIRE(rates.bytes_in_per_s.size() == 1);
    REQUIRE(rates.bytes_out_per_s.size() == 1);
    CHECK(rates.connections_per_s[0] == Approx(2.0));
    CHECK(rates.bytes_in_per_s[0] == Approx(1000.0));
    CHECK(rates.bytes_out_per_s[0] == Approx(0.0));
}

TEST_CASE("traffic history: rates use the time actually elapsed, oldest first", "[traffic_history]") {
    TrafficHistory history(5s, 120);
    history.record("cas-rpc/cas1", totals(0, 0, 0), t0);
    history.record("cas-rpc/cas1", totals(10, 0, 0), t0 + 5s);
    // The timer fired late: 10 more connections over 8 s, not over one 5 s step.
    history.record("cas-rpc/cas1", totals(20, 0, 0), t0 + 13s);
    history.record("cas-rpc/cas1", totals(20, 0, 0), t0 + 18s);
    const auto rates = history.rates("cas-rpc/cas1").connections_per_s;
    REQUIRE(rates.size() == 3);
    CHECK(rates[0] == Approx(2.0));
    CHECK(rates[1] == Approx(1.25));
    CHECK(rates[2] == Approx(0.0));
}

TEST_CASE("traffic history: keeps at most `points` values, dropping the oldest", "[traffic_history]") {
    TrafficHistory history(1s, 3);
    for (std::uint64_t i = 0; i <= 5; ++i) {
        // i * i connections at i seconds: rates 1, 3, 5, 7, 9.
        history.record("vs", totals(i * i, 0, 0), t0 + std::chrono::seconds(i));
    }
    CHECK(history.rates("vs").connections_per_s == std::vector<double>{5.0, 7.0, 9.0});
    CHECK(history.rates("vs").bytes_in_per_s.size() == 3);
}

TEST_CASE("traffic history: a counter that went down restarts its series", "[traffic_history]") {
    TrafficHistory history(5s, 120);
    history.record("vs/cas1", totals(100, 10000, 10000), t0);
    history.record("vs/cas1", totals(110, 20000, 20000), t0 + 5s);
    REQUIRE(history.rates("vs/cas1").connections_per_s.size() == 1);

    // A reload created the server anew: its counters start again near 0.
    // Neither a negative rate nor a wrapped-around uint64 difference.
    history.record("vs/cas1", totals(3, 300, 100), t0 + 10s);
    CHECK(history.rates("vs/cas1").connections_per_s.empty());
    CHECK(history.rates("vs/cas1").bytes_out_per_s.empty());

    history.record("vs/cas1", totals(8, 800, 600), t0 + 15s);
    const auto rates = history.rates("vs/cas1");
    REQUIRE(rates.connections_per_s.size() == 1);
    CHECK(rates.connections_per_s[0] == Approx(1.0));
    CHECK(rates.bytes_in_per_s[0] == Approx(100.0));
    CHECK(rates.bytes_out_per_s[0] == Approx(100.0));
}

TEST_CASE("traffic history: one counter going down is enough to restart", "[traffic_history]") {
    TrafficHistory history(5s, 120);
    history.record("vs", totals(5, 500, 500), t0);
    history.record("vs", totals(6, 600, 400), t0 + 5s);  // bytes_out went down, others up
    CHECK(history.rates("vs").connections_per_s.empty());
    history.record("vs", totals(7, 700, 500), t0 + 10s);
    CHECK(history.rates("vs").bytes_out_per_s == std::vector<double>{20.0});
}

TEST_CASE("traffic history: a sample too soon after the previous one is not a point", "[traffic_history]") {
    TrafficHistory history(5s, 120);
    history.record("vs", totals(0, 0, 0), t0);
    history.record("vs", totals(1, 0, 0), t0 + 1s);  // under half a step: ignored
    CHECK(history.rates("vs").connections_per_s.empty());
    history.record("vs", totals(2, 0, 0), t0);  // no time elapsed (stale reading): ignored, no division by 0
    CHECK(history.rates("vs").connections_per_s.empty());
    history.record("vs", totals(10, 0, 0), t0 + 5s);  // measured from t0, the sample kept
    CHECK(history.rates("vs").connections_per_s == std::vector<double>{2.0});
}

TEST_CASE("traffic history: keys are independent", "[traffic_history]") {
    TrafficHistory history(5s, 120);
    history.record("vs", totals(0, 0, 0), t0);
    history.record("vs/cas1", totals(0, 0, 0), t0);
    history.record("vs", totals(10, 0, 0), t0 + 5s);
    history.record("vs/cas1", totals(5, 0, 0), t0 + 5s);
    CHECK(history.rates("vs").connections_per_s == std::vector<double>{2.0});
    CHECK(history.rates("vs/cas1").connections_per_s == std::vector<double>{1.0});
    CHECK(history.rates("vs/cas2").connections_per_s.empty());
}

TEST_CASE("traffic history: forgets keys not recorded since the previous call", "[traffic_history]") {
    TrafficHistory history(5s, 120);
    history.record("vs/cas1", totals(0, 0, 0), t0);
    history.record("vs/cas2", totals(0, 0, 0), t0);
    history.record("vs/cas1", totals(5, 0, 0), t0 + 5s);
    history.record("vs/cas2", totals(5, 0, 0), t0 + 5s);
    history.forget_unrecorded();  // both were recorded: both kept
    CHECK(history.rates("vs/cas1").connections_per_s.size() == 1);
    CHECK(history.rates("vs/cas2").connections_per_s.size() == 1);

    // A reload removed cas2: only cas1 is recorded from now on.
    history.record("vs/cas1", totals(10, 0, 0), t0 + 10s);
    history.forget_unrecorded();
    CHECK(history.rates("vs/cas1").connections_per_s.size() == 2);
    CHECK(history.rates("vs/cas2").connections_per_s.empty());

    // Added back later, cas2 starts a fresh series (one sample: no rate yet),
    // even though its counters did not go down.
    history.record("vs/cas2", totals(50, 0, 0), t0 + 15s);
    CHECK(history.rates("vs/cas2").connections_per_s.empty());

    // Nothing recorded between two calls: everything goes.
    history.forget_unrecorded();
    history.forget_unrecorded();
    CHECK(history.rates("vs/cas1").connections_per_s.empty());
    CHECK(history.rates("vs/cas2").connections_per_s.empty());
}

TEST_CASE("traffic history: rates_json names the series and the step", "[traffic_history]") {
    TrafficRates rates;
    rates.connections_per_s = {0.2, 1.0 / 3.0};
    rates.bytes_in_per_s = {1024.0, 2048.5};
    rates.bytes_out_per_s = {0.0, 12.3456};
    const auto json = rates_json(rates, 5s);
    CHECK(json["step_s"] == 5);
    CHECK(json["connections_per_s"] == nlohmann::json::parse("[0.2, 0.333]"));
    CHECK(json["bytes_in_per_s"] == nlohmann::json::parse("[1024.0, 2048.5]"));
    CHECK(json["bytes_out_per_s"] == nlohmann::json::parse("[0.0, 12.346]"));
    CHECK(json.dump().find("0.333") != std::string::npos);

    const auto empty = rates_json(TrafficRates{}, 5s);
    CHECK(empty["connections_per_s"] == nlohmann::json::array());
    CHECK(empty["bytes_in_per_s"] == nlohmann::json::array());
    CHECK(empty["bytes_out_per_s"] == nlohmann::json::array());
}
