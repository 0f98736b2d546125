// At most one log line per period for an event that comes in bursts.
//
// When castellan runs out of local ports, every new client fails the same way,
// hundreds a second: one line per failure would flood the journal and drop the
// lines that matter (the log drops what it cannot write). A throttle lets the
// first occurrence through, then one per `period`, each saying how many it left
// out since the last one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>

namespace castellan::proxy {

class LogThrottle {
public:
    using clock = std::chrono::steady_clock;
    static constexpr clock::duration default_period = std::chrono::seconds(10);

    explicit LogThrottle(clock::duration period = default_period) : period_(period) {}

    // One occurrence at `now`. Gives, when it is to be logged, the number of
    // occurrences left out since the previous logged one (0 for the first);
    // nullopt when it is to be left out (and is counted for the next line).
    // Lock-free; any thread: of occurrences racing at a period's start exactly
    // one is logged, and no left-out one is lost from the counts.
    std::optional<std::uint64_t> admit(clock::time_point now);

private:
    const clock::duration period_;
    // When the next line may go out, in clock ticks; the lowest value lets the
    // first occurrence through whatever the clock's epoch.
    std::atomic<clock::rep> next_{std::numeric_limits<clock::rep>::min()};
    std::atomic<std::uint64_t> left_out_{0};
};

}  // namespace castellan::proxy
