// Process-wide limits read or set at start.
#pragma once

#include <cstddef>
#include <cstdint>

namespace castellan::proxy {

struct FileLimit {
    std::uint64_t soft_before = 0;
    std::uint64_t soft_after = 0;
    std::uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit: Debian's soft default of 1024
// is a few hundred proxied connections (each takes two descriptors).
FileLimit raise_file_limit();

// How many descriptors this process has open now (0 if /proc cannot tell).
std::size_t open_descriptor_count();

// How many spare pipes each worker may keep for splice(2): 64, fewer when the
// file limit is small, so that spare pipes never crowd out connections.
std::size_t spare_pipes_per_worker(std::uint64_t file_limit, std::size_t workers);

// How many proxied connections the process can hold at once with `file_limit`
// descriptors: each takes two (client and real server), after what is already
// open, the workers' spare pipes, and headroom for health checks, the admin API
// and the pipes of bulk transfers. At least 1. Accepting beyond it would only
// take descriptors that the connects to real servers then lack, so the workers
// leave further clients in the accept backlog instead.
std::uint64_t session_capacity(std::uint64_t file_limit, std::size_t open_now, std::size_t workers);

// The number of CPUs this process may run on (its affinity mask), at least 1.
unsigned usable_cpu_count();

}  // namespace castellan::proxy
