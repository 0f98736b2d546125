#include "persistence/round_robin.hpp"

#include "persistence/pick_request_view.hpp"

namespace castellan::persistence {

RoundRobinScheduler::RoundRobinScheduler(std::size_t server_count) : count_(server_count) {}

std::optional<std::size_t> RoundRobinScheduler::pick(const PickRequest& request) {
    std::size_t eligible = 0;
    for (std::size_t i = 0; i < count_; ++i) eligible += is_eligible(request, i) ? 1 : 0;
    if (eligible == 0) return std::nullopt;  // no turn is used up when nothing can be picked

    // Relaxed: the counter orders nothing but itself; fetch_add alone makes each
    // turn number unique, which is all exactness needs.
    const std::uint64_t turn = turn_.fetch_add(1, std::memory_order_relaxed);
    std::size_t wanted = static_cast<std::size_t>(turn % eligible);
    for (std::size_t i = 0; i < count_; ++i) {
        if (!is_eligible(request, i)) continue;
        if (wanted == 0) return i;
        --wanted;
    }
    return std::nullopt;  // not reached: `wanted` < number of eligible servers
}

}  // namespace castellan::persistence
