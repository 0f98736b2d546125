// Helpers for the scheduler tests: a pool of named servers with its eligible and
// active arrays, and a way to count picks.
#pragma once

#include "persistence/scheduler.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace castellan::persistence::test {

inline std::vector<ServerEntry> named_servers(std::vector<int> weights) {
    std::vector<ServerEntry> servers;
    for (std::size_t i = 0; i < weights.size(); ++i) {
        servers.push_back({"rs" + std::to_string(i), weights[i]});
    }
    return servers;
}

struct Pool {
    explicit Pool(std::size_t count) : eligible(count, 1), active(count, 0) {}
    std::vector<std::uint8_t> eligible;
    std::vector<std::uint32_t> active;

    PickRequest request(std::uint64_t key_hash = 0) const { return {key_hash, eligible, active}; }
};

// `picks` picks from `scheduler`, counted per server index (-1: nullopt).
inline std::map<long, int> count_picks(Scheduler& scheduler, const Pool& pool, int picks) {
    std::map<long, int> counts;
    for (int i = 0; i < picks; ++i) {
        auto index = scheduler.pick(pool.request());
        ++counts[index ? static_cast<long>(*index) : -1L];
    }
    return counts;
}

}  // namespace castellan::persistence::test
