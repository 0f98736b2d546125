// Process-wide limits read or set at start.
#pragma once

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

// The number of CPUs this process may run on (its affinity mask), at least 1.
unsigned usable_cpu_count();

}  // namespace castellan::proxy
