#include "healthcheck/monitor.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>

namespace castellan::healthcheck {
namespace net = boost::asio;

struct HealthMonitor::Loop {
    Loop(net::any_io_executor executor, CheckTarget target_in, std::chrono::milliseconds first_delay,
         std::uint64_t seed)
        : target(std::move(target_in)), timer(executor), first(first_delay), random(seed) {}

    CheckTarget target;
    net::steady_timer timer;
    std::chrono::milliseconds first;
    std::mt19937_64 random;
    bool stopped = false;
};

HealthMonitor::HealthMonitor(net::any_io_executor executor, ChangeHandler on_change, NotRunHandler on_not_run)
    : executor_(std::move(executor)),
      on_change_(std::move(on_change)),
      on_not_run_(std::move(on_not_run)),
      random_(std::random_device{}()) {}

HealthMonitor::~HealthMonitor() { stop(); }

void HealthMonitor::start(const std::vector<CheckTarget>& targets) {
    for (const auto& target : targets) start_one(target);
}

void HealthMonitor::start_one(const CheckTarget& target) {
    if (target.check.type == conf::HealthCheckKind::none) return;
    std::uniform_int_distribution<int> first(0, target.check.interval_ms - 1);
    auto loop = std::make_shared<Loop>(executor_, target, std::chrono::milliseconds(first(random_)), random_());
    loops_.push_back(loop);
    net::co_spawn(executor_, run(loop), net::detached);
}

void HealthMonitor::update(const std::vector<CheckTarget>& targets) {
    auto find_target = [&](const ServerHealth* health) -> const CheckTarget* {
        for (const auto& target : targets) {
            if (target.health.get() == health) return &target;
        }
        return nullptr;
    };
    std::erase_if(loops_, [&](const std::shared_ptr<Loop>& loop) {
        if (const CheckTarget* kept = find_target(loop->target.health.get())) {
            // Same health means the same address and check; only the server's
            // name in the label may differ. The rest is in use by a check that
            // may be in flight, so it stays as it is.
            loop->target.label = kept->label;
            return false;
        }
        loop->stopped = true;
        loop->timer.cancel();
        return true;
    });
    for (const auto& target : targets) {
        const bool running = std::any_of(loops_.begin(), loops_.end(), [&](const std::shared_ptr<Loop>& loop) {
            return loop->target.health == target.health;
        });
        if (!running) start_one(target);
    }
}

void HealthMonitor::stop() {
    for (auto& loop : loops_) {
        loop->stopped = true;
        loop->timer.cancel();
    }
    loops_.clear();
}

net::awaitable<void> HealthMonitor::run(std::shared_ptr<Loop> loop) {
    constexpr auto use = net::as_tuple(net::use_awaitable);
    const auto interval = std::chrono::milliseconds(loop->target.check.interval_ms);
    // ±10 % of the interval, drawn per check.
    std::uniform_int_distribution<std::int64_t> jitter(-interval.count() / 10, interval.count() / 10);

    loop->timer.expires_after(loop->first);
    co_await loop->timer.async_wait(use);
    while (!loop->stopped) {
        const auto started = std::chrono::steady_clock::now();
        CheckResult result = co_await run_check(loop->target.check, loop->target.endpoint, loop->target.context);
        if (loop->stopped) break;
        if (result.local != LocalShortage::none) {
            // This host lacked a port or a descriptor: nothing was learnt of
            // the server, so its health (and last check) stay as they were.
            if (on_not_run_) on_not_run_(loop->target, result);
        } else if (auto change = loop->target.health->on_check(result.ok, result.latency, result.detail,
                                                               std::chrono::system_clock::now())) {
            on_change_(loop->target, *change);
        }

        loop->timer.expires_at(started + interval + std::chrono::milliseconds(jitter(loop->random)));
        co_await loop->timer.async_wait(use);
    }
}

}  // namespace castellan::healthcheck
