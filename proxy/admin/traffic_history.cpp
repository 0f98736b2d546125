#include "proxy/admin/traffic_history.hpp"

#include <cmath>

namespace castellan::proxy::admin {

namespace {

void push_bounded(std::deque<double>& series, double value, std::size_t points) {
    series.push_back(value);
    while (series.size() > points) series.pop_front();
}

nlohmann::json rounded(const std::vector<double>& series) {
    nlohmann::json out = nlohmann::json::array();
    for (double value : series) out.push_back(std::round(value * 1000.0) / 1000.0);
    return out;
}

}  // namespace

TrafficHistory::TrafficHistory(std::chrono::seconds step, std::size_t points) : step_(step), points_(points) {}

void TrafficHistory::record(const std::string& key, const TrafficTotals& totals,
                            std::chrono::steady_clock::time_point now) {
    auto [it, inserted] = series_.try_emplace(key);
    Series& series = it->second;
    series.recorded = true;
    if (inserted) {
        series.last = totals;
        series.last_at = now;
        return;
    }
    const bool went_down = totals.connections < series.last.connections || totals.bytes_in < series.last.bytes_in ||
                           totals.bytes_out < series.last.bytes_out;
    if (went_down) {
        series = Series{totals, now, {}, {}, {}, true};
        return;
    }
    const auto elapsed = now - series.last_at;
    // Also refuses elapsed <= 0 (a stale reading), which would divide by zero.
    if (elapsed <= std::chrono::steady_clock::duration::zero() || elapsed * 2 < step_) return;
    const double seconds = std::chrono::duration<double>(elapsed).count();
    push_bounded(series.connections_per_s, static_cast<double>(totals.connections - series.last.connections) / seconds,
                 points_);
    push_bounded(series.bytes_in_per_s, static_cast<double>(totals.bytes_in - series.last.bytes_in) / seconds, points_);
    push_bounded(series.bytes_out_per_s, static_cast<double>(totals.bytes_out - series.last.bytes_out) / seconds,
                 points_);
    series.last = totals;
    series.last_at = now;
}

void TrafficHistory::forget_unrecorded() {
    std::erase_if(series_, [](const auto& entry) { return !entry.second.recorded; });
    for (auto& entry : series_) entry.second.recorded = false;
}

TrafficRates TrafficHistory::rates(const std::string& key) const {
    TrafficRates out;
    auto it = series_.find(key);
    if (it == series_.end()) return out;
    const Series& series = it->second;
    out.connections_per_s.assign(series.connections_per_s.begin(), series.connections_per_s.end());
    out.bytes_in_per_s.assign(series.bytes_in_per_s.begin(), series.bytes_in_per_s.end());
    out.bytes_out_per_s.assign(series.bytes_out_per_s.begin(), series.bytes_out_per_s.end());
    return out;
}

nlohmann::json rates_json(const TrafficRates& rates, std::chrono::seconds step) {
    return {
        {"step_s", step.count()},
        {"connections_per_s", rounded(rates.connections_per_s)},
        {"bytes_in_per_s", rounded(rates.bytes_in_per_s)},
        {"bytes_out_per_s", rounded(rates.bytes_out_per_s)},
    };
}

}  // namespace castellan::proxy::admin
