#include "proxy/admin/status_json.hpp"

#include "proxy/time_format.hpp"

namespace castellan::proxy::admin {

namespace {

nlohmann::json health_json(const healthcheck::ServerHealth& health) {
    auto last = health.last_check();
    if (!last) return nullptr;
    return {{"ok", last->ok},
            {"at", rfc3339_utc(last->at)},
            {"latency_ms", static_cast<std::int64_t>(last->latency.count())},
            {"detail", last->detail}};
}

nlohmann::json server_json(const RealServerRuntime& server, std::chrono::steady_clock::time_point now) {
    const auto shown = server.shown_state(now);
    nlohmann::json health = health_json(*server.health);
    nlohmann::json out = {
        {"name", server.config.name},
        {"address", server.config.address.to_string()},
        {"state", shown.state},
        {"weight", server.config.weight},
        {"connections_active", server.traffic.active.load(std::memory_order_relaxed)},
        {"connections_total", server.traffic.total.load(std::memory_order_relaxed)},
        {"connect_failures", server.connect_failures.load(std::memory_order_relaxed)},
        {"bytes_in", server.traffic.bytes_in.load(std::memory_order_relaxed)},
        {"bytes_out", server.traffic.bytes_out.load(std::memory_order_relaxed)},
        {"health", health},
    };
    // A peer in the persistence group decided the state: say which one, where
    // the check result would otherwise look healthy.
    if (!shown.detail.empty()) out["detail"] = shown.detail;
    return out;
}

}  // namespace

nlohmann::json status_json(const Runtime& runtime, const ConfigStatus& config,
                           std::chrono::steady_clock::time_point now) {
    nlohmann::json services = nlohmann::json::array();
    for (const auto& service : runtime.services) {
        nlohmann::json servers = nlohmann::json::array();
        for (const auto& server : service->servers) servers.push_back(server_json(*server, now));
        services.push_back({
            {"name", service->config.name},
            {"listen", service->config.listen.to_string()},
            {"mode", conf::to_string(service->config.mode)},
            {"connections_active", service->traffic.active.load(std::memory_order_relaxed)},
            {"connections_total", service->traffic.total.load(std::memory_order_relaxed)},
            {"bytes_in", service->traffic.bytes_in.load(std::memory_order_relaxed)},
            {"bytes_out", service->traffic.bytes_out.load(std::memory_order_relaxed)},
            {"real_servers", std::move(servers)},
        });
    }
    return {
        {"version", CASTELLAN_VERSION},
        {"config", {{"generation", config.generation}, {"file", runtime.config_file}, {"last_reload", config.last_reload}}},
        {"virtual_services", std::move(services)},
    };
}

}  // namespace castellan::proxy::admin
