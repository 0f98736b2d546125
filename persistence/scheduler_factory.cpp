// make_scheduler: the one table from config name to policy.
#include "persistence/least_connections.hpp"
#include "persistence/round_robin.hpp"
#include "persistence/scheduler.hpp"
#include "persistence/source_hash.hpp"
#include "persistence/weighted_round_robin.hpp"

#include <array>
#include <utility>

namespace castellan::persistence {

namespace {

using Builder = std::unique_ptr<Scheduler> (*)(const std::vector<ServerEntry>&);

struct Policy {
    conf::SchedulerKind kind;
    Builder build;
};

// One row per config value of `scheduler`; a kind missing here is caught by the
// factory test, which builds every kind.
constexpr std::array<Policy, 4> policies{{
    {conf::SchedulerKind::round_robin,
     [](const std::vector<ServerEntry>& servers) -> std::unique_ptr<Scheduler> {
         return std::make_unique<RoundRobinScheduler>(servers.size());
     }},
    {conf::SchedulerKind::weighted_round_robin,
     [](const std::vector<ServerEntry>& servers) -> std::unique_ptr<Scheduler> {
         return std::make_unique<WeightedRoundRobinScheduler>(servers);
     }},
    {conf::SchedulerKind::least_connections,
     [](const std::vector<ServerEntry>& servers) -> std::unique_ptr<Scheduler> {
         return std::make_unique<LeastConnectionsScheduler>(servers);
     }},
    {conf::SchedulerKind::source_hash,
     [](const std::vector<ServerEntry>& servers) -> std::unique_ptr<Scheduler> {
         return std::make_unique<SourceHashScheduler>(servers);
     }},
}};

}  // namespace

std::unique_ptr<Scheduler> make_scheduler(conf::SchedulerKind kind, std::vector<ServerEntry> servers) {
    for (const Policy& policy : policies) {
        if (policy.kind == kind) return policy.build(servers);
    }
    // Not reachable from a parsed config; round robin is the config's default.
    return std::make_unique<RoundRobinScheduler>(servers.size());
}

}  // namespace castellan::persistence
