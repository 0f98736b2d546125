#include "persistence/source_ip_table.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace castellan::persistence {

namespace {

// Below this many entries per shard, fewer shards: a small table stays one LRU
// (exact eviction order), a large one is split so threads rarely meet on a mutex.
constexpr std::size_t min_entries_per_shard = 4096;
constexpr std::size_t max_shards = 16;

struct KeyHasher {
    std::size_t operator()(const ClientKey& key) const noexcept {
        return static_cast<std::size_t>(hash_client_key(key));
    }
};

}  // namespace

// One slice of the table. Entries with open connections are only in `entries`;
// idle ones (no open connection, counting down their timeout) are also on an
// intrusive doubly linked list in the order they were released, oldest first,
// which is both the expiry order and the eviction order. unordered_map nodes never
// move, so the list may point at them.
struct SourceIpTable::Shard {
    struct Entry;
    using Node = std::pair<const ClientKey, Entry>;
    struct Entry {
        // Empty once forget() unbound an entry that still has open connections
        // (a real server's name never is empty).
        std::string server;
        std::uint32_t open = 0;
        time_point released{};  // meaningful while open == 0
        Node* older = nullptr;  // idle list links, null while open > 0
        Node* newer = nullptr;
    };

    mutable std::mutex mutex;
    std::unordered_map<ClientKey, Entry, KeyHasher> entries;
    Node* oldest_idle = nullptr;
    Node* newest_idle = nullptr;
    std::size_t capacity = 0;

    void link_idle(Node& node) {
        node.second.older = newest_idle;
        node.second.newer = nullptr;
        if (newest_idle) {
            newest_idle->second.newer = &node;
        } else {
            oldest_idle = &node;
        }
        newest_idle = &node;
    }

    void unlink_idle(Node& node) {
        Entry& entry = node.second;
        if (entry.older) {
            entry.older->second.newer = entry.newer;
        } else {
            oldest_idle = entry.newer;
        }
        if (entry.newer) {
            entry.newer->second.older = entry.older;
        } else {
            newest_idle = entry.older;
        }
        entry.older = entry.newer = nullptr;
    }

    void erase_oldest_idle() {
        Node* node = oldest_idle;
        unlink_idle(*node);
        entries.erase(node->first);
    }

    // Drops idle entries from the old end while they have expired. Stops at the
    // first live one: releases arrive in (nearly) time order, and a straggler left
    // behind is ignored by find() and dropped on a later pass.
    void drop_expired(time_point now, std::chrono::seconds timeout) {
        while (oldest_idle && now >= oldest_idle->second.released + timeout) erase_oldest_idle();
    }
};

SourceIpTable::SourceIpTable(std::chrono::seconds timeout, std::size_t max_entries) : timeout_(timeout) {
    shard_count_ = 1;
    while (shard_count_ < max_shards && max_entries / (shard_count_ * 2) >= min_entries_per_shard) {
        shard_count_ *= 2;
    }
    shards_ = std::make_unique<Shard[]>(shard_count_);
    // Split the bound exactly: the shards' capacities add up to max_entries.
    for (std::size_t i = 0; i < shard_count_; ++i) {
        shards_[i].capacity = max_entries / shard_count_ + (i < max_entries % shard_count_ ? 1 : 0);
    }
}

SourceIpTable::~SourceIpTable() = default;

SourceIpTable::Shard& SourceIpTable::shard_for(const ClientKey& client) const {
    // The high bits pick the shard; the map's buckets use the hash modulo a prime.
    const std::uint64_t hash = hash_client_key(client);
    return shards_[static_cast<std::size_t>(hash >> 32) & (shard_count_ - 1)];
}

std::optional<std::string> SourceIpTable::find(const ClientKey& client, time_point now) const {
    auto binding = lookup(client, now);
    if (!binding) return std::nullopt;
    return std::move(binding->server);
}

std::optional<SourceIpTable::Binding> SourceIpTable::lookup(const ClientKey& client, time_point now) const {
    Shard& shard = shard_for(client);
    std::lock_guard lock(shard.mutex);
    auto it = shard.entries.find(client);
    if (it == shard.entries.end()) return std::nullopt;
    const Shard::Entry& entry = it->second;
    if (entry.server.empty()) return std::nullopt;
    Binding binding{entry.server, entry.open, std::nullopt};
    if (entry.open == 0) {
        binding.expires = entry.released + timeout_;
        if (now >= *binding.expires) return std::nullopt;
    }
    return binding;
}

bool SourceIpTable::forget(const ClientKey& client, time_point now) {
    Shard& shard = shard_for(client);
    std::lock_guard lock(shard.mutex);
    auto it = shard.entries.find(client);
    if (it == shard.entries.end()) return false;
    Shard::Entry& entry = it->second;
    if (entry.open == 0) {
        const bool alive = now < entry.released + timeout_;
        shard.unlink_idle(*it);
        shard.entries.erase(it);
        return alive;
    }
    if (entry.server.empty()) return false;  // forgotten already
    // Keep counting the open connections, bound to no server: the last release
    // then drops the entry, and a new connection binds it afresh meanwhile.
    entry.server.clear();
    return true;
}

std::string SourceIpTable::claim(const ClientKey& client, std::string_view proposed, time_point now) {
    Shard& shard = shard_for(client);
    std::lock_guard lock(shard.mutex);
    shard.drop_expired(now, timeout_);

    auto it = shard.entries.find(client);
    if (it != shard.entries.end()) {
        Shard::Entry& entry = it->second;
        if (entry.open > 0) {
            // Forgotten while its connections stay open: bind it afresh.
            if (entry.server.empty()) entry.server.assign(proposed);
            return entry.server;
        }
        if (now < entry.released + timeout_) return entry.server;
        // An expired straggler: rebind it, and move it to the young end.
        shard.unlink_idle(*it);
        entry.server.assign(proposed);
        entry.released = now;
        shard.link_idle(*it);
        return entry.server;
    }
    if (shard.entries.size() >= shard.capacity) {
        if (!shard.oldest_idle) return std::string(proposed);
        shard.erase_oldest_idle();
    }
    auto [inserted, added] = shard.entries.try_emplace(client);
    inserted->second.server.assign(proposed);
    inserted->second.released = now;
    shard.link_idle(*inserted);
    return inserted->second.server;
}

bool SourceIpTable::acquire(const ClientKey& client, std::string_view server, time_point now) {
    Shard& shard = shard_for(client);
    std::lock_guard lock(shard.mutex);
    shard.drop_expired(now, timeout_);

    auto it = shard.entries.find(client);
    if (it != shard.entries.end()) {
        Shard::Entry& entry = it->second;
        if (entry.open == 0) shard.unlink_idle(*it);
        if (entry.server != server) entry.server.assign(server);
        ++entry.open;
        return true;
    }

    if (shard.entries.size() >= shard.capacity) {
        // Full: make room by evicting the least recently released idle entry. With
        // none idle every entry is in use, and the newcomer goes unrecorded.
        if (!shard.oldest_idle) return false;
        shard.erase_oldest_idle();
    }
    Shard::Entry& entry = shard.entries[client];
    entry.server.assign(server);
    entry.open = 1;
    return true;
}

void SourceIpTable::release(const ClientKey& client, time_point now) {
    Shard& shard = shard_for(client);
    std::lock_guard lock(shard.mutex);
    auto it = shard.entries.find(client);
    // Absent (never recorded because the table was full) or already idle: nothing
    // is counted for this connection.
    if (it == shard.entries.end() || it->second.open == 0) return;
    Shard::Entry& entry = it->second;
    if (--entry.open > 0) return;
    if (entry.server.empty()) {
        // Forgotten, and no new connection bound it since: nothing to remember.
        shard.entries.erase(it);
        return;
    }
    entry.released = now;
    shard.link_idle(*it);
}

void SourceIpTable::expire(time_point now) {
    for (std::size_t i = 0; i < shard_count_; ++i) {
        std::lock_guard lock(shards_[i].mutex);
        shards_[i].drop_expired(now, timeout_);
    }
}

std::size_t SourceIpTable::size() const {
    std::size_t total = 0;
    for (std::size_t i = 0; i < shard_count_; ++i) {
        std::lock_guard lock(shards_[i].mutex);
        total += shards_[i].entries.size();
    }
    return total;
}

std::chrono::seconds SourceIpTable::timeout() const { return timeout_; }

}  // namespace castellan::persistence
