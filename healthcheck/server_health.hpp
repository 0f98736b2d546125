// The health of one real server address under one check definition, shared by
// every virtual service that uses that pair (one check runs for all of them).
//
// Active check types (tcp, http, https, smtp): a rise/fall state machine fed by
// check results and by the proxy's connect results (a failed connect counts like a
// failed check, so a dead server is avoided before its next check; a successful
// one resets the failure count). Type `none`: only the proxy's connects count, and
// `fall` failures in a row skip the server for 10 s (PassiveHealth).
//
// Thread-safe: the monitor (control thread) and every worker report into it;
// workers read usable() lock-free on every pick.
#pragma once

#include "conf/config.hpp"
#include "healthcheck/health_state.hpp"
#include "healthcheck/passive_health.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>

namespace castellan::healthcheck {

// The last active check, as the status API shows it.
struct LastCheck {
    bool ok = false;
    std::chrono::system_clock::time_point at{};
    std::chrono::milliseconds latency{0};
    std::string detail;
};

// A change of health, for the log and for on_server_down.
struct HealthChange {
    Health from = Health::up;
    Health to = Health::up;
    std::string reason;  // "connect refused", "timeout after 1000 ms", "status 500", ...
    bool by_active_check = false;  // passive failures alone never close connections
};

class ServerHealth {
public:
    explicit ServerHealth(const conf::HealthCheck& check);
    // A new check of a server that `before` checked another way (a reload changed
    // the check): a server found down stays down until the new check passes
    // `rise` times, instead of taking clients again at once, and the last result
    // is shown until the new check has one.
    ServerHealth(const conf::HealthCheck& check, const ServerHealth& before);

    bool has_active_check() const { return active_; }
    // May the server take new clients at `now`? Lock-free.
    bool usable(std::chrono::steady_clock::time_point now) const;
    // Down as the status page shows it (for type none: skipped after failures).
    bool down(std::chrono::steady_clock::time_point now) const { return !usable(now); }

    // A result of the active check. Gives the change it caused, if any.
    std::optional<HealthChange> on_check(bool ok, std::chrono::milliseconds latency, std::string detail,
                                         std::chrono::system_clock::time_point at);
    // The proxy's connects, from any worker.
    std::optional<HealthChange> on_connect_failed(std::chrono::steady_clock::time_point now,
                                                  const std::string& reason);
    void on_connect_ok();

    std::optional<LastCheck> last_check() const;

private:
    const bool active_;
    PassiveHealth passive_;  // type none
    mutable std::mutex mutex_;  // guards machine_ and last_
    HealthStateMachine machine_;
    std::optional<LastCheck> last_;
    std::atomic<bool> up_{true};
    // Non-zero while failures are counted: lets on_connect_ok() skip the lock on
    // the common path.
    std::atomic<int> failure_hint_{0};
};

}  // namespace castellan::healthcheck
