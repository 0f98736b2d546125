#include "proxy/runtime.hpp"

#include "conf/address.hpp"
#include "proxy/config_checks.hpp"
#include "tls/hmac_sha256.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <fmt/format.h>


namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

RealServerRuntime::RealServerRuntime(conf::RealServer config_in, tcp::endpoint endpoint_in,
                                     std::shared_ptr<healthcheck::ServerHealth> health_in,
                                     std::shared_ptr<ServerState> state_in)
    : config(std::move(config_in)),
      endpoint(endpoint_in),
      health(std::move(health_in)),
      state(state_in ? std::move(state_in)
                     : std::make_shared<ServerState>(1, config.enabled ? AdminState::enabled : AdminState::disabled)) {}

void RealServerRuntime::set_admin_state(AdminState wanted, std::chrono::steady_clock::time_point now) {
    state->admin.set(wanted, now);
}

bool RealServerRuntime::drained_for(std::chrono::seconds limit, std::chrono::steady_clock::time_point now) const {
    const auto admin = state->admin.load();
    return admin.state == AdminState::draining && now - admin.since >= limit;
}

bool RealServerRuntime::locally_available(std::chrono::steady_clock::time_point now) const {
    return state->admin.state() == AdminState::enabled && health->usable(now);
}

bool RealServerRuntime::accepts_new_clients(std::chrono::steady_clock::time_point now) const {
    if (!locally_available(now)) return false;
    for (const auto& peer : group_peers) {
        if (!peer.server->locally_available(now)) return false;
    }
    return true;
}

RealServerRuntime::Shown RealServerRuntime::shown_state(std::chrono::steady_clock::time_point now) const {
    switch (state->admin.state()) {
        case AdminState::disabled: return {"disabled", {}};
        case AdminState::draining: return {"draining", {}};
        case AdminState::enabled: break;
    }
    if (!health->usable(now)) return {"down", {}};
    for (const auto& peer : group_peers) {
        if (peer.server->locally_available(now)) continue;
        auto peer_state = peer.server->shown_state(now);
        return {"down", fmt::format("{} in {}", peer_state.state, peer.service->config.name)};
    }
    return {"up", {}};
}

std::optional<std::size_t> ServiceRuntime::index_of(std::string_view server_name) const {
    for (std::size_t i = 0; i < servers.size(); ++i) {
        if (servers[i]->config.name == server_name) return i;
    }
    return std::nullopt;
}

ServiceRuntime* Runtime::find_service(const conf::HostPort& listen) const {
    for (const auto& service : services) {
        if (service->config.listen == listen) return service.get();
    }
    return nullptr;
}

namespace {

// The first address of `address` (an IP literal needs no lookup). IPv4 is
// preferred for a hostname because Exchange sites name their CAS servers in
// IPv4 DNS first. With source_addresses, only a family they have will do: a
// connection comes from an address of the real server's family. With
// `transparent_v6` (a transparent service: whether its clients are IPv6), only
// the clients' family will do: a connection carries the client's address.
std::optional<tcp::endpoint> resolve(net::io_context& io, const conf::HostPort& address, const SourceAddresses& sources,
                                     std::optional<bool> transparent_v6, std::string& error) {
    boost::system::error_code ec;
    if (address.kind != conf::HostPort::Kind::hostname) {
        auto ip = net::ip::make_address(address.host, ec);
        if (ec) {
            error = fmt::format("not an IP address: \"{}\"", address.host);
            return std::nullopt;
        }
        return tcp::endpoint(ip, address.port);
    }
    tcp::resolver resolver(io);
    auto results = resolver.resolve(address.host, std::to_string(address.port), ec);
    if (ec || results.empty()) {
        error = fmt::format("cannot resolve \"{}\": {}", address.host,
                            ec ? ec.message() : std::string("no address"));
        return std::nullopt;
    }
    auto usable = [&sources, transparent_v6](const tcp::endpoint& endpoint) {
        const bool v6 = endpoint.address().is_v6();
        if (transparent_v6) return v6 == *transparent_v6;
        return sources.empty() || !sources.of_family(v6).empty();
    };
    for (const auto& entry : results) {
        if (entry.endpoint().address().is_v4() && usable(entry.endpoint())) return entry.endpoint();
    }
    for (const auto& entry : results) {
        if (usable(entry.endpoint())) return entry.endpoint();
    }
    const char* family = results.begin()->endpoint().address().is_v6() ? "IPv6" : "IPv4";
    if (transparent_v6) {
        error = fmt::format("\"{}\" resolves to {} only, and the service is transparent with {} clients (a "
                            "transparent connection carries the client's address, of the client's family)",
                            address.host, family, *transparent_v6 ? "IPv6" : "IPv4");
    } else {
        error = fmt::format("\"{}\" resolves to {} only, and source_addresses has no address of that family "
                            "(a connection to a real server comes from an address of its family)",
                            address.host, family);
    }
    return std::nullopt;
}

bool is_ip_literal(std::string_view host) {
    return conf::parse_ipv4(host).has_value() || conf::parse_ipv6(host).has_value();
}

// Whether two check targets describe the same check of the same server: then
// their health is one (shared within a snapshot, adopted across reloads).
bool same_check(const healthcheck::CheckTarget& target, const conf::HealthCheck& check, const tcp::endpoint& endpoint,
                const healthcheck::CheckContext& context) {
    return target.endpoint == endpoint && target.check == check && target.context.host == context.host &&
           target.context.sni == context.sni;
}

// Finds the health of (endpoint, check, host) among the targets made so far, or
// takes it from the previous snapshot, or makes it: one check per real server
// address and check definition, carried over while that pair is unchanged. A
// new check of an address the previous snapshot checked another way starts from
// that check's state (a down server stays down).
std::shared_ptr<healthcheck::ServerHealth> health_for(std::vector<healthcheck::CheckTarget>& targets,
                                                      const Runtime* previous, const conf::HealthCheck& check,
                                                      const tcp::endpoint& endpoint, healthcheck::CheckContext context,
                                                      std::string label) {
    for (const auto& target : targets) {
        if (same_check(target, check, endpoint, context)) return target.health;
    }
    std::shared_ptr<healthcheck::ServerHealth> health;
    const healthcheck::ServerHealth* checked_otherwise = nullptr;  // same address, another check
    if (previous) {
        for (const auto& target : previous->health_targets) {
            if (same_check(target, check, endpoint, context)) health = target.health;
            if (target.endpoint == endpoint) checked_otherwise = target.health.get();
        }
    }
    if (!health && checked_otherwise) health = std::make_shared<healthcheck::ServerHealth>(check, *checked_otherwise);
    if (!health) health = std::make_shared<healthcheck::ServerHealth>(check);
    targets.push_back({health, check, endpoint, std::move(context), std::move(label)});
    return health;
}

const ServiceRuntime* service_named(const Runtime* runtime, const std::string& name) {
    if (!runtime) return nullptr;
    for (const auto& service : runtime->services) {
        if (service->config.name == name) return service.get();
    }
    return nullptr;
}

// The same machine (name and address) in the previous generation of a service.
const RealServerRuntime* same_server(const ServiceRuntime* previous, const conf::RealServer& server) {
    if (!previous) return nullptr;
    auto index = previous->index_of(server.name);
    if (!index) return nullptr;
    const auto& old = *previous->servers[*index];
    // The configured address, not the resolved one: a host name whose DNS answer
    // changed is still the same machine, and keeps its drain and counters.
    return old.config.address == server.address ? &old : nullptr;
}

// The admin state and counters of `server` in the previous generation of its
// service, when it is the same machine; else fresh ones.
std::shared_ptr<ServerState> adopt_server_state(const ServiceRuntime* previous, const conf::RealServer& server,
                                                std::size_t workers) {
    if (const auto* old = same_server(previous, server)) return old->state;
    return std::make_shared<ServerState>(workers, server.enabled ? AdminState::enabled : AdminState::disabled);
}

// A service's own source-IP table (no group), kept while its settings are.
std::shared_ptr<persistence::SourceIpTable> own_source_ip_table(const ServiceRuntime* previous,
                                                                const conf::Persistence& persistence) {
    if (previous && previous->source_ip_table && !previous->config.persistence.group &&
        conf::uses_source_ip_table(previous->config.persistence) &&
        previous->config.persistence.timeout_s == persistence.timeout_s &&
        previous->config.persistence.max_entries == persistence.max_entries) {
        return previous->source_ip_table;
    }
    return std::make_shared<persistence::SourceIpTable>(std::chrono::seconds(persistence.timeout_s),
                                                        persistence.max_entries);
}

// Links each real server of a persistence group to the same name in the other
// member services.
void link_group_peers(Runtime& runtime) {
    for (auto& service : runtime.services) {
        const auto& group = service->config.persistence.group;
        if (!conf::uses_source_ip_table(service->config.persistence) || !group) continue;
        for (auto& server : service->servers) {
            for (auto& other : runtime.services) {
                if (other.get() == service.get()) continue;
                const auto& other_group = other->config.persistence.group;
                if (!conf::uses_source_ip_table(other->config.persistence) || other_group != group) {
                    continue;
                }
                if (auto index = other->index_of(server->config.name)) {
                    server->group_peers.push_back({other->servers[*index].get(), other.get()});
                }
            }
        }
    }
}

}  // namespace

BuildResult build_runtime(conf::Config config, std::string config_file, const Runtime* previous,
                          std::size_t workers) {
    std::vector<conf::ConfigError> errors = check_before_start(config);
    if (!errors.empty()) return errors;

    auto runtime = std::make_shared<Runtime>();
    runtime->config_file = std::move(config_file);
    runtime->workers = workers == 0 ? 1 : workers;
    net::io_context resolver_io;
    runtime->ticket_keys = previous && previous->ticket_keys ? previous->ticket_keys
                                                             : std::make_shared<tls::TicketKeyRing>();
    runtime->random_cookie_secret = previous && previous->random_cookie_secret
                                        ? previous->random_cookie_secret
                                        : std::make_shared<const std::string>(tls::random_bytes(32));

    for (const auto& [name, group] : config.persistence_groups) {
        std::shared_ptr<persistence::SourceIpTable> table;
        if (previous) {
            auto old = previous->persistence_groups.find(name);
            auto old_settings = previous->config.persistence_groups.find(name);
            if (old != previous->persistence_groups.end() && old_settings != previous->config.persistence_groups.end() &&
                old_settings->second == group) {
                table = old->second;
            }
        }
        if (!table) table = std::make_shared<persistence::SourceIpTable>(std::chrono::seconds(group.timeout_s),
                                                                         group.max_entries);
        runtime->persistence_groups[name] = std::move(table);
    }

    for (std::size_t s = 0; s < config.virtual_services.size(); ++s) {
        const auto& vs = config.virtual_services[s];
        const auto& check = vs.health_check;
        const ServiceRuntime* before = service_named(previous, vs.name);
        auto service = std::make_unique<ServiceRuntime>();
        service->config = vs;
        service->state = before ? before->state : std::make_shared<ServiceState>(runtime->workers);
        service->source_addresses = SourceAddresses(vs.source_addresses);

        if (vs.tls && vs.tls->mode != conf::TlsMode::passthrough) {
            std::vector<tls::TlsConfigError> tls_errors;
            // http mode says so in ALPN: a client offering h2 first then speaks HTTP/1.1.
            std::vector<std::string> alpn;
            if (vs.mode == conf::Mode::http) alpn.push_back("http/1.1");
            service->server_tls = tls::ServerTls::make(*vs.tls, runtime->ticket_keys, std::move(alpn), tls_errors);
            for (auto& error : tls_errors) {
                errors.push_back({fmt::format("/virtual_services/{}/tls{}", s, error.path), std::move(error.message)});
            }
        }
        if (vs.tls && vs.tls->mode == conf::TlsMode::reencrypt) {
            std::string error;
            service->upstream_tls = tls::UpstreamTls::make(vs.tls->upstream.verify, vs.tls->upstream.ca, error);
            if (!service->upstream_tls) errors.push_back({fmt::format("/virtual_services/{}/tls/upstream/ca", s), error});
        }

        std::shared_ptr<const tls::UpstreamTls> check_tls;
        if (check.type == conf::HealthCheckKind::https) {
            std::string error;
            check_tls = tls::UpstreamTls::make(check.verify, check.ca, error);
            if (!check_tls) errors.push_back({fmt::format("/virtual_services/{}/health_check/ca", s), error});
        }

        std::vector<persistence::ServerEntry> entries;
        for (std::size_t r = 0; r < vs.real_servers.size(); ++r) {
            const auto& rs = vs.real_servers[r];
            std::string error;
            const std::optional<bool> transparent_v6 =
                vs.transparent ? std::optional(vs.listen.kind == conf::HostPort::Kind::ipv6) : std::nullopt;
            auto endpoint = resolve(resolver_io, rs.address, service->source_addresses, transparent_v6, error);
            if (!endpoint) {
                errors.push_back({fmt::format("/virtual_services/{}/real_servers/{}/address", s, r), error});
                continue;
            }
            tcp::endpoint check_endpoint(endpoint->address(), check.port.value_or(endpoint->port()));
            healthcheck::CheckContext context;
            context.host = check.host.value_or(rs.address.to_string());
            context.tls = check_tls;
            if (check.sni) {
                context.sni = check.sni;
            } else if (check.host && !is_ip_literal(*check.host)) {
                context.sni = check.host;
            }
            std::string label = rs.name + "@" + conf::HostPort{rs.address.host, check_endpoint.port(),
                                                                rs.address.kind}.to_string();
            auto health = health_for(runtime->health_targets, previous, check, check_endpoint, std::move(context),
                                     std::move(label));
            auto state = adopt_server_state(before, rs, runtime->workers);
            service->servers.push_back(
                std::make_unique<RealServerRuntime>(rs, *endpoint, std::move(health), std::move(state)));
            entries.push_back({rs.name, rs.weight});
        }
        if (vs.persistence.type == conf::PersistenceKind::rpc_http) {
            service->channel_pairing = persistence::make_scheduler(conf::SchedulerKind::source_hash, entries);
        }
        service->scheduler = persistence::make_scheduler(vs.scheduler, std::move(entries));
        if (conf::uses_cookie(vs.persistence)) {
            std::shared_ptr<const std::string> secret = runtime->random_cookie_secret;
            if (const auto& file = vs.persistence.cookie_secret_file) {
                std::string error;
                auto text = read_secret_file(*file, error);
                if (!text) {
                    errors.push_back({fmt::format("/virtual_services/{}/persistence/cookie_secret_file", s), error});
                } else {
                    secret = std::make_shared<const std::string>(std::move(*text));
                }
            }
            service->cookie_codec = std::make_unique<persistence::CookieCodec>(
                [secret](std::string_view message) { return tls::hmac_sha256(*secret, message); });
        }
        if (conf::uses_source_ip_table(vs.persistence)) {
            if (vs.persistence.group) {
                service->source_ip_table = runtime->persistence_groups.at(*vs.persistence.group);
            } else {
                service->source_ip_table = own_source_ip_table(before, vs.persistence);
            }
        }
        runtime->services.push_back(std::move(service));
    }
    if (config.admin && config.admin->token_file) {
        std::string error;
        runtime->admin_token = read_secret_file(*config.admin->token_file, error);
        if (!runtime->admin_token) errors.push_back({"/admin/token_file", error});
    }
    if (!errors.empty()) return errors;
    link_group_peers(*runtime);
    runtime->config = std::move(config);
    return std::shared_ptr<const Runtime>(std::move(runtime));
}

void apply_enabled_changes(const Runtime& next, const Runtime& previous, std::chrono::steady_clock::time_point now) {
    for (const auto& service : next.services) {
        const ServiceRuntime* before = service_named(&previous, service->config.name);
        for (const auto& server : service->servers) {
            const auto* old = same_server(before, server->config);
            if (old && old->config.enabled != server->config.enabled) {
                server->state->admin.set(server->config.enabled ? AdminState::enabled : AdminState::disabled, now);
            }
        }
    }
}

}  // namespace castellan::proxy
