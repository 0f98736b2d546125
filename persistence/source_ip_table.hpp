// The source-IP persistence table: client address -> real server name.
//
// One table per persistence group (shared by every member service, so a client's
// RPC endpoint-mapper, mailbox and address-book connections land on one machine)
// or per service with its own `source_ip` settings. Keyed by server *name*, so a
// reload that keeps a server keeps its clients.
//
// An entry lives while its client has open connections and for `timeout` after the
// last one closed. The table is bounded: when full, the least recently released
// entry with no open connection is evicted; if every entry has open connections,
// the new client is simply not recorded (it is served, just not persisted).
//
// Thread-safe: sharded, one mutex per shard, held for a map operation only. The
// bound is split exactly over the shards and the eviction order is per shard; a
// table of fewer than 8192 entries is one shard, so its eviction order is exact.
// acquire() also drops its shard's expired entries, so memory is returned even if
// expire() is never called.
//
// forget() (the admin API's DELETE) unbinds a client: its next connection is
// scheduled afresh. An entry that still has open connections is kept, unbound,
// to go on counting them (they stay where they are): its releases then balance
// the acquires, and the first new connection binds it again.
// Time is passed in; the table never reads a clock.
#pragma once

#include "persistence/client_key.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace castellan::persistence {

class SourceIpTable {
public:
    using time_point = std::chrono::steady_clock::time_point;

    SourceIpTable(std::chrono::seconds timeout, std::size_t max_entries);
    ~SourceIpTable();
    SourceIpTable(const SourceIpTable&) = delete;
    SourceIpTable& operator=(const SourceIpTable&) = delete;

    // The server `client` is bound to, if its entry is alive at `now`.
    std::optional<std::string> find(const ClientKey& client, time_point now) const;

    // Agrees on a server for a client that find() gave none: if another connection
    // of the same client bound it meanwhile (Outlook may open its RPC connections
    // to several services at once), gives that server; otherwise binds the client
    // to `proposed` and gives it back. The binding lives `timeout` unless a
    // connection is acquired on it. A full table records nothing and gives
    // `proposed`.
    std::string claim(const ClientKey& client, std::string_view proposed, time_point now);

    // Records a new open connection of `client` to `server`: binds the client to
    // it (rebinding it if it was bound elsewhere, e.g. after a failover) and counts
    // the connection. Gives false when the connection was not recorded (the table
    // is full and every entry has open connections); the caller then must not
    // release() it, or it would uncount another connection of the same client.
    bool acquire(const ClientKey& client, std::string_view server, time_point now);

    // Records that one of `client`'s connections closed; after the last one the
    // entry lives `timeout` more. Call once per acquire() that gave true.
    void release(const ClientKey& client, time_point now);

    // What the table holds for one client, as the admin API shows it.
    struct Binding {
        std::string server;
        std::uint32_t open_connections = 0;
        // When the binding ends if no connection opens: nullopt while some are open.
        std::optional<time_point> expires;
    };
    // `client`'s binding alive at `now`, if any (nothing for one forgotten while
    // its connections stay open).
    std::optional<Binding> lookup(const ClientKey& client, time_point now) const;

    // Unbinds `client`, so that its next connection is scheduled afresh; its
    // open connections are not touched. Gives whether a binding alive at `now`
    // was forgotten.
    bool forget(const ClientKey& client, time_point now);

    // Drops every entry that expired by `now`. find() ignores expired entries
    // anyway; this returns their memory.
    void expire(time_point now);

    std::size_t size() const;
    std::chrono::seconds timeout() const;

private:
    struct Shard;
    Shard& shard_for(const ClientKey& client) const;
    std::chrono::seconds timeout_;
    std::size_t shard_count_;
    std::unique_ptr<Shard[]> shards_;
};

}  // namespace castellan::persistence
