// The runtime snapshot: everything a session needs, built from one config.
//
// A session takes a shared_ptr<const Runtime> at accept and keeps it until it
// closes, so the settings it started with stay valid for its whole life, whatever
// happens to the config meanwhile. Mutable parts (counters, health, scheduler
// position, persistence tables) are atomics or internally synchronised objects
// reached through the immutable snapshot.
#pragma once

#include "conf/config.hpp"
#include "conf/config_parser.hpp"
#include "healthcheck/passive_health.hpp"
#include "persistence/scheduler.hpp"
#include "persistence/source_ip_table.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace castellan::proxy {

// Traffic counters, updated by every worker (once per connection, not per byte).
struct TrafficCounters {
    std::atomic<std::uint32_t> active{0};
    std::atomic<std::uint64_t> total{0};
    std::atomic<std::uint64_t> bytes_in{0};   // from clients
    std::atomic<std::uint64_t> bytes_out{0};  // to clients
};

// One real server as one virtual service uses it.
struct RealServerRuntime {
    RealServerRuntime(conf::RealServer config, boost::asio::ip::tcp::endpoint endpoint, int fall);

    const conf::RealServer config;
    const boost::asio::ip::tcp::endpoint endpoint;  // resolved at load
    healthcheck::PassiveHealth passive_health;
    TrafficCounters traffic;  // active = this service's open connections to it
    std::atomic<std::uint64_t> connect_failures{0};
};

struct ServiceRuntime {
    conf::VirtualService config;
    std::vector<std::unique_ptr<RealServerRuntime>> servers;
    std::unique_ptr<persistence::Scheduler> scheduler;
    // Source-IP persistence: the group's table (shared with the other members) or
    // this service's own; null without source_ip persistence.
    std::shared_ptr<persistence::SourceIpTable> source_ip_table;
    TrafficCounters traffic;
    // Slots taken by accepted connections and pending accepts, for max_connections.
    std::atomic<std::int64_t> accept_slots{0};

    std::optional<std::size_t> index_of(std::string_view server_name) const;
};

struct Runtime {
    conf::Config config;
    std::vector<std::unique_ptr<ServiceRuntime>> services;
    std::map<std::string, std::shared_ptr<persistence::SourceIpTable>> persistence_groups;

    // The service listening on `listen`, or null.
    ServiceRuntime* find_service(const conf::HostPort& listen) const;
};

// Builds a snapshot: resolves real-server hostnames (a name that does not resolve
// is an error at its JSON path), makes schedulers and persistence tables.
// Blocking (DNS): call it off the workers.
std::variant<std::shared_ptr<const Runtime>, std::vector<conf::ConfigError>> build_runtime(conf::Config config);

}  // namespace castellan::proxy
