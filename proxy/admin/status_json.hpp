// The `GET /api/v1/status` document of INTERFACE.md, built from a snapshot.
#pragma once

#include "proxy/runtime.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>

namespace castellan::proxy::admin {

struct ConfigStatus {
    std::uint64_t generation = 1;
    nlohmann::json last_reload;  // null until the first reload
};

// Reads counters and health (atomics, and each server's last check under its
// lock); safe from any thread while `runtime` is alive.
nlohmann::json status_json(const Runtime& runtime, const ConfigStatus& config,
                           std::chrono::steady_clock::time_point now);

}  // namespace castellan::proxy::admin
