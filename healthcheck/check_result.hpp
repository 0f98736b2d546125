// What one active check of one real server gives: pass or fail, how long it took,
// and a short human reason that the log and the status API show as is
// ("connected", "status 200", "banner 554", "connect refused",
// "timeout after 1000 ms", "TLS handshake failed: ...").
#pragma once

#include "healthcheck/local_shortage.hpp"

#include <chrono>
#include <string>

namespace castellan::healthcheck {

struct CheckResult {
    bool ok = false;
    std::chrono::milliseconds latency{0};  // from the start of the check to its answer (or its timeout)
    std::string detail;
    // Not none: the check could not be made for want of something on this host
    // (a local port, descriptors, memory). It says nothing of the server, so
    // the monitor leaves the server's health and last check as they are.
    LocalShortage local = LocalShortage::none;
};

}  // namespace castellan::healthcheck
