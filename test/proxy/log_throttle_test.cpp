// LogThrottle: one line per period, with the count of what it left out.
#include "proxy/log_throttle.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using castellan::proxy::LogThrottle;
using namespace std::chrono_literals;

TEST_CASE("log throttle: the first passes, then one per period with the count left out", "[proxy]") {
    LogThrottle throttle(10s);
    const LogThrottle::clock::time_point t0{};  // the clock's epoch: the first must pass even there
    CHECK(throttle.admit(t0) == 0u);
    CHECK_FALSE(throttle.admit(t0));
    CHECK_FALSE(throttle.admit(t0 + 1s));
    CHECK_FALSE(throttle.admit(t0 + 9999ms));
    CHECK(throttle.admit(t0 + 10s) == 3u);  // three left out since the first
    CHECK_FALSE(throttle.admit(t0 + 15s));
    // A quiet spell: the next one passes at once, and says what was left out.
    CHECK(throttle.admit(t0 + 1h) == 1u);
    CHECK(throttle.admit(t0 + 2h) == 0u);
}

TEST_CASE("log throttle: the default period is 10 s", "[proxy]") {
    LogThrottle throttle;
    const auto now = LogThrottle::clock::now();
    CHECK(throttle.admit(now));
    CHECK_FALSE(throttle.admit(now + 9s));
    CHECK(throttle.admit(now + 10s));
}

TEST_CASE("log throttle: threads racing get one line and lose no count", "[proxy]") {
    LogThrottle throttle(1h);
    const auto now = LogThrottle::clock::now();
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                if (throttle.admit(now)) admitted.fetch_add(1);
            }
        });
    }
    for (auto& thread : threads) thread.join();
    CHECK(admitted.load() == 1);
    CHECK(throttle.admit(now + 1h) == 3999u);
}
