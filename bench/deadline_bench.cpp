// Micro-benchmark: what one worker's deadline tick costs with 200,000 open
// sessions (synthetic: no descriptors, no I/O; the clock is simulated), for the
// deadline queue (SessionRegistry::close_expired) and for the sweep it replaced
// (every 500 ms, every session through a std::function; reproduced below).
//
//   cmake --build build --target deadline_bench && build/deadline_bench [sessions]
//
// Cases:
// - steady: sessions arrive at an even rate over the first minute (a TLS
//   handshake phase of 10 s each, then idle_s 3600), 10 % of them move a byte
//   every 5 s or so, the others stay idle until idle_s closes them and a new
//   client takes their place; two simulated hours, ticked every 10 ms (the
//   worker's slack: a real worker wakes only when something is due, so this
//   counts more ticks than it would run). Every tick is timed.
// - old sweep: the sweep before the deadline queue, over the same sessions.
// - burst: every session filed in the same instant, all idle: the ticks
//   before they expire, and the one that closes them all (a sweep closes them
//   all at once too).
// The figures are wall time on one core, caches warm from the previous tick:
// a real loop does other work between ticks, so expect somewhat more there.
// On a shared machine the longest raw tick is mostly this thread waiting for a
// CPU: the steady case runs three times and takes each tick's least time.
#include "proxy/session_registry.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <memory>
#include <random>
#include <vector>

namespace {

using castellan::proxy::Activity;
using castellan::proxy::LiveSession;
using castellan::proxy::SessionRegistry;
using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;
using namespace std::chrono_literals;

constexpr auto handshake = 10000ms;
constexpr auto idle = 3600s;
constexpr auto steady_step = 10ms;
constexpr auto steady_length = 2h;

// A session as the worker sees it: an unopened socket (closing it is a no-op),
// the byte clock its pumps would push, its registration.
struct Session {
    explicit Session(boost::asio::io_context& io) : client(io) {}
    boost::asio::ip::tcp::socket client;
    Activity activity;
    LiveSession live;
    bool chatty = false;
};

// Accepted at `now`: registered, a handshake phase begun and (at once) ended,
// then idle timing from `now`, as tcp_session.cpp does over a few steps.
void accept(SessionRegistry& registry, Session& session, time_point now) {
    LiveSession& live = session.live;  // fresh, or removed from the registry
    live.client = &session.client;
    live.phase_deadline = time_point::max();
    live.phase_timeout = nullptr;
    live.activity = nullptr;
    live.idle = {};
    live.closed_because = nullptr;
    session.activity = Activity{};
    session.activity.last = now;
    registry.add(session.live);
    registry.begin_phase(session.live, now, handshake, "handshake_timeout");
    registry.end_phase(session.live);
    session.live.activity = &session.activity;
    session.live.idle = idle;
    registry.reschedule(session.live);
}

// The sweep that closed idle and phase-expired sessions before the deadline
// queue (SessionRegistry::close_expired at 8cf951f), over close_where(), which
// is the same walk.
std::size_t old_sweep(SessionRegistry& registry, time_point now) {
    return registry.close_where([now](const LiveSession& session) -> const char* {
        if (now >= session.phase_deadline) return session.phase_timeout;
        if (session.activity && session.idle.count() > 0 && now - session.activity->last >= session.idle) {
            return "idle_timeout";
        }
        if (!session.service || !session.server) return nullptr;
        const auto& drain_timeout = session.service->config.drain_timeout_s;
        if (drain_timeout && session.server->drained_for(std::chrono::seconds(*drain_timeout), now)) {
            return "drain_timeout";
        }
        return nullptr;
    });
}

double micros(clock_type::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

struct Spread {
    std::vector<clock_type::duration> samples;
    void add(clock_type::duration d) { samples.push_back(d); }
    double percentile(double p) {
        if (samples.empty()) return 0;
        std::sort(samples.begin(), samples.end());
        const auto i = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1));
        return micros(samples[i]);
    }
    double mean() const {
        clock_type::duration total{};
        for (auto d : samples) total += d;
        return samples.empty() ? 0 : micros(total) / static_cast<double>(samples.size());
    }
    double max() const { return samples.empty() ? 0 : micros(*std::max_element(samples.begin(), samples.end())); }
};

std::vector<std::unique_ptr<Session>> make_sessions(boost::asio::io_context& io, std::size_t count) {
    // One allocation each, as coroutine frames are: scattered, not an array.
    std::vector<std::unique_ptr<Session>> sessions;
    sessions.reserve(count);
    for (std::size_t i = 0; i < count; ++i) sessions.push_back(std::make_unique<Session>(io));
    return sessions;
}

// What one run of the steady case gives.
struct SteadyRun {
    std::vector<clock_type::duration> ticks;  // each tick's time, in order
    std::vector<std::size_t> looked_at;       // each tick's sessions looked at
    std::size_t closed = 0;
    Spread sweeps;
};

// The steady case, once. Deterministic (seeded, simulated clock): every run
// does the same work tick by tick, so a tick's least time over several runs is
// its work without the moments another process (or the hypervisor) took the
// CPU, which on a shared machine make the longest raw tick.
SteadyRun steady(boost::asio::io_context& io, std::size_t count) {
    const time_point t0 = clock_type::now();
    SessionRegistry registry(t0);
    auto sessions = make_sessions(io, count);
    std::mt19937_64 random(11);
    for (std::size_t i = 0; i < count; ++i) sessions[i]->chatty = i % 10 == 0;
    std::vector<Session*> chatty;
    for (auto& s : sessions) {
        if (s->chatty) chatty.push_back(s.get());
    }

    const std::size_t ticks = static_cast<std::size_t>(steady_length / steady_step);
    const std::size_t per_tick = std::max<std::size_t>(1, count / static_cast<std::size_t>(60s / steady_step));
    // Each chatty session moves a byte about every 5 s.
    const std::size_t bytes_per_tick =
        std::max<std::size_t>(1, chatty.size() * static_cast<std::size_t>(steady_step / 1ms) / 5000);
    std::uniform_int_distribution<std::size_t> pick(0, chatty.size() - 1);

    SteadyRun run;
    run.ticks.reserve(ticks);
    run.looked_at.reserve(ticks);
    std::size_t accepted = 0;
    // The idle sessions in the order they were accepted, which is the order
    // idle_s closes them in.
    std::deque<Session*> idle_ones;
    for (std::size_t n = 0; n < ticks; ++n) {
        const time_point now = t0 + n * steady_step;
        // Arrivals over the first minute.
        for (std::size_t i = 0; i < per_tick && accepted < count; ++i) {
            Session& s = *sessions[accepted++];
            accept(registry, s, now);
            if (!s.chatty) idle_ones.push_back(&s);
        }
        // Bytes: a plain store, as the pumps do; the queue is not told.
        for (std::size_t i = 0; i < bytes_per_tick; ++i) {
            Session* s = chatty[pick(random)];
            if (s->live.client) s->activity.last = now;
        }

        const auto started = clock_type::now();
        const auto expired = registry.close_expired(now);
        run.ticks.push_back(clock_type::now() - started);
        run.looked_at.push_back(expired.looked_at);
        run.closed += expired.closed;

        // Closed sessions end (as their coroutine would) and new clients take
        // their place, so that `count` stay open.
        while (!idle_ones.empty() && idle_ones.front()->live.closed_because) {
            Session* s = idle_ones.front();
            idle_ones.pop_front();
            registry.remove(s->live);
            accept(registry, *s, now);
            idle_ones.push_back(s);
        }

        // Now and then, the old sweep over the same sessions, for comparison
        // (it finds nothing: the queue just closed what was due).
        if (n % 6000 == 3000) {
            const auto sweep_started = clock_type::now();
            old_sweep(registry, now);
            run.sweeps.add(clock_type::now() - sweep_started);
        }
    }
    for (auto& s : sessions) {
        if (s->live.client) registry.remove(s->live);
    }
    return run;
}

void report_steady(boost::asio::io_context& io, std::size_t count, int runs) {
    std::vector<clock_type::duration> least;
    std::vector<double> raw_max;
    SteadyRun run;
    Spread sweeps;
    for (int r = 0; r < runs; ++r) {
        run = steady(io, count);
        if (least.empty()) least = run.ticks;
        for (std::size_t n = 0; n < least.size(); ++n) least[n] = std::min(least[n], run.ticks[n]);
        raw_max.push_back(micros(*std::max_element(run.ticks.begin(), run.ticks.end())));
        for (auto d : run.sweeps.samples) sweeps.add(d);
    }
    Spread ticks;
    std::size_t longest = 0, busiest = 0, looked_at = 0;
    for (std::size_t n = 0; n < least.size(); ++n) {
        ticks.add(least[n]);
        if (least[n] > least[longest]) longest = n;
        if (run.looked_at[n] > run.looked_at[busiest]) busiest = n;
        looked_at += run.looked_at[n];
    }
    const double hours = std::chrono::duration<double, std::ratio<3600>>(steady_length).count();
    double total_ms = 0;
    for (auto d : least) total_ms += micros(d) / 1000;

    fmt::print("steady: {} sessions open, 10 % moving a byte every ~5 s, idle_s {}, handshake_ms {}; {} ticks of {} ms "
               "({:.0f} h simulated), {} runs, each tick's least time over the runs\n",
               count, idle.count(), handshake.count(), least.size(), steady_step.count(), hours, runs);
    fmt::print("  deadline queue, per tick: mean {:.3f} us, p99 {:.2f} us, p99.9 {:.2f} us, longest {:.1f} us ({} "
               "sessions looked at in it)\n",
               ticks.mean(), ticks.percentile(0.99), ticks.percentile(0.999), micros(least[longest]),
               run.looked_at[longest]);
    fmt::print("  raw longest tick of each run (with other processes' time on this CPU):");
    for (double m : raw_max) fmt::print(" {:.0f} us", m);
    fmt::print("\n");
    fmt::print("  sessions looked at: {} ({:.2f} per session per hour), at most {} in one tick ({:.1f} us); {} closed by "
               "idle_s\n",
               looked_at, static_cast<double>(looked_at) / static_cast<double>(count) / hours, run.looked_at[busiest],
               micros(least[busiest]), run.closed);
    fmt::print("  deadline queue, all ticks together: {:.1f} ms per simulated hour\n", total_ms / hours);
    fmt::print("  old sweep over the same sessions: min {:.0f} us, median {:.0f} us, max {:.0f} us per sweep ({} "
               "sweeps); at 2 sweeps a second, {:.0f} ms per hour\n",
               sweeps.percentile(0), sweeps.percentile(0.5), sweeps.max(), sweeps.samples.size(),
               sweeps.mean() * 2 * 3600 / 1000);
}

void burst(boost::asio::io_context& io, std::size_t count) {
    const time_point t0 = clock_type::now();
    SessionRegistry registry(t0);
    auto sessions = make_sessions(io, count);
    const auto file_started = clock_type::now();
    for (auto& s : sessions) {
        registry.add(s->live);
        s->live.client = &s->client;
        s->activity.last = t0;
        s->live.activity = &s->activity;
        s->live.idle = idle;
        registry.reschedule(s->live);
    }
    const auto filing = clock_type::now() - file_started;

    // Ticks before they expire: nothing due.
    Spread quiet;
    for (auto now = t0; now < t0 + idle; now += 1s) {
        const auto started = clock_type::now();
        registry.close_expired(now);
        quiet.add(clock_type::now() - started);
    }
    const auto sweep_started = clock_type::now();
    old_sweep(registry, t0 + idle - 1s);
    const auto sweep = clock_type::now() - sweep_started;

    const auto started = clock_type::now();
    const auto expired = registry.close_expired(t0 + idle);
    const auto closing = clock_type::now() - started;

    fmt::print("burst: {} sessions filed in one instant, all idle_s {} (add + file: {:.0f} ns each)\n", count,
               idle.count(), static_cast<double>(std::chrono::nanoseconds(filing).count()) / static_cast<double>(count));
    fmt::print("  deadline queue, {} ticks before they expire: max {:.2f} us, mean {:.3f} us\n", quiet.samples.size(),
               quiet.max(), quiet.mean());
    fmt::print("  the tick at idle_s: {} looked at, {} closed, {:.1f} ms (closing every socket is the work)\n",
               expired.looked_at, expired.closed, micros(closing) / 1000);
    fmt::print("  old sweep, one sweep finding nothing due: {:.0f} us\n", micros(sweep));

    // The sweep closing the same 200,000 at once, for comparison.
    for (auto& s : sessions) s->live.closed_because = nullptr;
    const auto sweep_closing_started = clock_type::now();
    const std::size_t swept = old_sweep(registry, t0 + idle);
    const auto sweep_closing = clock_type::now() - sweep_closing_started;
    fmt::print("  old sweep at idle_s: {} closed, {:.1f} ms\n", swept, micros(sweep_closing) / 1000);

    const auto remove_started = clock_type::now();
    for (auto& s : sessions) registry.remove(s->live);
    const auto removing = clock_type::now() - remove_started;
    fmt::print("  remove (registry and deadline, O(1)): {:.0f} ns each\n",
               static_cast<double>(std::chrono::nanoseconds(removing).count()) / static_cast<double>(count));
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t count = argc > 1 ? static_cast<std::size_t>(std::strtoull(argv[1], nullptr, 10)) : 200'000;
    boost::asio::io_context io;
    report_steady(io, count, 3);
    burst(io, count);
    return 0;
}
