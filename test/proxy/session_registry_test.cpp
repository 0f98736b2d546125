#include "proxy/session_registry.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>

using castellan::proxy::Activity;
using castellan::proxy::LiveSession;
using castellan::proxy::SessionRegistry;
using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// A session over two open (unconnected) sockets, idle since `last`.
struct FakeSession {
    FakeSession(boost::asio::io_context& io, std::chrono::steady_clock::time_point last, std::chrono::seconds idle)
        : client(io, tcp::v4()), backend(io, tcp::v4()) {
        activity.last = last;
        live.client = &client;
        live.backend = &backend;
        live.activity = &activity;
        live.idle = idle;
    }
    tcp::socket client;
    tcp::socket backend;
    Activity activity;
    LiveSession live;
};

}  // namespace

TEST_CASE("session registry: add and remove in any order", "[proxy]") {
    boost::asio::io_context io;
    const auto now = std::chrono::steady_clock::now();
    FakeSession a(io, now, 60s), b(io, now, 60s), c(io, now, 60s);
    SessionRegistry registry;
    registry.add(a.live);
    registry.add(b.live);
    registry.add(c.live);
    CHECK(registry.size() == 3);
    registry.remove(b.live);  // middle
    registry.remove(c.live);  // first
    CHECK(registry.size() == 1);
    std::size_t seen = registry.close_if([](const LiveSession&) { return false; }, "none");
    CHECK(seen == 0);
    registry.remove(a.live);  // last
    CHECK(registry.size() == 0);
    CHECK(registry.close_if([](const LiveSession&) { return true; }, "all") == 0);
}

TEST_CASE("session registry: close_expired closes only sessions past their idle time", "[proxy]") {
    boost::asio::io_context io;
    const auto now = std::chrono::steady_clock::now();
    FakeSession quiet(io, now - 10s, 5s), busy(io, now - 1s, 5s), no_limit(io, now - 100s, 0s);
    SessionRegistry registry(now);
    for (FakeSession* session : {&quiet, &busy, &no_limit}) {
        registry.add(session->live);
        registry.reschedule(session->live);
    }
    CHECK_FALSE(no_limit.live.filed());  // nothing to time

    CHECK(registry.close_expired(now).closed == 1);
    CHECK(quiet.live.closed_because == std::string("idle_timeout"));
    CHECK_FALSE(quiet.client.is_open());
    CHECK_FALSE(quiet.backend.is_open());
    CHECK(busy.live.closed_because == nullptr);
    CHECK(busy.client.is_open());
    CHECK(no_limit.live.closed_because == nullptr);

    // A session already closed is not closed (or counted) again.
    CHECK(registry.close_expired(now + 6s).closed == 1);
    CHECK(busy.live.closed_because == std::string("idle_timeout"));
    registry.remove(quiet.live);
    registry.remove(busy.live);
    registry.remove(no_limit.live);
}

TEST_CASE("session registry: close_expired closes the sessions of a server drained past drain_timeout_s",
          "[proxy]") {
    using castellan::proxy::AdminState;
    using castellan::proxy::RealServerRuntime;
    using castellan::proxy::ServiceRuntime;
    boost::asio::io_context io;
    const auto now = std::chrono::steady_clock::now();
    ServiceRuntime service;
    service.config.drain_timeout_s = 30;
    const tcp::endpoint somewhere(boost::asio::ip::make_address("127.0.0.1"), 1);
    RealServerRuntime long_drained({"cas1", {}, 1, true}, somewhere, nullptr);
    RealServerRuntime just_drained({"cas2", {}, 1, true}, somewhere, nullptr);
    long_drained.set_admin_state(AdminState::draining, now - 40s);
    long_drained.set_admin_state(AdminState::draining, now - 5s);  // asked again: the clock keeps running
    just_drained.set_admin_state(AdminState::draining, now - 10s);
    CHECK(long_drained.drained_for(30s, now));
    CHECK_FALSE(just_drained.drained_for(30s, now));

    // Sessions connected to servers that already drain: reschedule() (called
    // once the server is set) reads the drain.
    FakeSession old_one(io, now, 3600s), new_one(io, now, 3600s);
    old_one.live.service = new_one.live.service = &service;
    old_one.live.server = &long_drained;
    new_one.live.server = &just_drained;
    SessionRegistry registry(now);
    registry.add(old_one.live);
    registry.add(new_one.live);
    registry.reschedule(old_one.live);
    registry.reschedule(new_one.live);
    CHECK(new_one.live.due() <= now + 20s);
    CHECK(registry.close_expired(now).closed == 1);
    CHECK(old_one.live.closed_because == std::string("drain_timeout"));
    CHECK(new_one.live.closed_because == nullptr);

    // Enabled again before its time: no longer drained; looked at when the
    // drain deadline was due, it is filed again for its idle deadline.
    just_drained.set_admin_state(AdminState::enabled, now);
    CHECK(registry.close_expired(now + 60s).closed == 0);
    CHECK(new_one.live.filed());
    CHECK(new_one.live.due() > now + 60s);
    registry.remove(old_one.live);
    registry.remove(new_one.live);
}

TEST_CASE("session registry: a drain that starts after the session connected is timed once the worker is told",
          "[proxy]") {
    using castellan::proxy::AdminState;
    using castellan::proxy::RealServerRuntime;
    using castellan::proxy::ServiceRuntime;
    boost::asio::io_context io;
    const auto now = std::chrono::steady_clock::now();
    ServiceRuntime service;
    service.config.drain_timeout_s = 30;
    ServiceRuntime without_limit;
    const tcp::endpoint somewhere(boost::asio::ip::make_address("127.0.0.1"), 1);
    RealServerRuntime cas1({"cas1", {}, 1, true}, somewhere, nullptr);
    // The same server in a newer snapshot: another object, the same lasting state.
    RealServerRuntime cas1_again({"cas1", {}, 1, true}, somewhere, nullptr, cas1.state);
    RealServerRuntime cas2({"cas2", {}, 1, true}, somewhere, nullptr);

    FakeSession on_cas1(io, now, 3600s), on_cas1_again(io, now, 3600s), on_cas2(io, now, 3600s), no_limit(io, now, 3600s);
    on_cas1.live.service = on_cas1_again.live.service = on_cas2.live.service = &service;
    no_limit.live.service = &without_limit;
    on_cas1.live.server = &cas1;
    on_cas1_again.live.server = &cas1_again;
    on_cas2.live.server = &cas2;
    no_limit.live.server = &cas1;
    SessionRegistry registry(now);
    for (FakeSession* session : {&on_cas1, &on_cas1_again, &on_cas2, &no_limit}) {
        registry.add(session->live);
        registry.reschedule(session->live);
        CHECK(session->live.due() == now + 3600s);  // the idle deadline, on its span's list
    }

    cas1.set_admin_state(AdminState::draining, now + 10s);
    registry.drain_started(*cas1.state);
    CHECK(on_cas1.live.due() == now + 40s);
    CHECK(on_cas1_again.live.due() == now + 40s);
    CHECK(on_cas2.live.due() == now + 3600s);
    CHECK(no_limit.live.due() == now + 3600s);

    CHECK(registry.close_expired(now + 39s).looked_at == 0);
    const auto expired = registry.close_expired(now + 40s);
    CHECK(expired.looked_at == 2);
    CHECK(expired.closed == 2);
    CHECK(on_cas1.live.closed_because == std::string("drain_timeout"));
    CHECK(on_cas1_again.live.closed_because == std::string("drain_timeout"));
    CHECK(on_cas2.live.closed_because == nullptr);
    CHECK(no_limit.live.closed_because == nullptr);
    for (FakeSession* session : {&on_cas1, &on_cas1_again, &on_cas2, &no_limit}) registry.remove(session->live);
}

TEST_CASE("session registry: a phase deadline before the idle one closes with the phase's reason", "[proxy]") {
    boost::asio::io_context io;
    const auto now = std::chrono::steady_clock::now();
    SessionRegistry registry(now);
    // An http session: idle 60 s filed first, then a request head to read in 10 s.
    FakeSession slow_head(io, now, 60s), quick_head(io, now, 60s);
    for (FakeSession* session : {&slow_head, &quick_head}) {
        registry.add(session->live);
        registry.reschedule(session->live);
        CHECK(session->live.due() == now + 60s);
        registry.begin_phase(session->live, now, 10000ms, "client_header_timeout");
        CHECK(session->live.due() == now + 10s);  // filed earlier at once
    }
    // One head arrives, its last byte at 2 s: the phase ends and the session
    // is filed for its idle deadline at once.
    quick_head.activity.last = now + 2s;
    registry.end_phase(quick_head.live);
    CHECK(quick_head.live.due() == now + 62s);

    auto at_10s = registry.close_expired(now + 10s);
    CHECK(at_10s.looked_at == 1);
    CHECK(at_10s.closed == 1);
    CHECK(slow_head.live.closed_because == std::string("client_header_timeout"));
    CHECK(quick_head.live.closed_because == nullptr);

    // A byte at 30 s: found when the recorded deadline comes, filed again.
    quick_head.activity.last = now + 30s;
    auto at_62s = registry.close_expired(now + 62s);
    CHECK(at_62s.looked_at == 1);
    CHECK(at_62s.closed == 0);
    CHECK(quick_head.live.due() <= now + 90s);
    CHECK(registry.close_expired(now + 89s).closed == 0);
    CHECK(registry.close_expired(now + 90s).closed == 1);
    CHECK(quick_head.live.closed_because == std::string("idle_timeout"));
    registry.remove(slow_head.live);
    registry.remove(quick_head.live);
    CHECK(registry.deadlines().size() == 0);
}

TEST_CASE("session registry: phase and idle limits of an hour and a second side by side", "[proxy]") {
    boost::asio::io_context io;
    const auto now = std::chrono::steady_clock::now();
    SessionRegistry registry(now);
    FakeSession rpc(io, now, 3600s), chatty(io, now, 1s), handshaking(io, now, 3600s);
    for (FakeSession* session : {&rpc, &chatty, &handshaking}) registry.add(session->live);
    registry.reschedule(rpc.live);
    registry.reschedule(chatty.live);
    handshaking.live.activity = nullptr;  // bytes do not flow before the handshake
    registry.begin_phase(handshaking.live, now, 10000ms, "handshake_timeout");

    std::size_t looks = 0;
    for (auto t = now; t <= now + 3601s; t += 100ms) {
        if (t <= now + 30s) chatty.activity.last = t;  // a byte every tick for 30 s
        looks += registry.close_expired(t).looked_at;
    }
    CHECK(handshaking.live.closed_because == std::string("handshake_timeout"));
    CHECK(chatty.live.closed_because == std::string("idle_timeout"));
    CHECK(rpc.live.closed_because == std::string("idle_timeout"));
    // 36,000 ticks: the hour-long session was looked at once, the handshake
    // once, the chatty one about once per second it lived.
    CHECK(looks <= 2 + 2 * 32);
    for (FakeSession* session : {&rpc, &chatty, &handshaking}) registry.remove(session->live);
}

TEST_CASE("session registry: a session filed before the owner's wake time wakes it once", "[proxy]") {
    boost::asio::io_context io;
    const auto now = std::chrono::steady_clock::now();
    SessionRegistry registry(now);
    int wakes = 0;
    registry.on_earlier_due([&wakes] { ++wakes; });
    registry.set_wake_time(now + 30s);
    FakeSession late(io, now, 60s), early(io, now, 5s), earlier(io, now, 2s);
    for (FakeSession* session : {&late, &early, &earlier}) {
        registry.add(session->live);
        registry.reschedule(session->live);
    }
    CHECK(wakes == 1);  // `early`; `earlier` waits for the owner to look again
    CHECK(registry.next_due() == now + 2s);
    registry.set_wake_time(registry.next_due());
    registry.begin_phase(late.live, now, 1000ms, "handshake_timeout");
    CHECK(wakes == 2);
    registry.on_earlier_due(nullptr);
    for (FakeSession* session : {&late, &early, &earlier}) registry.remove(session->live);
}

TEST_CASE("session registry: a session closed from outside is not timed again", "[proxy]") {
    boost::asio::io_context io;
    const auto now = std::chrono::steady_clock::now();
    SessionRegistry registry(now);
    FakeSession session(io, now, 5s);
    registry.add(session.live);
    registry.reschedule(session.live);
    CHECK(registry.close_if([](const LiveSession&) { return true; }, "server_down") == 1);
    auto expired = registry.close_expired(now + 5s);
    CHECK(expired.looked_at == 1);
    CHECK(expired.closed == 0);
    CHECK(session.live.closed_because == std::string("server_down"));
    CHECK_FALSE(session.live.filed());
    registry.remove(session.live);
}
