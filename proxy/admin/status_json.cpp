#include "proxy/admin/status_json.hpp"

#include "proxy/admin/counters.hpp"
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

TrafficTotals totals_of(const TrafficCounters& traffic) {
    return {traffic.total.load(std::memory_order_relaxed), traffic.bytes.in(), traffic.bytes.out()};
}

nlohmann::json rates_of(const TrafficHistory& history, const std::string& key) {
    return rates_json(history.rates(key), history.step());
}

nlohmann::json server_json(const ServiceRuntime& service, const RealServerRuntime& server,
                           std::chrono::steady_clock::time_point now, const TrafficHistory* history) {
    const auto shown = server.shown_state(now);
    nlohmann::json out = {
        {"name", server.config.name},
        {"address", server.config.address.to_string()},
        {"state", shown.state},
        {"weight", server.config.weight},
    };
    for (const auto& counter : server_counters) out[counter.key] = counter.read(*server.state);
    out["health"] = health_json(*server.health);
    if (history) out["rates"] = rates_of(*history, history_key(service, server));
    // A peer in the persistence group decided the state: say which one, where
    // the check result would otherwise look healthy.
    if (!shown.detail.empty()) out["detail"] = shown.detail;
    return out;
}

// A TLS service's handshakes: `handshakes` full and `resumed` (castellan's own
// handshakes with clients; none for passthrough) and `handshake_failures` by
// reason (tls::HandshakeFailure).
nlohmann::json tls_json(const ServiceRuntime& service) {
    const TlsCounters& counters = service.state->tls;
    nlohmann::json failures = nlohmann::json::object();
    for (std::size_t i = 1; i < tls::handshake_failure_kinds; ++i) {
        failures[tls::to_string(static_cast<tls::HandshakeFailure>(i))] =
            counters.failures[i].load(std::memory_order_relaxed);
    }
    return {{"mode", conf::to_string(service.config.tls->mode)},
            {"handshakes", counters.full.load(std::memory_order_relaxed)},
            {"resumed", counters.resumed.load(std::memory_order_relaxed)},
            {"handshake_failures", std::move(failures)}};
}

// An http-mode service's responses by status class ("none": the client left
// before any).
nlohmann::json http_json(const ServiceRuntime& service) {
    const HttpCounters& counters = service.state->http;
    nlohmann::json responses = nlohmann::json::object();
    responses["none"] = counters.responses[0].load(std::memory_order_relaxed);
    for (std::size_t i = 1; i < counters.responses.size(); ++i) {
        responses[std::to_string(i) + "xx"] = counters.responses[i].load(std::memory_order_relaxed);
    }
    return {{"responses", std::move(responses)}};
}

}  // namespace

std::string history_key(const ServiceRuntime& service) { return service.config.name; }

std::string history_key(const ServiceRuntime& service, const RealServerRuntime& server) {
    return service.config.name + "/" + server.config.name;
}

void record_traffic(TrafficHistory& history, const Runtime& runtime, std::chrono::steady_clock::time_point now) {
    for (const auto& service : runtime.services) {
        history.record(history_key(*service), totals_of(service->state->traffic), now);
        for (const auto& server : service->servers) {
            history.record(history_key(*service, *server), totals_of(server->state->traffic), now);
        }
    }
    history.forget_unrecorded();
}

nlohmann::json status_json(const Runtime& runtime, const ConfigStatus& config, std::chrono::steady_clock::time_point now,
                           const TrafficHistory* history) {
    nlohmann::json services = nlohmann::json::array();
    for (const auto& service : runtime.services) {
        nlohmann::json servers = nlohmann::json::array();
        for (const auto& server : service->servers) servers.push_back(server_json(*service, *server, now, history));
        nlohmann::json entry = {
            {"name", service->config.name},
            {"listen", service->config.listen.to_string()},
            {"mode", conf::to_string(service->config.mode)},
        };
        for (const auto& counter : service_counters) entry[counter.key] = counter.read(*service->state);
        if (service->config.tls) entry["tls"] = tls_json(*service);
        if (service->config.mode == conf::Mode::http) entry["http"] = http_json(*service);
        if (history) entry["rates"] = rates_of(*history, history_key(*service));
        entry["real_servers"] = std::move(servers);
        services.push_back(std::move(entry));
    }
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(now - config.started);
    return {
        {"version", CASTELLAN_VERSION},
        {"started_at", rfc3339_utc(config.started_at)},
        {"uptime_s", static_cast<std::int64_t>(uptime.count())},
        {"admin", {{"token_required", runtime.admin_token.has_value()}}},
        {"config",
         {{"generation", config.generation},
          {"file", runtime.config_file},
          {"last_reload", config.last_reload},
          {"reloads", {{"ok", config.reloads_ok}, {"failed", config.reloads_failed}}}}},
        {"virtual_services", std::move(services)},
    };
}

}  // namespace castellan::proxy::admin
