#include "healthcheck/passive_health.hpp"

namespace castellan::healthcheck {
namespace {

std::int64_t to_ns(PassiveHealth::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

PassiveHealth::PassiveHealth(int fall, std::chrono::milliseconds retry_after)
    : fall_(fall < 1 ? 1 : fall), retry_after_(retry_after) {}

void PassiveHealth::on_connect_ok() {
    streak_.store(0, std::memory_order_relaxed);
    skip_until_ns_.store(0, std::memory_order_relaxed);
}

bool PassiveHealth::on_connect_failed(time_point now) {
    int streak = streak_.fetch_add(1, std::memory_order_relaxed) + 1;
    if (streak < fall_) return false;
    // Keep the streak at `fall` so that, once the skip ends, one more failure
    // is enough to skip the server again.
    streak_.store(fall_, std::memory_order_relaxed);
    std::int64_t until = to_ns(now + retry_after_);
    std::int64_t previous = skip_until_ns_.exchange(until, std::memory_order_relaxed);
    return previous <= to_ns(now);  // it was available until this failure
}

bool PassiveHealth::available(time_point now) const {
    return to_ns(now) >= skip_until_ns_.load(std::memory_order_relaxed);
}

}  // namespace castellan::healthcheck
