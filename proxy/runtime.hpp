// The runtime snapshot: everything a session needs, built from one config.
//
// A session takes a shared_ptr<const Runtime> at accept and keeps it until it
// closes, so the settings it started with stay valid for its whole life, whatever
// happens to the config meanwhile. The snapshot holds what the config determines;
// what must outlive a reload (health, persistence tables, admin states, counters:
// lasting_state.hpp) it reaches through shared_ptrs that build_runtime() hands
// from one snapshot to the next when the thing they describe did not change.
#pragma once

#include "conf/config.hpp"
#include "conf/config_parser.hpp"
#include "healthcheck/monitor.hpp"
#include "healthcheck/server_health.hpp"
#include "persistence/cookie_codec.hpp"
#include "persistence/scheduler.hpp"
#include "persistence/source_ip_table.hpp"
#include "proxy/lasting_state.hpp"
#include "proxy/source_addresses.hpp"
#include "tls/server_tls.hpp"
#include "tls/ticket_keys.hpp"
#include "tls/upstream_tls.hpp"

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

struct ServiceRuntime;

// One real server as one virtual service uses it.
struct RealServerRuntime {
    // Without `state`, a fresh one for one worker, `enabled` as the config says.
    RealServerRuntime(conf::RealServer config, boost::asio::ip::tcp::endpoint endpoint,
                      std::shared_ptr<healthcheck::ServerHealth> health, std::shared_ptr<ServerState> state = nullptr);

    const conf::RealServer config;
    const boost::asio::ip::tcp::endpoint endpoint;  // resolved at load
    // Shared with every service that checks the same address the same way, and
    // with the snapshots before and after this one while the check is unchanged.
    const std::shared_ptr<healthcheck::ServerHealth> health;
    // Admin state, counters: shared with the other generations of this server.
    const std::shared_ptr<ServerState> state;

    // The same machine (same name) in the other member services of this service's
    // persistence group: a server down, draining or disabled in one member takes
    // no new clients in any (Outlook's RPC connections must all reach one CAS).
    struct GroupPeer {
        const RealServerRuntime* server;
        const ServiceRuntime* service;
    };
    std::vector<GroupPeer> group_peers;

    // Re-encrypting services: the TLS session the next connection to this
    // server resumes. Per snapshot: a reload costs each server one full handshake.
    mutable tls::SessionSlot upstream_session;

    // With source_addresses: how many connections to this server have taken
    // their turn (SourceAddresses::index_for). Per real server, not per service,
    // so that a scheduler alternating over as many servers as there are source
    // addresses does not pair each server with one address. Bumped by any
    // worker (relaxed); per snapshot.
    std::atomic<std::uint64_t> source_turn{0};

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
    // rpc_http persistence: the weighted consistent hash (source_hash's) that
    // places both channels of an Outlook Anywhere session by their virtual
    // connection cookie. Null otherwise.
    std::unique_ptr<persistence::Scheduler> channel_pairing;
    // Source-IP persistence: the group's table (shared with the other members) or
    // this service's own; null without source_ip persistence. Adopted across
    // reloads while its settings are unchanged.
    std::shared_ptr<persistence::SourceIpTable> source_ip_table;
    // Counters and max_connections slots, shared with the other generations of
    // the service of the same name (set by build_runtime()).
    std::shared_ptr<ServiceState> state;
    // tls.mode terminate or reencrypt: the certificates clients see (re-read
    // from their files by every reload). Null otherwise.
    std::unique_ptr<tls::ServerTls> server_tls;
    // tls.mode reencrypt: TLS towards the real servers. Null otherwise.
    std::unique_ptr<tls::UpstreamTls> upstream_tls;
    // Cookie persistence (and rpc_http unless its fallback is none): the cookie's seal, under cookie_secret_file or the
    // process's random secret. Null otherwise.
    std::unique_ptr<persistence::CookieCodec> cookie_codec;
    // config.source_addresses, parsed; empty = the kernel's choice.
    SourceAddresses source_addresses;

    std::optional<std::size_t> index_of(std::string_view server_name) const;
};

struct Runtime {
    conf::Config config;
    std::string config_file;
    std::size_t workers = 1;  // slots of every ByteCounters in this snapshot
    std::optional<std::string> admin_token;  // from admin.token_file, whitespace stripped
    // One active check per (address, check definition), whatever the number of
    // services that use it.
    std::vector<healthcheck::CheckTarget> health_targets;
    std::vector<std::unique_ptr<ServiceRuntime>> services;
    std::map<std::string, std::shared_ptr<persistence::SourceIpTable>> persistence_groups;
    // Session ticket keys of every terminating service, adopted by each reload
    // so that tickets issued before it still resume.
    std::shared_ptr<tls::TicketKeyRing> ticket_keys;
    // The cookie secret of services without cookie_secret_file: random at
    // start, adopted by each reload so that their cookies stay valid.
    std::shared_ptr<const std::string> random_cookie_secret;

    // The service listening on `listen`, or null.
    ServiceRuntime* find_service(const conf::HostPort& listen) const;
};

using BuildResult = std::variant<std::shared_ptr<const Runtime>, std::vector<conf::ConfigError>>;

// Builds a snapshot: checks what a start needs beyond the JSON (config_checks.hpp:
// files, features of this build), resolves real-server hostnames (a name that
// does not resolve is an error at its JSON path), makes schedulers.
// Long-lived state is adopted from `previous` (null at start) where the thing it
// describes did not change, else made fresh:
// - health: the same address, check definition and check host;
// - a real server's admin state and counters: the same service name, server
//   name and configured address (a host name whose DNS answer changed is the
//   same server; see apply_enabled_changes());
// - a service's counters and max_connections slots: the same service name;
// - persistence tables: the same group name (or service name, for a service's
//   own table) and the same timeout and size;
// - TLS session ticket keys and the random cookie secret: always.
// Certificates and keys are read again from their files.
// `workers` sizes the per-worker byte counters. Blocking (DNS, files): call it
// off the workers and off the control loop; `previous` is only read.
BuildResult build_runtime(conf::Config config, std::string config_file, const Runtime* previous = nullptr,
                          std::size_t workers = 1);

// Where a reload changed a kept real server's `enabled`, the config wins over
// the admin state the API set; elsewhere the API's state stays. Called when
// `next` (built with `previous`) is published, not at build, so a reload
// refused after its build changes nothing. Control thread.
void apply_enabled_changes(const Runtime& next, const Runtime& previous, std::chrono::steady_clock::time_point now);

}  // namespace castellan::proxy
