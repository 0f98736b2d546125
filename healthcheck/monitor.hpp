// Runs the active checks: one loop per (real server address, check definition),
// on the control thread's event loop, never on a worker.
//
// Timing (INTERFACE.md): the first check of a target runs at a random point within
// its first interval, so that many servers are not probed in the same millisecond;
// later ones every interval_ms with at most 10 % jitter.
#pragma once

#include "conf/config.hpp"
#include "healthcheck/checker.hpp"
#include "healthcheck/server_health.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace castellan::healthcheck {

struct CheckTarget {
    std::shared_ptr<ServerHealth> health;
    conf::HealthCheck check;
    boost::asio::ip::tcp::endpoint endpoint;  // the check's port applied
    CheckContext context;
    std::string label;  // the address as configured, for logs
};

class HealthMonitor {
public:
    // Called on the control thread when a check changes a target's health.
    using ChangeHandler = std::function<void(const CheckTarget&, const HealthChange&)>;
    // Called on the control thread when a check could not be made for want of
    // something on this host (CheckResult::local): the result was not counted.
    using NotRunHandler = std::function<void(const CheckTarget&, const CheckResult&)>;

    HealthMonitor(boost::asio::any_io_executor executor, ChangeHandler on_change, NotRunHandler on_not_run = {});
    ~HealthMonitor();
    HealthMonitor(const HealthMonitor&) = delete;
    HealthMonitor& operator=(const HealthMonitor&) = delete;

    // Starts one loop per target (targets of type none are skipped). Call on the
    // control thread.
    void start(const std::vector<CheckTarget>& targets);
    // After a reload: keeps the loop of every target whose health object is still
    // used (its timing and state go on, no check restarts), ends the loops of
    // targets no longer used, starts loops for new ones. Control thread.
    void update(const std::vector<CheckTarget>& targets);
    std::size_t running() const { return loops_.size(); }
    // Ends every loop: sleeping ones at once, one in a check when it completes.
    void stop();

private:
    struct Loop;
    boost::asio::awaitable<void> run(std::shared_ptr<Loop> loop);
    void start_one(const CheckTarget& target);

    boost::asio::any_io_executor executor_;
    ChangeHandler on_change_;
    NotRunHandler on_not_run_;
    std::mt19937_64 random_;
    std::vector<std::shared_ptr<Loop>> loops_;
};

}  // namespace castellan::healthcheck
