#include "healthcheck/server_health.hpp"

namespace castellan::healthcheck {

ServerHealth::ServerHealth(const conf::HealthCheck& check)
    : active_(check.type != conf::HealthCheckKind::none),
      passive_(check.fall),
      machine_(check.rise, check.fall) {}

ServerHealth::ServerHealth(const conf::HealthCheck& check, const ServerHealth& before)
    : active_(check.type != conf::HealthCheckKind::none),
      passive_(check.fall),
      machine_(check.rise, check.fall,
               active_ && before.active_ && !before.up_.load(std::memory_order_relaxed) ? Health::down : Health::up),
      last_(before.last_check()) {
    up_.store(machine_.health() == Health::up, std::memory_order_relaxed);
}

bool ServerHealth::usable(std::chrono::steady_clock::time_point now) const {
    if (!active_) return passive_.available(now);
    return up_.load(std::memory_order_relaxed);
}

std::optional<HealthChange> ServerHealth::on_check(bool ok, std::chrono::milliseconds latency, std::string detail,
                                                   std::chrono::system_clock::time_point at) {
    std::lock_guard lock(mutex_);
    const Health before = machine_.health();
    const bool changed = ok ? machine_.on_check_passed() : machine_.on_check_failed();
    failure_hint_.store(machine_.failures_in_a_row(), std::memory_order_relaxed);
    up_.store(machine_.health() == Health::up, std::memory_order_relaxed);
    last_ = LastCheck{ok, at, latency, detail};
    if (!changed) return std::nullopt;
    return HealthChange{before, machine_.health(), std::move(detail), true};
}

std::optional<HealthChange> ServerHealth::on_connect_failed(std::chrono::steady_clock::time_point now,
                                                            const std::string& reason) {
    if (!active_) {
        if (!passive_.on_connect_failed(now)) return std::nullopt;
        return HealthChange{Health::up, Health::down, reason + " (skipped for 10 s)", false};
    }
    std::lock_guard lock(mutex_);
    const Health before = machine_.health();
    const bool changed = machine_.on_connect_failed();
    failure_hint_.store(machine_.failures_in_a_row(), std::memory_order_relaxed);
    up_.store(machine_.health() == Health::up, std::memory_order_relaxed);
    if (!changed) return std::nullopt;
    return HealthChange{before, machine_.health(), "proxy connect failed: " + reason, false};
}

void ServerHealth::on_connect_ok() {
    if (!active_) {
        if (passive_.failures_in_a_row() != 0) passive_.on_connect_ok();
        return;
    }
    if (failure_hint_.load(std::memory_order_relaxed) == 0) return;
    std::lock_guard lock(mutex_);
    machine_.on_connect_succeeded();
    failure_hint_.store(machine_.failures_in_a_row(), std::memory_order_relaxed);
}

std::optional<LastCheck> ServerHealth::last_check() const {
    std::lock_guard lock(mutex_);
    return last_;
}

}  // namespace castellan::healthcheck
