#include "proxy/time_format.hpp"

#include <catch2/catch.hpp>

using castellan::proxy::rfc3339_utc;

TEST_CASE("RFC 3339 UTC times", "[proxy]") {
    // 2026-11-22T10:00:01Z is 1795341601 s after the epoch.
    const auto time = std::chrono::system_clock::time_point(std::chrono::seconds(1795341601)) +
                      std::chrono::milliseconds(42);
    CHECK(rfc3339_utc(time) == "2026-11-22T10:00:01Z");
    CHECK(rfc3339_utc(time, true) == "2026-11-22T10:00:01.042Z");
}
