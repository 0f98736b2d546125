// least_connections: the eligible server with the lowest active/weight.
#pragma once

#include "persistence/scheduler.hpp"

#include <atomic>
#include <cstdint>
#include <vector>

namespace castellan::persistence {

// Loads are compared as active[i] * weight[j] < active[j] * weight[i] (nginx's
// least_conn), exact integers, no division and no floating point. Servers tied at
// the lowest load share it round robin: a shared atomic counter, bumped only when
// there is a tie, gives turn t to the (t mod k)-th of the k tied servers, so an
// idle pool (all at 0) is served exactly in turn across threads.
//
// `active` is read as given: the caller's counts are a snapshot, and two threads
// picking at once may both see the same server as least loaded (as in every
// balancer with per-thread loops); the next picks see the result.
class LeastConnectionsScheduler final : public Scheduler {
public:
    explicit LeastConnectionsScheduler(const std::vector<ServerEntry>& servers);

    // Any thread. O(n).
    std::optional<std::size_t> pick(const PickRequest& request) override;

private:
    std::vector<std::uint64_t> weights_;
    alignas(64) std::atomic<std::uint64_t> tie_turn_{0};
};

}  // namespace castellan::persistence
