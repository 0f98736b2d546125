// Process-wide limits read or set at start.
#pragma once

#include <boost/system/error_code.hpp>

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

// Is `error` this process or machine running out of descriptors or memory
// (EMFILE, ENFILE, ENOBUFS, ENOMEM)? Such an error is local: it says nothing of
// the peer, and only a closing connection clears it.
bool is_out_of_resources(const boost::system::error_code& error);

// The number of CPUs this process may run on (its affinity mask), at least 1.
unsigned usable_cpu_count();

}  // namespace castellan::proxy
