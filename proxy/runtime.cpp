#include "proxy/runtime.hpp"

#include "conf/address.hpp"
#include "tls/client_context.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <fmt/format.h>

#include <fstream>
#include <iterator>

namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

RealServerRuntime::RealServerRuntime(conf::RealServer config_in, tcp::endpoint endpoint_in,
                                     std::shared_ptr<healthcheck::ServerHealth> health_in)
    : config(std::move(config_in)),
      endpoint(endpoint_in),
      health(std::move(health_in)),
      admin_state(config.enabled ? AdminState::enabled : AdminState::disabled) {}

void RealServerRuntime::set_admin_state(AdminState wanted, std::chrono::steady_clock::time_point now) {
    // Only the control thread changes admin states, so this check-then-store
    // does not race with another change.
    if (wanted == AdminState::draining && admin_state.load(std::memory_order_relaxed) != AdminState::draining) {
        draining_since.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    }
    admin_state.store(wanted, std::memory_order_relaxed);
}

bool RealServerRuntime::drained_for(std::chrono::seconds limit, std::chrono::steady_clock::time_point now) const {
    if (admin_state.load(std::memory_order_relaxed) != AdminState::draining) return false;
    const std::chrono::steady_clock::time_point since{
        std::chrono::steady_clock::duration(draining_since.load(std::memory_order_relaxed))};
    return now - since >= limit;
}

bool RealServerRuntime::locally_available(std::chrono::steady_clock::time_point now) const {
    return admin_state.load(std::memory_order_relaxed) == AdminState::enabled && health->usable(now);
}

bool RealServerRuntime::accepts_new_clients(std::chrono::steady_clock::time_point now) const {
    if (!locally_available(now)) return false;
    for (const auto& peer : group_peers) {
        if (!peer.server->locally_available(now)) return false;
    }
    return true;
}

RealServerRuntime::Shown RealServerRuntime::shown_state(std::chrono::steady_clock::time_point now) const {
    switch (admin_state.load(std::memory_order_relaxed)) {
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
// IPv4 DNS first.
std::optional<tcp::endpoint> resolve(net::io_context& io, const conf::HostPort& address, std::string& error) {
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
    for (const auto& entry : results) {
        if (entry.endpoint().address().is_v4()) return entry.endpoint();
    }
    return results.begin()->endpoint();
}

// A secret file's content without surrounding whitespace (INTERFACE.md).
std::optional<std::string> read_token_file(const std::string& file, std::string& error) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        error = fmt::format("cannot read \"{}\"", file);
        return std::nullopt;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) {
        error = fmt::format("\"{}\" is empty", file);
        return std::nullopt;
    }
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

bool is_ip_literal(std::string_view host) {
    return conf::parse_ipv4(host).has_value() || conf::parse_ipv6(host).has_value();
}

// Finds the health of (endpoint, check, host) among the targets made so far, or
// makes it: one check per real server address and check definition.
std::shared_ptr<healthcheck::ServerHealth> health_for(std::vector<healthcheck::CheckTarget>& targets,
                                                      const conf::HealthCheck& check, const tcp::endpoint& endpoint,
                                                      healthcheck::CheckContext context, std::string label) {
    for (const auto& target : targets) {
        if (target.endpoint == endpoint && target.check == check && target.context.host == context.host) {
            return target.health;
        }
    }
    auto health = std::make_shared<healthcheck::ServerHealth>(check);
    targets.push_back({health, check, endpoint, std::move(context), std::move(label)});
    return health;
}

// Links each real server of a persistence group to the same name in the other
// member services.
void link_group_peers(Runtime& runtime) {
    for (auto& service : runtime.services) {
        const auto& group = service->config.persistence.group;
        if (service->config.persistence.type != conf::PersistenceKind::source_ip || !group) continue;
        for (auto& server : service->servers) {
            for (auto& other : runtime.services) {
                if (other.get() == service.get()) continue;
                const auto& other_group = other->config.persistence.group;
                if (other->config.persistence.type != conf::PersistenceKind::source_ip || other_group != group) {
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

std::variant<std::shared_ptr<const Runtime>, std::vector<conf::ConfigError>> build_runtime(conf::Config config,
                                                                                           std::string config_file) {
    auto runtime = std::make_shared<Runtime>();
    runtime->config_file = std::move(config_file);
    std::vector<conf::ConfigError> errors;
    net::io_context resolver_io;

    for (const auto& [name, group] : config.persistence_groups) {
        runtime->persistence_groups[name] = std::make_shared<persistence::SourceIpTable>(
            std::chrono::seconds(group.timeout_s), group.max_entries);
    }

    for (std::size_t s = 0; s < config.virtual_services.size(); ++s) {
        const auto& vs = config.virtual_services[s];
        const auto& check = vs.health_check;
        auto service = std::make_unique<ServiceRuntime>();
        service->config = vs;

        std::shared_ptr<net::ssl::context> check_tls;
        if (check.type == conf::HealthCheckKind::https) {
            std::string error;
            check_tls = tls::make_client_tls_context(check.verify, check.ca, error);
            if (!check_tls) errors.push_back({fmt::format("/virtual_services/{}/health_check/ca", s), error});
        }

        std::vector<persistence::ServerEntry> entries;
        for (std::size_t r = 0; r < vs.real_servers.size(); ++r) {
            const auto& rs = vs.real_servers[r];
            std::string error;
            auto endpoint = resolve(resolver_io, rs.address, error);
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
            auto health = health_for(runtime->health_targets, check, check_endpoint, std::move(context),
                                     std::move(label));
            service->servers.push_back(std::make_unique<RealServerRuntime>(rs, *endpoint, std::move(health)));
            entries.push_back({rs.name, rs.weight});
        }
        service->scheduler = persistence::make_scheduler(vs.scheduler, std::move(entries));
        if (vs.persistence.type == conf::PersistenceKind::source_ip) {
            if (vs.persistence.group) {
                service->source_ip_table = runtime->persistence_groups.at(*vs.persistence.group);
            } else {
                service->source_ip_table = std::make_shared<persistence::SourceIpTable>(
                    std::chrono::seconds(vs.persistence.timeout_s), vs.persistence.max_entries);
            }
        }
        runtime->services.push_back(std::move(service));
    }
    if (config.admin && config.admin->token_file) {
        std::string error;
        runtime->admin_token = read_token_file(*config.admin->token_file, error);
        if (!runtime->admin_token) errors.push_back({"/admin/token_file", error});
    }
    if (!errors.empty()) return errors;
    link_group_peers(*runtime);
    runtime->config = std::move(config);
    return std::shared_ptr<const Runtime>(std::move(runtime));
}

}  // namespace castellan::proxy
