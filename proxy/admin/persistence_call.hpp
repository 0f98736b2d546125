// `GET` and `DELETE /api/v1/persistence?client=ADDRESS`: a client's entries in
// every source-IP persistence table of a snapshot (persistence groups and
// services with a table of their own), and forgetting them.
//
// Only source_ip persistence keeps state. Cookies carry their server in the
// client's cookie and source_hash computes it from the address: neither has an
// entry to show or forget.
#pragma once

#include "persistence/client_key.hpp"
#include "proxy/runtime.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace castellan::proxy::admin {

// The value of `name` in a request target's query string (`/path?a=1&name=v`),
// %-decoded (and `+` as a space, as HTML forms send it); nullopt when absent or
// badly escaped.
std::optional<std::string> query_parameter(std::string_view target, std::string_view name);

// The persistence key of an IPv4 or IPv6 literal (`192.0.2.7`, `2001:db8::7`,
// `[2001:db8::7]`), the same key a connection from that address is recorded
// under (an IPv4-mapped IPv6 address is its IPv4 client). Nullopt for anything
// else, host names included.
std::optional<persistence::ClientKey> client_key_of_text(std::string_view address);

// The client's entries, as INTERFACE.md shows them: an array of
// {"table", "kind" ("group" or "service"), "virtual_services" (the services
// that use the table), "real_server", "open_connections", "expires" (RFC 3339
// UTC, or null while connections are open)}. `now` and `wall_now` are the same
// instant on the steady and the system clock. Takes each table's shard lock for
// one lookup: any thread, never blocking a worker for long.
nlohmann::json persistence_entries(const Runtime& runtime, const persistence::ClientKey& client,
                                   std::chrono::steady_clock::time_point now,
                                   std::chrono::system_clock::time_point wall_now);

// Forgets the client in every table, so that its next connection is scheduled
// afresh; its open connections stay where they are. Gives how many live entries
// were forgotten. Any thread.
std::size_t forget_persistence(const Runtime& runtime, const persistence::ClientKey& client,
                               std::chrono::steady_clock::time_point now);

}  // namespace castellan::proxy::admin
