#include "proxy/admin/metrics_text.hpp"

#include "proxy/admin/counters.hpp"

#include <fmt/format.h>

#include <array>
#include <string_view>

namespace castellan::proxy::admin {

namespace {

// A label value with Prometheus' escapes (names are plain, but a version or a
// future label may not be).
std::string escaped(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::uint64_t number(const nlohmann::json& object, const char* key) {
    const auto& value = object.value(key, nlohmann::json());
    return value.is_number_unsigned() || value.is_number_integer() ? value.get<std::uint64_t>() : 0;
}

// One metric family: its HELP and TYPE lines, then its samples.
class Family {
public:
    Family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
        : out_(out), name_(name) {
        out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    }
    void sample(std::string_view labels, std::uint64_t value) {
        if (labels.empty()) {
            out_ += fmt::format("{} {}\n", name_, value);
        } else {
            out_ += fmt::format("{}{{{}}} {}\n", name_, labels, value);
        }
    }

private:
    std::string& out_;
    std::string_view name_;
};

std::string service_labels(const nlohmann::json& service) {
    return fmt::format("virtual_service=\"{}\"", escaped(service.value("name", "")));
}

std::string server_labels(const nlohmann::json& service, const nlohmann::json& server) {
    return fmt::format("virtual_service=\"{}\",real_server=\"{}\"", escaped(service.value("name", "")),
                       escaped(server.value("name", "")));
}

constexpr std::array<std::string_view, 4> states = {"up", "down", "draining", "disabled"};

// Calls visit(service, server) for every real server of every service.
template <typename Visit>
void for_each_server(const nlohmann::json& services, Visit visit) {
    for (const auto& service : services) {
        for (const auto& server : service.value("real_servers", nlohmann::json::array())) visit(service, server);
    }
}

// One sample per entry of each service's `section`.`key` object of counts
// (the JSON's breakdowns: failures by reason, responses by class), labelled
// `label`="<entry>". Services without that section have none.
void sample_breakdown(Family& family, const nlohmann::json& services, const char* section, const char* key,
                      const char* label) {
    for (const auto& service : services) {
        const auto part = service.find(section);
        if (part == service.end() || !part->is_object()) continue;
        const auto counts = part->find(key);
        if (counts == part->end() || !counts->is_object()) continue;
        for (const auto& [name, count] : counts->items()) {
            family.sample(fmt::format("{},{}=\"{}\"", service_labels(service), label, escaped(name)),
                          count.is_number() ? count.get<std::uint64_t>() : 0);
        }
    }
}

}  // namespace

std::string metrics_text(const nlohmann::json& status) {
    std::string out;
    const auto& services = status.value("virtual_services", nlohmann::json::array());

    Family(out, "castellan_build_info", "gauge", "The running version (always 1).")
        .sample(fmt::format("version=\"{}\"", escaped(status.value("version", ""))), 1);
    const auto& config = status.value("config", nlohmann::json::object());
    Family(out, "castellan_config_generation", "gauge", "Config generation: 1 at start, one more per applied reload.")
        .sample("", number(config, "generation"));
    {
        const auto& reloads = config.value("reloads", nlohmann::json::object());
        Family family(out, "castellan_config_reloads_total", "counter",
                      "Reload rounds (SIGHUP or the API; requests made while one is built are served by the next), by result: ok = applied, failed = refused.");
        family.sample("result=\"ok\"", number(reloads, "ok"));
        family.sample("result=\"failed\"", number(reloads, "failed"));
    }

    for (const auto& counter : service_counters) {
        Family family(out, counter.metric, counter.type, counter.help);
        for (const auto& service : services) family.sample(service_labels(service), number(service, counter.key));
    }
    for (const auto& counter : server_counters) {
        Family family(out, counter.metric, counter.type, counter.help);
        for_each_server(services, [&](const nlohmann::json& service, const nlohmann::json& server) {
            family.sample(server_labels(service, server), number(server, counter.key));
        });
    }

    {
        Family handshakes(out, "castellan_tls_handshakes_total", "counter",
                          "TLS handshakes with clients completed by castellan (terminate, reencrypt), by resumption.");
        for (const auto& service : services) {
            const auto& tls = service.value("tls", nlohmann::json());
            if (!tls.is_object() || tls.value("mode", "") == "passthrough") continue;
            handshakes.sample(service_labels(service) + ",resumed=\"false\"", number(tls, "handshakes"));
            handshakes.sample(service_labels(service) + ",resumed=\"true\"", number(tls, "resumed"));
        }
        Family failures(out, "castellan_tls_handshake_failures_total", "counter",
                        "Client TLS handshakes (or passthrough ClientHellos) that failed, by reason.");
        sample_breakdown(failures, services, "tls", "handshake_failures", "reason");
    }
    {
        Family family(out, "castellan_http_responses_total", "counter",
                      "Responses of http-mode services by status class (none: the client left before one).");
        sample_breakdown(family, services, "http", "responses", "class");
    }
    {
        Family family(out, "castellan_real_server_state", "gauge",
                      "1 for the real server's current state (up, down, draining, disabled), 0 for the others.");
        for_each_server(services, [&](const nlohmann::json& service, const nlohmann::json& server) {
            const std::string current = server.value("state", "");
            for (auto state : states) {
                family.sample(fmt::format("{},state=\"{}\"", server_labels(service, server), state),
                              current == state ? 1 : 0);
            }
        });
    }
    {
        Family family(out, "castellan_real_server_check_ok", "gauge",
                      "1 if the last health check passed, 0 if it failed; absent before the first check.");
        for_each_server(services, [&](const nlohmann::json& service, const nlohmann::json& server) {
            const auto& health = server.value("health", nlohmann::json());
            if (health.is_object()) family.sample(server_labels(service, server), health.value("ok", false) ? 1 : 0);
        });
    }
    {
        Family family(out, "castellan_real_server_check_latency_milliseconds", "gauge",
                      "How long the last health check took.");
        for_each_server(services, [&](const nlohmann::json& service, const nlohmann::json& server) {
            const auto& health = server.value("health", nlohmann::json());
            if (health.is_object()) family.sample(server_labels(service, server), number(health, "latency_ms"));
        });
    }
    return out;
}

}  // namespace castellan::proxy::admin
