// Reading a PickRequest defensively: the spans come from the proxy and are meant to
// be as long as the server list, but a scheduler never reads past their end (a
// missing `eligible` entry means "not eligible", a missing `active` entry means 0).
#pragma once

#include "persistence/scheduler.hpp"

#include <cstddef>
#include <cstdint>

namespace castellan::persistence {

inline bool is_eligible(const PickRequest& request, std::size_t index) {
    return index < request.eligible.size() && request.eligible[index] != 0;
}

inline std::uint32_t active_of(const PickRequest& request, std::size_t index) {
    return index < request.active.size() ? request.active[index] : 0;
}

// Config weights are 1-256; anything below 1 counts as 1, so a server listed in a
// scheduler always has a share.
inline std::uint32_t effective_weight(int weight) {
    return weight < 1 ? 1U : static_cast<std::uint32_t>(weight);
}

}  // namespace castellan::persistence
