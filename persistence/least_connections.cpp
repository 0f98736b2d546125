#include "persistence/least_connections.hpp"

#include "persistence/pick_request_view.hpp"

namespace castellan::persistence {

LeastConnectionsScheduler::LeastConnectionsScheduler(const std::vector<ServerEntry>& servers) {
    weights_.reserve(servers.size());
    for (const auto& server : servers) weights_.push_back(effective_weight(server.weight));
}

std::optional<std::size_t> LeastConnectionsScheduler::pick(const PickRequest& request) {
    // First pass: the lowest load and how many servers share it. A product of a
    // 32-bit count and a weight fits 64 bits for any weight below 2^32.
    std::optional<std::size_t> best;
    std::size_t tied = 0;
    for (std::size_t i = 0; i < weights_.size(); ++i) {
        if (!is_eligible(request, i)) continue;
        if (!best) {
            best = i;
            tied = 1;
            continue;
        }
        const std::uint64_t mine = active_of(request, i) * weights_[*best];
        const std::uint64_t theirs = active_of(request, *best) * weights_[i];
        if (mine < theirs) {
            best = i;
            tied = 1;
        } else if (mine == theirs) {
            ++tied;
        }
    }
    if (!best || tied == 1) return best;

    // Second pass: the (turn mod tied)-th of the tied servers.
    const std::uint64_t turn = tie_turn_.fetch_add(1, std::memory_order_relaxed);
    std::size_t wanted = static_cast<std::size_t>(turn % tied);
    const std::uint64_t best_active = active_of(request, *best);
    const std::uint64_t best_weight = weights_[*best];
    for (std::size_t i = *best; i < weights_.size(); ++i) {
        if (!is_eligible(request, i)) continue;
        if (active_of(request, i) * best_weight != best_active * weights_[i]) continue;
        if (wanted == 0) return i;
        --wanted;
    }
    return best;  // not reached: `wanted` < number of tied servers
}

}  // namespace castellan::persistence
