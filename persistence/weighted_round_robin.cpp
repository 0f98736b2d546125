#include "persistence/weighted_round_robin.hpp"

#include "persistence/pick_request_view.hpp"

#include <algorithm>
#include <numeric>

namespace castellan::persistence {

std::vector<std::uint32_t> smooth_weighted_sequence(std::span<const std::uint32_t> weights) {
    std::int64_t total = 0;
    for (std::uint32_t weight : weights) total += weight;
    std::vector<std::uint32_t> sequence;
    sequence.reserve(static_cast<std::size_t>(total));
    // Each step every server gains its weight; the one with the most credit is
    // picked and pays the total. Over one cycle every credit returns to zero.
    std::vector<std::int64_t> credit(weights.size(), 0);
    for (std::int64_t step = 0; step < total; ++step) {
        std::size_t best = 0;
        for (std::size_t i = 0; i < weights.size(); ++i) {
            credit[i] += weights[i];
            if (credit[i] > credit[best]) best = i;
        }
        credit[best] -= total;
        sequence.push_back(static_cast<std::uint32_t>(best));
    }
    return sequence;
}

WeightedRoundRobinScheduler::WeightedRoundRobinScheduler(const std::vector<ServerEntry>& servers) {
    std::uint32_t divisor = 0;
    for (const auto& server : servers) divisor = std::gcd(divisor, effective_weight(server.weight));
    weights_.reserve(servers.size());
    for (const auto& server : servers) {
        weights_.push_back(effective_weight(server.weight) / divisor);
        total_weight_ += weights_.back();
    }
    cycle_ = smooth_weighted_sequence(weights_);

    // Each server's slots, grouped by server, to count eligible slots quickly.
    slot_starts_.assign(servers.size() + 1, 0);
    for (std::size_t i = 0; i < servers.size(); ++i) slot_starts_[i + 1] = slot_starts_[i] + weights_[i];
    slots_by_server_.resize(cycle_.size());
    std::vector<std::uint32_t> filled(slot_starts_.begin(), slot_starts_.end() - 1);
    for (std::size_t slot = 0; slot < cycle_.size(); ++slot) {
        slots_by_server_[filled[cycle_[slot]]++] = static_cast<std::uint32_t>(slot);
    }
}

std::optional<std::size_t> WeightedRoundRobinScheduler::pick(const PickRequest& request) {
    std::uint64_t eligible_weight = 0;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
        if (is_eligible(request, i)) eligible_weight += weights_[i];
    }
    if (eligible_weight == 0) return std::nullopt;

    // Relaxed: each pick needs only a turn number of its own.
    const std::uint64_t turn = turn_.fetch_add(1, std::memory_order_relaxed);
    if (eligible_weight == total_weight_) return cycle_[turn % total_weight_];
    return cycle_[nth_eligible_slot(request, turn % eligible_weight)];
}

std::uint64_t WeightedRoundRobinScheduler::eligible_slots_up_to(const PickRequest& request,
                                                               std::size_t slot) const {
    std::uint64_t count = 0;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
        if (!is_eligible(request, i)) continue;
        const auto first = slots_by_server_.begin() + slot_starts_[i];
        const auto last = slots_by_server_.begin() + slot_starts_[i + 1];
        count += static_cast<std::uint64_t>(std::upper_bound(first, last, slot) - first);
    }
    return count;
}

std::size_t WeightedRoundRobinScheduler::nth_eligible_slot(const PickRequest& request,
                                                          std::uint64_t rank) const {
    // The first slot by which rank + 1 eligible slots have been seen: the count only
    // grows there, so that slot's own server is eligible.
    std::size_t low = 0;
    std::size_t high = cycle_.size() - 1;
    while (low < high) {
        const std::size_t middle = low + (high - low) / 2;
        if (eligible_slots_up_to(request, middle) > rank) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    return low;
}

}  // namespace castellan::persistence
