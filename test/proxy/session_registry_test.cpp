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
    SessionRegistry registry;
    registry.add(quiet.live);
    registry.add(busy.live);
    registry.add(no_limit.live);

    CHECK(registry.close_expired(now) == 1);
    CHECK(quiet.live.closed_because == std::string("idle_timeout"));
    CHECK_FALSE(quiet.client.is_open());
    CHECK_FALSE(quiet.backend.is_open());
    CHECK(busy.live.closed_because == nullptr);
    CHECK(busy.client.is_open());
    CHECK(no_limit.live.closed_because == nullptr);

    // A session already closed is not closed (or counted) again.
    CHECK(registry.close_expired(now + 6s) == 1);
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

    FakeSession old_one(io, now, 3600s), new_one(io, now, 3600s);
    old_one.live.service = new_one.live.service = &service;
    old_one.live.server = &long_drained;
    new_one.live.server = &just_drained;
    SessionRegistry registry;
    registry.add(old_one.live);
    registry.add(new_one.live);
    CHECK(registry.close_expired(now) == 1);
    CHECK(old_one.live.closed_because == std::string("drain_timeout"));
    CHECK(new_one.live.closed_because == nullptr);

    // Enabled again before its time: no longer drained.
    just_drained.set_admin_state(AdminState::enabled, now);
    CHECK(registry.close_expired(now + 60s) == 0);
    registry.remove(old_one.live);
    registry.remove(new_one.live);
}
