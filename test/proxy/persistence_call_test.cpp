// The admin API's persistence call on a built snapshot: which tables it reads
// (groups and services' own tables, under the names INTERFACE.md gives), the
// answer's shape, and forgetting; plus the parsing of `?client=ADDRESS`.
#include "proxy/admin/persistence_call.hpp"
#include "proxy/runtime.hpp"

#include "conf/config_parser.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>

using castellan::persistence::ClientKey;
using castellan::proxy::Runtime;
using namespace castellan::proxy::admin;
using namespace std::chrono_literals;

namespace {

// A group of two services (rpc), a service with a table of its own (smtp) and
// one without persistence (web).
constexpr const char* config_text = R"({
  "threads": 1,
  "persistence_groups": { "rpc": { "timeout_s": 600 } },
  "virtual_services": [
    { "name": "epm", "listen": "127.0.0.1:1135",
      "persistence": { "type": "source_ip", "group": "rpc" },
      "real_servers": [ { "name": "cas1", "address": "127.0.0.1:1101" },
                        { "name": "cas2", "address": "127.0.0.1:1102" } ] },
    { "name": "mbx", "listen": "127.0.0.1:1136",
      "persistence": { "type": "source_ip", "group": "rpc" },
      "real_servers": [ { "name": "cas1", "address": "127.0.0.1:1103" },
                        { "name": "cas2", "address": "127.0.0.1:1104" } ] },
    { "name": "smtp", "listen": "127.0.0.1:1125",
      "persistence": { "type": "source_ip", "timeout_s": 60 },
      "real_servers": [ { "name": "cas1", "address": "127.0.0.1:1105" } ] },
    { "name": "web", "listen": "127.0.0.1:1180",
      "real_servers": [ { "name": "cas1", "address": "127.0.0.1:1106" } ] }
  ]
})";

std::shared_ptr<const Runtime> build() {
    auto parsed = castellan::conf::parse_config(config_text, "/tmp");
    for (const auto& error : parsed.errors) INFO(error.to_string());
    REQUIRE(parsed.config);
    auto built = castellan::proxy::build_runtime(*parsed.config, "/tmp/castellan.json", nullptr, 1);
    auto* runtime = std::get_if<std::shared_ptr<const Runtime>>(&built);
    REQUIRE(runtime);
    return *runtime;
}

ClientKey key_of(const char* text) {
    auto key = client_key_of_text(text);
    REQUIRE(key);
    return *key;
}

}  // namespace

TEST_CASE("persistence call: ?client= is found and %-decoded", "[proxy][admin]") {
    CHECK(query_parameter("/api/v1/persistence?client=192.0.2.7", "client") == "192.0.2.7");
    CHECK(query_parameter("/api/v1/persistence?x=1&client=2001%3Adb8%3A%3A7&y", "client") == "2001:db8::7");
    CHECK(query_parameter("/api/v1/persistence?client=%5B%3A%3A1%5D", "client") == "[::1]");
    CHECK(query_parameter("/api/v1/persistence?client=", "client") == "");
    CHECK(query_parameter("/api/v1/persistence?client", "client") == "");
    CHECK_FALSE(query_parameter("/api/v1/persistence", "client"));
    CHECK_FALSE(query_parameter("/api/v1/persistence?clients=1.2.3.4", "client"));
    CHECK_FALSE(query_parameter("/api/v1/persistence?client=1.2.3.4%", "client"));    // a % without digits
    CHECK_FALSE(query_parameter("/api/v1/persistence?client=1.2.3.4%4", "client"));
    CHECK_FALSE(query_parameter("/api/v1/persistence?client=%zz", "client"));
}

TEST_CASE("persistence call: addresses key as connections do", "[proxy][admin]") {
    // An IPv4 client is recorded under its IPv4-mapped IPv6 form.
    CHECK(key_of("192.0.2.7") == key_of("::ffff:192.0.2.7"));
    CHECK(key_of("192.0.2.7") == key_of("[::ffff:192.0.2.7]"));
    CHECK(key_of("2001:db8::7") == key_of("[2001:db8:0::7]"));
    CHECK(key_of("::1") != key_of("127.0.0.1"));
    CHECK(key_of("192.0.2.7") != key_of("192.0.2.8"));
    for (const char* bad : {"", "cas1", "mail.contoso.com", "1.2.3", "192.0.2.7:80", "[::1]:80", " 192.0.2.7",
                            "192.0.2.256", "[]", "::1]", "1.2.3.4/32"}) {
        INFO(bad);
        CHECK_FALSE(client_key_of_text(bad));
    }
}

TEST_CASE("persistence call: lists the group's and a service's own entry, and forgets them", "[proxy][admin]") {
    auto runtime = build();
    auto& group = *runtime->persistence_groups.at("rpc");
    auto& smtp = *runtime->services.at(2)->source_ip_table;
    REQUIRE(runtime->services.at(0)->source_ip_table.get() == &group);
    REQUIRE_FALSE(runtime->services.at(3)->source_ip_table);

    const auto now = std::chrono::steady_clock::now();
    const std::chrono::system_clock::time_point wall =
        std::chrono::sys_days(std::chrono::year(2026) / 11 / 22) + 10h;  // the same instant as `now`
    const ClientKey client = key_of("192.0.2.7");
    const ClientKey other = key_of("192.0.2.8");
    group.acquire(client, "cas2", now - 5s);   // connected to the group
    smtp.acquire(client, "cas1", now - 20s);   // was connected to smtp
    smtp.release(client, now - 10s);           // 60 s from here
    group.acquire(other, "cas1", now - 5s);

    auto entries = persistence_entries(*runtime, client, now, wall);
    INFO(entries.dump());
    REQUIRE(entries.is_array());
    REQUIRE(entries.size() == 2);
    CHECK(entries[0]["table"] == "rpc");
    CHECK(entries[0]["kind"] == "group");
    CHECK(entries[0]["virtual_services"] == nlohmann::json({"epm", "mbx"}));
    CHECK(entries[0]["real_server"] == "cas2");
    CHECK(entries[0]["open_connections"] == 1);
    CHECK(entries[0]["expires"].is_null());
    CHECK(entries[1]["table"] == "smtp");
    CHECK(entries[1]["kind"] == "service");
    CHECK(entries[1]["virtual_services"] == nlohmann::json({"smtp"}));
    CHECK(entries[1]["real_server"] == "cas1");
    CHECK(entries[1]["open_connections"] == 0);
    CHECK(entries[1]["expires"] == "2026-11-22T10:00:50Z");  // released 10 s ago, 60 s timeout

    // The IPv4-mapped spelling finds the same entries.
    CHECK(persistence_entries(*runtime, key_of("::ffff:192.0.2.7"), now, wall).size() == 2);
    CHECK(persistence_entries(*runtime, key_of("192.0.2.9"), now, wall) == nlohmann::json::array());

    CHECK(forget_persistence(*runtime, client, now) == 2);
    CHECK(persistence_entries(*runtime, client, now, wall) == nlohmann::json::array());
    CHECK(forget_persistence(*runtime, client, now) == 0);
    // The other client keeps its entry; the open connection's close drops the forgotten one.
    CHECK(persistence_entries(*runtime, other, now, wall).size() == 1);
    group.release(client, now + 1s);
    CHECK(group.size() == 1);
}
