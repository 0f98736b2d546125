// The `GET /api/v1/status` document of INTERFACE.md, built from a snapshot.
#pragma once

#include "proxy/admin/traffic_history.hpp"
#include "proxy/runtime.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>

namespace castellan::proxy::admin {

// What the status document says of the process and its config, beside the
// snapshot's own figures. Kept by the balancer on the control thread.
struct ConfigStatus {
    std::uint64_t generation = 1;
    nlohmann::json last_reload;  // null until the first reload
    std::uint64_t reloads_ok = 0;
    std::uint64_t reloads_failed = 0;
    std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

// The keys under which TrafficHistory keeps a service's and a real server's
// totals.
std::string history_key(const ServiceRuntime& service);
std::string history_key(const ServiceRuntime& service, const RealServerRuntime& server);
// Records the totals of every service and real server of `runtime` at `now`
// and forgets what the snapshot no longer has. Control thread.
void record_traffic(TrafficHistory& history, const Runtime& runtime, std::chrono::steady_clock::time_point now);

// Reads counters and health (atomics, and each server's last check under its
// lock); safe from any thread while `runtime` is alive. `history` gives the
// `rates` (left out when null, as /metrics has no use for them); read it on the
// thread that records it.
nlohmann::json status_json(const Runtime& runtime, const ConfigStatus& config, std::chrono::steady_clock::time_point now,
                           const TrafficHistory* history = nullptr);

}  // namespace castellan::proxy::admin
