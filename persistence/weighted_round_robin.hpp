// weighted_round_robin: servers in proportion to their weights, smoothly interleaved.
#pragma once

#include "persistence/scheduler.hpp"

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

namespace castellan::persistence {

// nginx's smooth weighted round robin, run once: for weights w (total W) gives the
// W server indices of one cycle, each server i appearing w[i] times and spread out
// (5:1:1 gives a a b a c a a, never five a in a row). Ties go to the lower index.
// Takes weights >= 1. O(W * n); W is at most 256 * n with config weights.
std::vector<std::uint32_t> smooth_weighted_sequence(std::span<const std::uint32_t> weights);

// Lock-free and exact across threads: the cycle is computed once at build (weights
// divided by their gcd first, so 2:2 is the cycle a b), and a shared atomic counter
// gives every pick its own slot in it. With every server eligible, N picks (N a
// multiple of the cycle) follow the cycle exactly whatever the thread count.
//
// With some servers ineligible, the cycle used is the full one with their slots
// removed, and turn t takes the (t mod E)-th remaining slot (E: the eligible
// weight). The rest keep their proportions and their interleave; a down server's
// share is spread over the others by weight rather than all landing on whichever
// server follows it in the cycle.
class WeightedRoundRobinScheduler final : public Scheduler {
public:
    explicit WeightedRoundRobinScheduler(const std::vector<ServerEntry>& servers);

    // Any thread. O(n) with every server eligible; otherwise
    // O(n log(W) log(max weight)) to find the slot.
    std::optional<std::size_t> pick(const PickRequest& request) override;

    // The cycle, for tests and the status page.
    const std::vector<std::uint32_t>& cycle() const { return cycle_; }

private:
    // The slot of the (rank)-th slot (0-based) whose server is eligible.
    std::size_t nth_eligible_slot(const PickRequest& request, std::uint64_t rank) const;
    // How many slots in [0, slot] belong to eligible servers.
    std::uint64_t eligible_slots_up_to(const PickRequest& request, std::size_t slot) const;

    std::vector<std::uint32_t> weights_;      // divided by their gcd
    std::vector<std::uint32_t> cycle_;        // server index per slot
    std::vector<std::uint32_t> slot_starts_;  // n + 1 offsets into slots_by_server_
    std::vector<std::uint32_t> slots_by_server_;  // each server's slots, ascending
    std::uint64_t total_weight_ = 0;
    alignas(64) std::atomic<std::uint64_t> turn_{0};
};

}  // namespace castellan::persistence
