// `GET /metrics`: the figures of the status document in Prometheus' text
// exposition format (version 0.0.4), labelled by virtual service and real
// server name.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace castellan::proxy::admin {

// Built from the status document (status_json()) so that the status page, the
// JSON and the metrics always show the same figures; the counters are read by
// the keys of counters.hpp, the list status_json() writes them from. Pure: no I/O.
std::string metrics_text(const nlohmann::json& status);

}  // namespace castellan::proxy::admin
