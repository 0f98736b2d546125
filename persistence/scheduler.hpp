// The scheduler interface: which real server of a service takes a new client.
//
// A scheduler is a value built from the service's immutable server list. It never
// sees a socket or a clock; the session extracts the key (a hash of the client
// address) and says which servers are eligible (up, enabled, not draining, not
// already tried by this connection). Failover is a second pick with the failed
// server marked ineligible (HAProxy's `avoid`).
#pragma once

#include "conf/config.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace castellan::persistence {

// What a scheduler knows of one real server, fixed when it is built.
struct ServerEntry {
    std::string name;  // stable identity: hashing uses the name, never the position
    int weight = 1;
};

// One question to a scheduler. Spans are indexed like the server list.
struct PickRequest {
    std::uint64_t key_hash = 0;              // hash of the client address (source_hash)
    std::span<const std::uint8_t> eligible;  // != 0: server i may take this client
    std::span<const std::uint32_t> active;   // this service's open connections per server
};

class Scheduler {
public:
    virtual ~Scheduler() = default;
    // Gives the index of the server for `request`, or nullopt when none is eligible.
    // Called concurrently by every worker thread of a service: implementations are
    // thread-safe and lock-free, and their shared position (round robin) is exact
    // across threads: two servers get 10/10 of 20 picks whatever the thread count.
    virtual std::optional<std::size_t> pick(const PickRequest& request) = 0;
};

// The factory: one entry per config name, no self-registration.
std::unique_ptr<Scheduler> make_scheduler(conf::SchedulerKind kind, std::vector<ServerEntry> servers);

}  // namespace castellan::persistence
