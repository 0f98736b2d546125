#include "proxy/time_format.hpp"

#include <fmt/format.h>

#include <ctime>

namespace castellan::proxy {

std::string rfc3339_utc(std::chrono::system_clock::time_point time, bool with_millis) {
    using namespace std::chrono;
    std::time_t seconds = system_clock::to_time_t(time);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    std::string text = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", utc.tm_year + 1900, utc.tm_mon + 1,
                                   utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    if (with_millis) {
        auto millis = duration_cast<milliseconds>(time.time_since_epoch()).count() % 1000;
        if (millis < 0) millis += 1000;
        text += fmt::format(".{:03}", millis);
    }
    text += 'Z';
    return text;
}

}  // namespace castellan::proxy
