#include "proxy/lasting_state.hpp"

namespace castellan::proxy {

ByteCounters::ByteCounters(std::size_t workers)
    : count_(workers == 0 ? 1 : workers), slots_(std::make_unique<Slot[]>(count_)) {}

std::uint64_t ByteCounters::in() const {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < count_; ++i) sum += slots_[i].in.load(std::memory_order_relaxed);
    return sum;
}

std::uint64_t ByteCounters::out() const {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < count_; ++i) sum += slots_[i].out.load(std::memory_order_relaxed);
    return sum;
}

void AdminStateCell::set(AdminState wanted, time_point now) {
    const Value current = load();
    if (wanted == current.state) return;
    packed_.store(pack({wanted, wanted == AdminState::draining ? now : time_point{}}), std::memory_order_release);
}

// The state in the low two bits, the steady clock's count (nanoseconds since
// boot on Linux: far below 2^62) above them.
std::uint64_t AdminStateCell::pack(Value value) {
    const auto ticks = static_cast<std::uint64_t>(value.since.time_since_epoch().count());
    return (ticks << 2) | static_cast<std::uint64_t>(value.state);
}

AdminStateCell::Value AdminStateCell::unpack(std::uint64_t packed) {
    Value value;
    value.state = static_cast<AdminState>(packed & 3u);
    value.since = time_point(time_point::duration(static_cast<time_point::rep>(packed >> 2)));
    return value;
}

}  // namespace castellan::proxy
