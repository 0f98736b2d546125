#include "proxy/system_limits.hpp"

#include <boost/asio/error.hpp>

#include <cerrno>
#include <sched.h>
#include <sys/resource.h>

#include <thread>

namespace castellan::proxy {

bool is_out_of_resources(const boost::system::error_code& error) {
    namespace error_codes = boost::asio::error;
    return error == error_codes::no_descriptors || error == error_codes::no_buffer_space ||
           error == error_codes::no_memory ||
           (error.category() == boost::system::system_category() && error.value() == ENFILE);
}

FileLimit raise_file_limit() {
    FileLimit result;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return result;
    result.soft_before = limit.rlim_cur;
    result.hard = limit.rlim_max;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) result.soft_after = limit.rlim_cur;
    }
    if (result.soft_after == 0) result.soft_after = result.soft_before;
    return result;
}

unsigned usable_cpu_count() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        int count = CPU_COUNT(&set);
        if (count > 0) return static_cast<unsigned>(count);
    }
    unsigned fallback = std::thread::hardware_concurrency();
    return fallback == 0 ? 1 : fallback;
}

}  // namespace castellan::proxy
