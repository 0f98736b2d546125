#include "proxy/runtime.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <fmt/format.h>

namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

RealServerRuntime::RealServerRuntime(conf::RealServer config_in, tcp::endpoint endpoint_in, int fall)
    : config(std::move(config_in)), endpoint(endpoint_in), passive_health(fall) {}

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

}  // namespace

std::variant<std::shared_ptr<const Runtime>, std::vector<conf::ConfigError>> build_runtime(conf::Config config) {
    auto runtime = std::make_shared<Runtime>();
    std::vector<conf::ConfigError> errors;
    net::io_context resolver_io;

    for (const auto& [name, group] : config.persistence_groups) {
        runtime->persistence_groups[name] = std::make_shared<persistence::SourceIpTable>(
            std::chrono::seconds(group.timeout_s), group.max_entries);
    }

    for (std::size_t s = 0; s < config.virtual_services.size(); ++s) {
        const auto& vs = config.virtual_services[s];
        auto service = std::make_unique<ServiceRuntime>();
        service->config = vs;
        std::vector<persistence::ServerEntry> entries;
        for (std::size_t r = 0; r < vs.real_servers.size(); ++r) {
            const auto& rs = vs.real_servers[r];
            std::string error;
            auto endpoint = resolve(resolver_io, rs.address, error);
            if (!endpoint) {
                errors.push_back({fmt::format("/virtual_services/{}/real_servers/{}/address", s, r), error});
                continue;
            }
            service->servers.push_back(
                std::make_unique<RealServerRuntime>(rs, *endpoint, vs.health_check.fall));
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
    if (!errors.empty()) return errors;
    runtime->config = std::move(config);
    return std::shared_ptr<const Runtime>(std::move(runtime));
}

}  // namespace castellan::proxy
