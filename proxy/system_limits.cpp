#include "proxy/system_limits.hpp"

#include <cerrno>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <thread>

namespace castellan::proxy {

std::size_t open_descriptor_count() {
    std::error_code error;
    std::size_t count = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
         !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
        ++count;
    }
    // The iterator's own descriptor was counted too.
    return count > 0 ? count - 1 : 0;
}

std::size_t spare_pipes_per_worker(std::uint64_t file_limit, std::size_t workers) {
    constexpr std::uint64_t most = 64;
    const std::uint64_t share = file_limit / 16 / std::max<std::size_t>(workers, 1) / 2;
    return static_cast<std::size_t>(std::min(most, share));
}

std::uint64_t session_capacity(std::uint64_t file_limit, std::size_t open_now, std::size_t workers) {
    const std::uint64_t pipes = 2 * spare_pipes_per_worker(file_limit, workers) * workers;
    const std::uint64_t headroom = 16 + file_limit / 16;
    const std::uint64_t reserved = open_now + pipes + headroom;
    if (file_limit <= reserved + 2) return 1;
    return (file_limit - reserved) / 2;
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
