// The counters of a virtual service and of a real server, declared once with
// their names: status_json() fills the status document from this list and
// metrics_text() renders /metrics from the same list, so a counter renamed or
// added here changes both (the page renders the document).
#pragma once

#include "proxy/lasting_state.hpp"

#include <array>
#include <atomic>
#include <cstdint>

namespace castellan::proxy::admin {

template <typename State>
struct CounterSpec {
    const char* key;     // in the status document
    const char* metric;  // the Prometheus family
    const char* type;    // "gauge" or "counter"
    const char* help;
    std::uint64_t (*read)(const State&);
};

namespace counters_detail {
inline std::uint64_t active(const TrafficCounters& t) { return t.active.load(std::memory_order_relaxed); }
inline std::uint64_t total(const TrafficCounters& t) { return t.total.load(std::memory_order_relaxed); }
}  // namespace counters_detail

inline constexpr std::array<CounterSpec<ServiceState>, 4> service_counters = {{
    {"connections_active", "castellan_virtual_service_connections_active", "gauge", "Open client connections.",
     [](const ServiceState& s) { return counters_detail::active(s.traffic); }},
    {"connections_total", "castellan_virtual_service_connections_total", "counter", "Accepted client connections.",
     [](const ServiceState& s) { return counters_detail::total(s.traffic); }},
    {"bytes_in", "castellan_virtual_service_bytes_in_total", "counter", "Bytes received from clients.",
     [](const ServiceState& s) { return s.traffic.bytes.in(); }},
    {"bytes_out", "castellan_virtual_service_bytes_out_total", "counter", "Bytes sent to clients.",
     [](const ServiceState& s) { return s.traffic.bytes.out(); }},
}};

inline constexpr std::array<CounterSpec<ServerState>, 6> server_counters = {{
    {"connections_active", "castellan_real_server_connections_active", "gauge", "Open connections to the real server.",
     [](const ServerState& s) { return counters_detail::active(s.traffic); }},
    {"connections_total", "castellan_real_server_connections_total", "counter",
     "Connections established to the real server.",
     [](const ServerState& s) { return counters_detail::total(s.traffic); }},
    {"connect_failures", "castellan_real_server_connect_failures_total", "counter", "Failed connects to the real server.",
     [](const ServerState& s) { return s.connect_failures.load(std::memory_order_relaxed); }},
    {"local_connect_failures", "castellan_real_server_local_connect_failures_total", "counter",
     "Connects to the real server that failed for want of something on castellan's host (a local port, a source "
     "address, descriptors, memory); not counted in connect_failures nor against the server's health.",
     [](const ServerState& s) { return s.local_connect_failures.load(std::memory_order_relaxed); }},
    {"bytes_in", "castellan_real_server_bytes_in_total", "counter",
     "Bytes from clients on the real server's connections.", [](const ServerState& s) { return s.traffic.bytes.in(); }},
    {"bytes_out", "castellan_real_server_bytes_out_total", "counter",
     "Bytes to clients on the real server's connections.", [](const ServerState& s) { return s.traffic.bytes.out(); }},
}};

}  // namespace castellan::proxy::admin
