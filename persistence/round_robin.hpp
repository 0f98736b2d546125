// round_robin: each eligible server in turn, weights ignored.
#pragma once

#include "persistence/scheduler.hpp"

#include <atomic>
#include <cstdint>

namespace castellan::persistence {

// Lock-free and exact across threads: one shared atomic counter hands every pick
// its own turn number, so N picks over n servers (all eligible) give each server
// exactly N/n whatever the interleaving of the callers.
//
// With some servers ineligible, turn t goes to the (t mod m)-th of the m eligible
// servers, not to "the next eligible after t mod n": the latter would hand a down
// server's whole share to its neighbour (double load on one server), this keeps the
// remaining servers even.
class RoundRobinScheduler final : public Scheduler {
public:
    explicit RoundRobinScheduler(std::size_t server_count);

    // Any thread. O(n) in the number of servers.
    std::optional<std::size_t> pick(const PickRequest& request) override;

private:
    std::size_t count_;
    alignas(64) std::atomic<std::uint64_t> turn_{0};
};

}  // namespace castellan::persistence
