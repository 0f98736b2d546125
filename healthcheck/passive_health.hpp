// Connect results seen by the proxy, as a health signal (INTERFACE.md, health_check).
//
// A failed connect counts like a failed check and a successful one resets the
// count. When `fall` connects in a row have failed, the server is skipped by new
// connections for `retry_after` (10 s), then tried again; one more failure skips it
// again, one success clears it. The active checker (healthcheck issue) decides
// `down`/`up` on top of this; this class is the part every check type shares.
//
// Thread-safe and lock-free: every worker reports into the same object. Pure: the
// caller passes the time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace castellan::healthcheck {

class PassiveHealth {
public:
    using time_point = std::chrono::steady_clock::time_point;

    explicit PassiveHealth(int fall, std::chrono::milliseconds retry_after = std::chrono::seconds(10));

    void on_connect_ok();
    // Counts one failed connect at `now`. Returns true when this failure made the
    // server unavailable (the caller logs that once).
    bool on_connect_failed(time_point now);
    // False while the server is being skipped after `fall` failures in a row.
    bool available(time_point now) const;
    int failures_in_a_row() const { return streak_.load(std::memory_order_relaxed); }

private:
    const int fall_;
    const std::chrono::milliseconds retry_after_;
    std::atomic<int> streak_{0};
    std::atomic<std::int64_t> skip_until_ns_{0};  // steady_clock, 0 = not skipped
};

}  // namespace castellan::healthcheck
