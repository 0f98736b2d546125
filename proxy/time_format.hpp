// Wall-clock times as text: RFC 3339, UTC.
#pragma once

#include <chrono>
#include <string>

namespace castellan::proxy {

// "2026-11-22T10:00:01Z", or with milliseconds "2026-11-22T10:00:01.123Z".
std::string rfc3339_utc(std::chrono::system_clock::time_point time, bool with_millis = false);

}  // namespace castellan::proxy
