// build_runtime(config, file, previous): what a new snapshot adopts from the one
// before it, what it makes fresh, and that an old snapshot lives exactly as long
// as its last holder.
#include "proxy/config_checks.hpp"
#include "proxy/runtime.hpp"

#include "conf/config_parser.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>

using castellan::proxy::AdminState;
using castellan::proxy::Runtime;
using namespace std::chrono_literals;

namespace {

// Two services in one persistence group, both on cas1 and cas2; `cas2_port` and
// `group_timeout` let a test change one thing.
std::string two_services(int cas2_port = 1102, int group_timeout = 600, bool cas1_enabled = true) {
    return R"({
      "threads": 2,
      "persistence_groups": { "rpc": { "timeout_s": )" + std::to_string(group_timeout) + R"( } },
      "virtual_services": [
        { "name": "epm", "listen": "127.0.0.1:1135",
          "persistence": { "type": "source_ip", "group": "rpc" },
          "real_servers": [ { "name": "cas1", "address": "127.0.0.1:1101", "enabled": )" +
           std::string(cas1_enabled ? "true" : "false") + R"( },
                            { "name": "cas2", "address": "127.0.0.1:)" + std::to_string(cas2_port) + R"(" } ] },
        { "name": "smtp", "listen": "127.0.0.1:1125",
          "persistence": { "type": "source_ip", "timeout_s": 60 },
          "real_servers": [ { "name": "cas1", "address": "127.0.0.1:1101" } ] }
      ]
    })";
}

castellan::conf::Config parse(const std::string& text) {
    auto parsed = castellan::conf::parse_config(text, "/tmp");
    for (const auto& error : parsed.errors) INFO(error.to_string());
    REQUIRE(parsed.config);
    return *parsed.config;
}

std::shared_ptr<const Runtime> build(const std::string& text, const Runtime* previous = nullptr) {
    auto built = castellan::proxy::build_runtime(parse(text), "/tmp/castellan.json", previous, 2);
    auto* runtime = std::get_if<std::shared_ptr<const Runtime>>(&built);
    REQUIRE(runtime);
    return *runtime;
}

const castellan::proxy::RealServerRuntime& server(const Runtime& runtime, std::size_t service, std::size_t index) {
    return *runtime.services.at(service)->servers.at(index);
}

}  // namespace

TEST_CASE("runtime: an unchanged config adopts every piece of lasting state", "[proxy][runtime]") {
    auto first = build(two_services());
    auto second = build(two_services(), first.get());
    for (std::size_t s = 0; s < first->services.size(); ++s) {
        CHECK(second->services[s]->state == first->services[s]->state);
        CHECK(second->services[s]->source_ip_table == first->services[s]->source_ip_table);
        CHECK(second->services[s]->scheduler != first->services[s]->scheduler);  // config-made: new
        for (std::size_t r = 0; r < first->services[s]->servers.size(); ++r) {
            CHECK(server(*second, s, r).state == server(*first, s, r).state);
            CHECK(server(*second, s, r).health == server(*first, s, r).health);
        }
    }
    CHECK(second->persistence_groups.at("rpc") == first->persistence_groups.at("rpc"));
    CHECK(second->health_targets.size() == first->health_targets.size());
}

TEST_CASE("runtime: a changed address, or changed persistence settings, start fresh", "[proxy][runtime]") {
    auto first = build(two_services());
    auto moved = build(two_services(1199), first.get());
    CHECK(server(*moved, 0, 0).state == server(*first, 0, 0).state);    // cas1 unchanged
    CHECK(server(*moved, 0, 1).state != server(*first, 0, 1).state);    // cas2 moved
    CHECK(server(*moved, 0, 1).health != server(*first, 0, 1).health);
    CHECK(moved->persistence_groups.at("rpc") == first->persistence_groups.at("rpc"));

    auto regrouped = build(two_services(1102, 900), first.get());
    CHECK(regrouped->persistence_groups.at("rpc") != first->persistence_groups.at("rpc"));
    CHECK(regrouped->services[0]->source_ip_table == regrouped->persistence_groups.at("rpc"));
    CHECK(regrouped->services[1]->source_ip_table == first->services[1]->source_ip_table);  // its own, unchanged
}

TEST_CASE("runtime: a changed check starts from the state the old check found", "[proxy][runtime]") {
    const auto with_check = [](int interval_ms) {
        return R"({ "virtual_services": [ { "name": "smtp", "listen": "127.0.0.1:1125",
            "health_check": { "type": "tcp", "interval_ms": )" + std::to_string(interval_ms) + R"( },
            "real_servers": [ { "name": "cas1", "address": "127.0.0.1:1101" },
                              { "name": "cas2", "address": "127.0.0.1:1102" } ] } ] })";
    };
    auto first = build(with_check(2000));
    auto& cas1_health = *server(*first, 0, 0).health;
    for (int i = 0; i < 2; ++i) cas1_health.on_check(false, 1ms, "connect refused", std::chrono::system_clock::now());
    const auto now = std::chrono::steady_clock::now();
    REQUIRE_FALSE(cas1_health.usable(now));

    auto second = build(with_check(3000), first.get());
    CHECK(server(*second, 0, 0).health != server(*first, 0, 0).health);  // another check: another health
    CHECK_FALSE(server(*second, 0, 0).health->usable(now));               // still down until it rises
    CHECK(server(*second, 0, 0).health->last_check()->detail == "connect refused");
    CHECK(server(*second, 0, 1).health->usable(now));
    CHECK(server(*second, 0, 0).state == server(*first, 0, 0).state);     // the same machine all the same
}

TEST_CASE("runtime: admin states survive a reload unless the config's enabled changed", "[proxy][runtime]") {
    const auto now = std::chrono::steady_clock::now();
    auto first = build(two_services());
    server(*first, 0, 1).state->admin.set(AdminState::draining, now - 5s);
    auto second = build(two_services(), first.get());
    castellan::proxy::apply_enabled_changes(*second, *first, now);
    CHECK(server(*second, 0, 1).shown_state(now).state == std::string("draining"));
    CHECK(server(*second, 0, 1).drained_for(5s, now));  // the drain clock kept running

    // Building alone changes nothing; publishing applies the config's change.
    auto third = build(two_services(1102, 600, false), second.get());
    CHECK(server(*second, 0, 0).state->admin.state() == AdminState::enabled);
    castellan::proxy::apply_enabled_changes(*third, *second, now);
    CHECK(server(*third, 0, 0).state->admin.state() == AdminState::disabled);
    CHECK(server(*third, 0, 1).state->admin.state() == AdminState::draining);
}

TEST_CASE("runtime: an old snapshot dies with its last session", "[proxy][runtime]") {
    auto current = build(two_services());
    std::weak_ptr<const Runtime> watched = current;
    auto session = current;                    // a session took it at accept
    auto lasting = current->services[0]->state;  // and what the next one adopts
    current = build(two_services(1199), current.get());  // a reload publishes the next
    CHECK_FALSE(watched.expired());            // the session still runs on it
    session.reset();                           // the session closes
    CHECK(watched.expired());
    CHECK(current->services[0]->state == lasting);  // the state lives on in the new one
}

TEST_CASE("runtime: byte counters sum the workers' slots", "[proxy][runtime]") {
    castellan::proxy::ByteCounters counters(3);
    castellan::proxy::add_to(counters.slot(0).in, 10);
    castellan::proxy::add_to(counters.slot(2).in, 5);
    castellan::proxy::add_to(counters.slot(1).out, 7);
    CHECK(counters.in() == 15);
    CHECK(counters.out() == 7);
}

TEST_CASE("runtime: admin state and drain start are read as one value", "[proxy][runtime]") {
    const auto now = std::chrono::steady_clock::now();
    castellan::proxy::AdminStateCell cell(AdminState::enabled);
    CHECK(cell.load().state == AdminState::enabled);
    cell.set(AdminState::draining, now);
    CHECK(cell.load().state == AdminState::draining);
    CHECK(cell.load().since == now);
    cell.set(AdminState::draining, now + 10s);  // asked again: the first start stays
    CHECK(cell.load().since == now);
    cell.set(AdminState::disabled, now + 20s);
    CHECK(cell.load().state == AdminState::disabled);
}

TEST_CASE("runtime: a missing cookie secret file is an error at its path", "[proxy][runtime]") {
    auto config = parse(R"({ "virtual_services": [
        { "name": "web", "listen": "127.0.0.1:1443", "mode": "http",
          "persistence": { "type": "cookie", "cookie_secret_file": "/nonexistent/cookie.secret" },
          "real_servers": [ { "name": "cas1", "address": "127.0.0.1:1101" } ] } ] })");
    auto errors = castellan::proxy::check_before_start(config);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].path == "/virtual_services/0/persistence/cookie_secret_file");
    auto built = castellan::proxy::build_runtime(config, "/tmp/castellan.json");
    CHECK(std::holds_alternative<std::vector<castellan::conf::ConfigError>>(built));
}

TEST_CASE("runtime: a missing token file is an error at its path", "[proxy][runtime]") {
    auto config = parse(R"({ "admin": { "listen": "127.0.0.1:9999", "token_file": "/nonexistent/castellan.token" },
        "virtual_services": [ { "name": "smtp", "listen": "127.0.0.1:1125",
          "real_servers": [ { "name": "cas1", "address": "127.0.0.1:1101" } ] } ] })");
    auto errors = castellan::proxy::check_named_files(config);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].path == "/admin/token_file");
    CHECK(errors[0].message.find("/nonexistent/castellan.token") != std::string::npos);
}

TEST_CASE("runtime: source_addresses by family, and a hostname resolved to a family they have", "[proxy][runtime]") {
    SECTION("parsed by family, in config order") {
        auto runtime = build(R"({ "virtual_services": [ { "name": "rpc", "listen": "127.0.0.1:1135",
            "source_addresses": ["127.0.0.3", "::1", "127.0.0.2"],
            "real_servers": [ { "name": "cas1", "address": "localhost:1101" } ] } ] })");
        const auto& sources = runtime->services.at(0)->source_addresses;
        REQUIRE(sources.of_family(false).size() == 2);
        CHECK(sources.of_family(false)[0].to_string() == "127.0.0.3");
        CHECK(sources.of_family(false)[1].to_string() == "127.0.0.2");
        REQUIRE(sources.of_family(true).size() == 1);
        CHECK(sources.of_family(true)[0].to_string() == "::1");
        // IPv4 is preferred for a name when there are IPv4 source addresses.
        CHECK(server(*runtime, 0, 0).endpoint.address().is_v4());
    }
    SECTION("a name with no address of a family the source addresses have is an error at its path") {
        auto config = parse(R"({ "virtual_services": [ { "name": "rpc", "listen": "127.0.0.1:1135",
            "source_addresses": ["::1"],
            "real_servers": [ { "name": "cas1", "address": "localhost:1101" } ] } ] })");
        auto built = castellan::proxy::build_runtime(config, "/tmp/castellan.json");
        if (auto* runtime = std::get_if<std::shared_ptr<const Runtime>>(&built)) {
            // This host's localhost has an IPv6 address too: that one is taken.
            CHECK(server(**runtime, 0, 0).endpoint.address().is_v6());
        } else {
            const auto& errors = std::get<std::vector<castellan::conf::ConfigError>>(built);
            REQUIRE(errors.size() == 1);
            CHECK(errors[0].path == "/virtual_services/0/real_servers/0/address");
            CHECK(errors[0].message ==
                  "\"localhost\" resolves to IPv4 only, and source_addresses has no address of that family (a "
                  "connection to a real server comes from an address of its family)");
        }
    }
}

TEST_CASE("runtime: a transparent service takes a name's address of its clients' family", "[proxy][runtime]") {
    // The clients of [::1] are IPv6; a transparent connection carries the
    // client's address, so only an IPv6 address of the name will do.
    auto config = parse(R"({ "virtual_services": [ { "name": "smtp", "listen": "[::1]:1125", "transparent": true,
        "real_servers": [ { "name": "cas1", "address": "localhost:1101" } ] } ] })");
    auto built = castellan::proxy::build_runtime(config, "/tmp/castellan.json");
    if (auto* runtime = std::get_if<std::shared_ptr<const Runtime>>(&built)) {
        // This host's localhost has an IPv6 address, and this process may set
        // IPV6_TRANSPARENT (root): that address is taken.
        CHECK(server(**runtime, 0, 0).endpoint.address().is_v6());
    } else {
        const auto& errors = std::get<std::vector<castellan::conf::ConfigError>>(built);
        for (const auto& error : errors) {
            INFO(error.to_string());
            if (error.path == "/virtual_services/0/transparent") {
                // Not root: the capability check says so (test_transparent.py checks the text).
                CHECK(error.message.find("CAP_NET_ADMIN") != std::string::npos);
                continue;
            }
            CHECK(error.path == "/virtual_services/0/real_servers/0/address");
            CHECK(error.message ==
                  "\"localhost\" resolves to IPv4 only, and the service is transparent with IPv6 clients (a "
                  "transparent connection carries the client's address, of the client's family)");
        }
        CHECK_FALSE(errors.empty());
    }
}
