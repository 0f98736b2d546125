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
#include "healthcheck/monitor.hpp"
#include "healthcheck/server_health.hpp"
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

// What the admin API (and the config's `enabled`) says of a real server.
enum class AdminState : std::uint8_t { enabled, draining, disabled };

struct ServiceRuntime;

// One real server as one virtual service uses it.
struct RealServerRuntime {
    RealServerRuntime(conf::RealServer config, boost::asio::ip::tcp::endpoint endpoint,
                      std::shared_ptr<healthcheck::ServerHealth> health);

    const conf::RealServer config;
    const boost::asio::ip::tcp::endpoint endpoint;  // resolved at load
    // Shared with every service that checks the same address the same way.
    const std::shared_ptr<healthcheck::ServerHealth> health;
    std::atomic<AdminState> admin_state;
    // When it was last put into draining (steady clock), for drain_timeout_s.
    std::atomic<std::chrono::steady_clock::rep> draining_since{0};
    TrafficCounters traffic;  // active = this service's open connections to it
    std::atomic<std::uint64_t> connect_failures{0};

    // The same machine (same name) in the other member services of this service's
    // persistence group: a server down, draining or disabled in one member takes
    // no new clients in any (Outlook's RPC connections must all reach one CAS).
    struct GroupPeer {
        const RealServerRuntime* server;
        const ServiceRuntime* service;
    };
    std::vector<GroupPeer> group_peers;

    // Sets the admin state; entering `draining` starts the drain clock (asking
    // for a drain again does not restart it).
    void set_admin_state(AdminState wanted, std::chrono::steady_clock::time_point now);
    // Has it been draining for `limit` or longer at `now`?
    bool drained_for(std::chrono::seconds limit, std::chrono::steady_clock::time_point now) const;

    // May it take this service's new clients at `now`? Lock-free.
    bool accepts_new_clients(std::chrono::steady_clock::time_point now) const;
    // Whether this service's own view (admin state and health) lets it take clients.
    bool locally_available(std::chrono::steady_clock::time_point now) const;

    // The state the status API shows, and why when a group peer decided it.
    struct Shown {
        const char* state;  // up, down, draining, disabled
        std::string detail; // "down in cas-rpc-mailbox", or empty
    };
    Shown shown_state(std::chrono::steady_clock::time_point now) const;
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
    std::string config_file;
    std::optional<std::string> admin_token;  // from admin.token_file, whitespace stripped
    // One active check per (address, check definition), whatever the number of
    // services that use it.
    std::vector<healthcheck::CheckTarget> health_targets;
    std::vector<std::unique_ptr<ServiceRuntime>> services;
    std::map<std::string, std::shared_ptr<persistence::SourceIpTable>> persistence_groups;

    // The service listening on `listen`, or null.
    ServiceRuntime* find_service(const conf::HostPort& listen) const;
};

// Builds a snapshot: resolves real-server hostnames (a name that does not resolve
// is an error at its JSON path), makes schedulers and persistence tables.
// Blocking (DNS): call it off the workers.
std::variant<std::shared_ptr<const Runtime>, std::vector<conf::ConfigError>> build_runtime(conf::Config config,
                                                                                           std::string config_file);

}  // namespace castellan::proxy
