#include "proxy/log_throttle.hpp"

namespace castellan::proxy {

std::optional<std::uint64_t> LogThrottle::admit(clock::time_point now) {
    const clock::rep at = now.time_since_epoch().count();
    clock::rep next = next_.load(std::memory_order_relaxed);
    while (at >= next) {
        // The winner of this exchange logs; a loser sees the new `next` and is
        // left out (or retries if the clock moved past it meanwhile).
        if (next_.compare_exchange_weak(next, at + period_.count(), std::memory_order_relaxed)) {
            return left_out_.exchange(0, std::memory_order_relaxed);
        }
    }
    left_out_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
}

}  // namespace castellan::proxy
