#include "persistence/source_hash.hpp"

#include "persistence/pick_request_view.hpp"
#include "persistence/stable_hash.hpp"

#include <bit>

namespace castellan::persistence {

namespace {

__extension__ using uint128 = unsigned __int128;

constexpr int fraction_bits = 32;

// True when server a's score w_a / l_a beats server b's (l > 0 always).
bool scores_higher(std::uint64_t weight_a, std::uint64_t log_a, std::uint64_t weight_b,
                   std::uint64_t log_b) {
    return static_cast<uint128>(weight_a) * log_b > static_cast<uint128>(weight_b) * log_a;
}

}  // namespace

std::uint64_t fixed_neg_log2(std::uint64_t x) {
    if (x == 0) x = 1;
    const int exponent = 63 - std::countl_zero(x);
    // The mantissa in [1, 2) as 1.63 fixed point; its log2 in [0, 1) is found one bit
    // at a time: squaring doubles the log, and a square >= 2 means the bit is 1.
    std::uint64_t mantissa = x << (63 - exponent);
    std::uint64_t fraction = 0;
    // Branch-free: the bit is a coin toss, and a mispredicted branch per bit
    // would cost more than the multiplication.
    for (int bit = fraction_bits - 1; bit >= 0; --bit) {
        const uint128 square = static_cast<uint128>(mantissa) * mantissa;  // 2.126
        const auto at_least_two = static_cast<unsigned>(square >> 127);
        fraction |= std::uint64_t{at_least_two} << bit;
        mantissa = static_cast<std::uint64_t>(square >> (63 + at_least_two));  // back to 1.63
    }
    const std::uint64_t log2_x = (static_cast<std::uint64_t>(exponent) << fraction_bits) | fraction;
    return (std::uint64_t{64} << fraction_bits) - log2_x;  // >= 1: log2_x < 64.0
}

SourceHashScheduler::SourceHashScheduler(const std::vector<ServerEntry>& servers) {
    candidates_.reserve(servers.size());
    for (const auto& server : servers) {
        candidates_.push_back({stable_hash(server.name), effective_weight(server.weight)});
    }
}

std::optional<std::size_t> SourceHashScheduler::pick(const PickRequest& request) {
    std::optional<std::size_t> best;
    std::uint64_t best_log = 0;
    for (std::size_t i = 0; i < candidates_.size(); ++i) {
        if (!is_eligible(request, i)) continue;
        const Candidate& candidate = candidates_[i];
        const std::uint64_t neg_log = fixed_neg_log2(mix64(request.key_hash ^ candidate.name_hash));
        bool wins = !best;
        if (!wins) {
            const Candidate& leader = candidates_[*best];
            if (scores_higher(candidate.weight, neg_log, leader.weight, best_log)) {
                wins = true;
            } else if (!scores_higher(leader.weight, best_log, candidate.weight, neg_log)) {
                // An exact tie (about 2^-32 per pair): decided by name, not position,
                // so the order of the server list never matters.
                wins = candidate.name_hash > leader.name_hash;
            }
        }
        if (wins) {
            best = i;
            best_log = neg_log;
        }
    }
    return best;
}

}  // namespace castellan::persistence
