// Rates of traffic over the last minutes, per service and per real server, for
// the status page's figures and graphs. Pure: the caller brings the clock
// readings and the counter totals; nothing here reads a clock or does I/O.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace castellan::proxy::admin {

// The ever-growing counters of one service or real server at one moment.
struct TrafficTotals {
    std::uint64_t connections = 0;  // connections_total
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
};

// Per-second rates, oldest first, one value per recorded interval; the three
// series always have the same length.
struct TrafficRates {
    std::vector<double> connections_per_s;
    std::vector<double> bytes_in_per_s;
    std::vector<double> bytes_out_per_s;
};

// Keeps, per key, the last `points` rates computed from successive samples of
// its totals. A key is a stable name: "cas-rpc" for a service,
// "cas-rpc/cas1" for a real server of it.
//
// Not thread-safe: one thread owns it (the control thread, which samples every
// `step` and renders the status document). Memory: at most 3 * `points`
// doubles per key, and keys that stop being recorded are dropped by
// forget_unrecorded().
class TrafficHistory {
public:
    // step: how often the caller records (it labels the graphs' time axis);
    // points: how many rates each series keeps (120 at 5 s: 10 minutes).
    TrafficHistory(std::chrono::seconds step, std::size_t points);

    // Records `key`'s totals read at `now`. The rate added is the difference
    // to the previous sample divided by the time actually elapsed since it, so
    // a late timer does not inflate the figure. A sample taken less than half
    // a step after the previous one is not used (a double call would give a
    // noisy point) but still counts as "recorded". When any counter went down
    // (the thing was created anew by a reload), the series restarts from this
    // sample instead of showing a negative or wrapped-around rate.
    void record(const std::string& key, const TrafficTotals& totals, std::chrono::steady_clock::time_point now);

    // Drops every key not recorded since the previous call (a service or
    // server a reload removed), so the map does not grow with config churn.
    void forget_unrecorded();

    // The rates of `key`, oldest first; empty until it has two samples, and
    // for a key never recorded.
    TrafficRates rates(const std::string& key) const;

    std::chrono::seconds step() const { return step_; }

private:
    struct Series {
        TrafficTotals last;
        std::chrono::steady_clock::time_point last_at;
        std::deque<double> connections_per_s;
        std::deque<double> bytes_in_per_s;
        std::deque<double> bytes_out_per_s;
        bool recorded = true;  // since the last forget_unrecorded()
    };

    std::chrono::seconds step_;
    std::size_t points_;
    std::unordered_map<std::string, Series> series_;
};

// {"step_s": 5, "connections_per_s": [...], "bytes_in_per_s": [...],
//  "bytes_out_per_s": [...]}: the "rates" object of the status document.
// Values are rounded to 0.001 to keep the document small.
nlohmann::json rates_json(const TrafficRates& rates, std::chrono::seconds step);

}  // namespace castellan::proxy::admin
