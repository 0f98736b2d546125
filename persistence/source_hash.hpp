// source_hash: a weighted consistent hash of the client address.
#pragma once

#include "persistence/scheduler.hpp"

#include <cstdint>
#include <vector>

namespace castellan::persistence {

// Weighted rendezvous hashing (highest random weight). For a client hash k, server
// i draws u_i = mix64(k ^ hash(name_i)) / 2^64 and scores w_i / -log2(u_i); the
// eligible server with the highest score takes the client. Hence:
// - a server leaving moves only the clients it held (everyone else's winner is
//   unchanged), and the next-highest score is the natural failover;
// - a server joining takes about w_new / W of the clients, from every server alike;
// - P(i wins) = w_i / W: -log(u)/w is exponential with rate w, and the smallest of
//   independent exponentials is the one of rate w_i with probability w_i / W.
// Stateless: the scores depend on names and the key only, never on positions,
// order or history, so two balancers with the same servers agree.
//
// Integer arithmetic only: -log2 is computed in fixed point (below) and scores are
// compared by cross-multiplication, so every build and machine picks alike.
class SourceHashScheduler final : public Scheduler {
public:
    explicit SourceHashScheduler(const std::vector<ServerEntry>& servers);

    // Any thread; touches no shared mutable state. O(n): one fixed-point log per
    // eligible server, about 0.1 us each (-O2, x86-64).
    std::optional<std::size_t> pick(const PickRequest& request) override;

private:
    struct Candidate {
        std::uint64_t name_hash;
        std::uint64_t weight;
    };
    std::vector<Candidate> candidates_;
};

// -log2(x / 2^64) in unsigned 32.32 fixed point, for x in [1, 2^64): from 64.0 at
// x = 1 down to the smallest step (1, meaning 2^-32) near 2^64; x = 0 is read as 1.
// Deterministic to the bit; about 2^-31 absolute error. Exposed for tests.
std::uint64_t fixed_neg_log2(std::uint64_t x);

}  // namespace castellan::persistence
