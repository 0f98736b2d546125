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

TEST_CASE("session registry: close_idle closes only sessions past their idle time", "[proxy]") {
    boost::asio::io_context io;
    const auto now = std::chrono::steady_clock::now();
    FakeSession quiet(io, now - 10s, 5s), busy(io, now - 1s, 5s), no_limit(io, now - 100s, 0s);
    SessionRegistry registry;
    registry.add(quiet.live);
    registry.add(busy.live);
    registry.add(no_limit.live);

    CHECK(registry.close_idle(now) == 1);
    CHECK(quiet.live.closed_because == std::string("idle_timeout"));
    CHECK_FALSE(quiet.client.is_open());
    CHECK_FALSE(quiet.backend.is_open());
    CHECK(busy.live.closed_because == nullptr);
    CHECK(busy.client.is_open());
    CHECK(no_limit.live.closed_because == nullptr);

    // A session already closed is not closed (or counted) again.
    CHECK(registry.close_idle(now + 6s) == 1);
    CHECK(busy.live.closed_because == std::string("idle_timeout"));
    registry.remove(quiet.live);
    registry.remove(busy.live);
    registry.remove(no_limit.live);
}
