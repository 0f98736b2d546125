// Invalid configs: each rule of INTERFACE.md with the exact error line, JSON
// Pointer included. Every case edits the minimal valid config of
// config_test_util.hpp, so the listed errors are the only ones.
#include "conf/config_parser.hpp"

#include "config_test_util.hpp"

#include <catch2/catch.hpp>

using namespace castellan::conf;
using namespace castellan::conf::test;

namespace {

struct Case {
    std::string name;
    std::vector<Edit> edits;
    std::vector<std::string> errors;
};

void check_cases(const std::vector<Case>& cases) {
    for (const auto& c : cases) {
        INFO(c.name);
        INFO(edited(c.edits).dump());
        const auto result = parse_config(edited(c.edits).dump(), base_dir);
        CHECK(error_lines(result) == c.errors);
        CHECK_FALSE(result.config);
    }
}

const std::string vs = "/virtual_services/0";

}  // namespace

TEST_CASE("errors: JSON syntax is one error at the document with line and column", "[conf]") {
    const auto result = parse_config("{\n  \"threads\": 1,\n  oops\n}", base_dir);
    CHECK_FALSE(result.config);
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].path.empty());
    CHECK_THAT(result.errors[0].message, Catch::StartsWith("parse error at line 3, column 3: syntax error"));

    CHECK_THAT(errors_of("").at(0), Catch::StartsWith("parse error at line 1, column 1"));
    CHECK(errors_of("{} x").size() == 1);
    // No comments in the file.
    CHECK_THAT(errors_of("{ // note\n}").at(0), Catch::StartsWith("parse error at line 1"));
    // Invalid UTF-8 inside a string.
    CHECK_THAT(errors_of("{\"threads\": \"\xff\"}").at(0), Catch::StartsWith("parse error"));
}

TEST_CASE("errors: the document must be an object", "[conf]") {
    CHECK(errors_of("[]") == std::vector<std::string>{"expected an object, got an array"});
    CHECK(errors_of("42") == std::vector<std::string>{"expected an object, got 42"});
}

TEST_CASE("errors: unknown keys, with a suggestion when close to a known one", "[conf]") {
    check_cases({
        {"top level", {{"/thread", 2}}, {"/thread: unknown key (did you mean \"threads\"?)"}},
        {"nothing close", {{"/listen", "0.0.0.0:80"}}, {"/listen: unknown key"}},
        {"service", {{"/virtual_services/0/schedular", "round_robin"}},
         {vs + "/schedular: unknown key (did you mean \"scheduler\"?)"}},
        {"real server", {{"/virtual_services/0/real_servers/1/wieght", 2}},
         {vs + "/real_servers/1/wieght: unknown key (did you mean \"weight\"?)"}},
        {"health check", {{"/virtual_services/0/health_check/interval", 2000}},
         {vs + "/health_check/interval: unknown key (did you mean \"interval_ms\"?)"}},
        {"timeouts", {{"/virtual_services/0/timeouts/idle_ms", 2000}},
         {vs + "/timeouts/idle_ms: unknown key (did you mean \"idle_s\"?)"}},
        {"admin", {{"/admin", {{"listen", "127.0.0.1:9090"}, {"token", "x"}}}}, {"/admin/token: unknown key (did you mean \"token_file\"?)"}},
        {"tls", {{"/virtual_services/0/tls", {{"mode", "passthrough"}, {"sni", "x"}}}}, {vs + "/tls/sni: unknown key"}},
        {"upstream", {{"/virtual_services/0/tls", {{"mode", "reencrypt"}, {"certificates", {{{"cert", "a"}, {"key", "b"}}}},
                                                   {"upstream", {{"verfy", true}}}}}},
         {vs + "/tls/upstream/verfy: unknown key (did you mean \"verify\"?)"}},
        {"certificate", {{"/virtual_services/0/tls", {{"mode", "terminate"},
                                                       {"certificates", {{{"cert", "a"}, {"key", "b"}, {"chain", "c"}}}}}}},
         {vs + "/tls/certificates/0/chain: unknown key"}},
        {"http", {{"/virtual_services/0/mode", "http"}, {"/virtual_services/0/http/xff", true}}, {vs + "/http/xff: unknown key"}},
        {"persistence group", {{"/persistence_groups/g", {{"timeout", 5}}}},
         {"/persistence_groups/g/timeout: unknown key (did you mean \"timeout_s\"?)"}},
        {"a key with / and ~ is escaped in the pointer", {{"/virtual_services/0/a~1b~0c", 1}}, {vs + "/a~1b~0c: unknown key"}},
    });
}

TEST_CASE("errors: a key given twice in one object", "[conf]") {
    SECTION("top level") {
        CHECK(errors_of(R"({"threads": 1, "threads": 2, "virtual_services": [
                             {"name": "a", "listen": "127.0.0.1:80", "real_servers": [{"name": "a", "address": "h:1"}]}]})") ==
              std::vector<std::string>{"/threads: key given twice in one object"});
    }
    SECTION("inside arrays, with the element's index") {
        CHECK(errors_of(R"({"virtual_services": [
              {"name": "a", "listen": "127.0.0.1:80", "real_servers": [{"name": "a", "address": "h:1"}]},
              {"name": "b", "listen": "127.0.0.1:81",
               "health_check": {"type": "http", "expect_status": [200, [1, 2], {"x": 1}], "rise": 2, "rise": 3},
               "real_servers": [{"name": "a", "address": "h:1"}, {"name": "b", "address": "h:2", "weight": 1, "weight": 2}]}]})") ==
              std::vector<std::string>{
                  "/virtual_services/1/health_check/rise: key given twice in one object",
                  "/virtual_services/1/real_servers/1/weight: key given twice in one object",
                  "/virtual_services/1/health_check/expect_status/1: expected a status code from 100 to 599 or a "
                  "class \"1xx\" to \"5xx\", got an array",
                  "/virtual_services/1/health_check/expect_status/2: expected a status code from 100 to 599 or a "
                  "class \"1xx\" to \"5xx\", got an object",
              });
    }
    SECTION("the same key in two different objects is fine") {
        CHECK(errors_of(R"({"virtual_services": [
              {"name": "a", "listen": "127.0.0.1:80", "real_servers": [{"name": "a", "address": "h:1"}]},
              {"name": "b", "listen": "127.0.0.1:81", "real_servers": [{"name": "a", "address": "h:1"}]}]})")
                  .empty());
    }
    SECTION("three times is two errors") {
        CHECK(errors_of(R"({"admin": {"listen": "127.0.0.1:1", "listen": "127.0.0.1:2", "listen": "127.0.0.1:3"},
              "virtual_services": [{"name": "a", "listen": "127.0.0.1:80", "real_servers": [{"name": "a", "address": "h:1"}]}]})") ==
              std::vector<std::string>{"/admin/listen: key given twice in one object",
                                       "/admin/listen: key given twice in one object"});
    }
}

TEST_CASE("errors: integers are integers, in range", "[conf]") {
    check_cases({
        {"2.5", {{"/threads", 2.5}}, {"/threads: expected an integer from 0 to 256, got 2.5"}},
        {"2.0 is a float", {{"/threads", 2.0}}, {"/threads: expected an integer from 0 to 256, got 2.0"}},
        {"true", {{"/threads", true}}, {"/threads: expected an integer from 0 to 256, got true"}},
        {"a string", {{"/threads", "2"}}, {"/threads: expected an integer from 0 to 256, got \"2\""}},
        {"null", {{"/threads", nullptr}}, {"/threads: expected an integer from 0 to 256, got null"}},
        {"above", {{"/threads", 257}}, {"/threads: expected an integer from 0 to 256, got 257"}},
        {"below", {{"/threads", -1}}, {"/threads: expected an integer from 0 to 256, got -1"}},
        {"huge", {{"/threads", 18446744073709551615ULL}},
         {"/threads: expected an integer from 0 to 256, got 18446744073709551615"}},
        {"grace", {{"/shutdown_grace_s", 86401}}, {"/shutdown_grace_s: expected an integer from 0 to 86400, got 86401"}},
        {"access_log", {{"/access_log", "some"}},
         {"/access_log: expected one of \"all\", \"errors\", \"off\", got \"some\""}},
        {"max_connections", {{"/virtual_services/0/max_connections", -1}},
         {vs + "/max_connections: expected an integer from 0 to 2147483647, got -1"}},
        {"drain_timeout_s", {{"/virtual_services/0/drain_timeout_s", 0}},
         {vs + "/drain_timeout_s: expected an integer from 1 to 2147483647, got 0"}},
        {"weight 0", {{"/virtual_services/0/real_servers/0/weight", 0}},
         {vs + "/real_servers/0/weight: expected an integer from 1 to 256, got 0"}},
        {"weight 257", {{"/virtual_services/0/real_servers/0/weight", 257}},
         {vs + "/real_servers/0/weight: expected an integer from 1 to 256, got 257"}},
        {"weight 1.5", {{"/virtual_services/0/real_servers/0/weight", 1.5}},
         {vs + "/real_servers/0/weight: expected an integer from 1 to 256, got 1.5"}},
    });
}

TEST_CASE("errors: wrong types name the expected type", "[conf]") {
    check_cases({
        {"admin", {{"/admin", "127.0.0.1:9090"}}, {"/admin: expected an object, got \"127.0.0.1:9090\""}},
        {"groups", {{"/persistence_groups", {1, 2}}}, {"/persistence_groups: expected an object of NAME: group, got an array"}},
        {"services", {{"/virtual_services", Json::object()}},
         {"/virtual_services: expected an array of virtual services, got an object"}},
        {"service", {{"/virtual_services/0", "web"}}, {vs + ": expected an object, got \"web\""}},
        {"name", {{"/virtual_services/0/name", 5}}, {vs + "/name: expected a string, got 5"}},
        {"listen", {{"/virtual_services/0/listen", 8080}}, {vs + "/listen: expected IP:PORT (a string), got 8080"}},
        {"real_servers", {{"/virtual_services/0/real_servers", Json::object()}},
         {vs + "/real_servers: expected an array of real servers, got an object"}},
        {"real server", {{"/virtual_services/0/real_servers/1", nullptr}}, {vs + "/real_servers/1: expected an object, got null"}},
        {"enabled", {{"/virtual_services/0/real_servers/0/enabled", "yes"}},
         {vs + "/real_servers/0/enabled: expected true or false, got \"yes\""}},
        {"enabled 1", {{"/virtual_services/0/real_servers/0/enabled", 1}},
         {vs + "/real_servers/0/enabled: expected true or false, got 1"}},
        {"health_check", {{"/virtual_services/0/health_check", "tcp"}}, {vs + "/health_check: expected an object, got \"tcp\""}},
        {"timeouts", {{"/virtual_services/0/timeouts", 5}}, {vs + "/timeouts: expected an object, got 5"}},
        {"tls", {{"/virtual_services/0/tls", true}}, {vs + "/tls: expected an object, got true"}},
        {"persistence", {{"/virtual_services/0/persistence", "none"}}, {vs + "/persistence: expected an object, got \"none\""}},
        {"a long string is shortened", {{"/virtual_services/0/name", std::string(100, 'x')}},
         {vs + "/name: expected a name of 1 to 64 letters, digits, '_', '.' or '-', got \"" + std::string(80, 'x') +
          "...\""}},
    });
}

TEST_CASE("errors: required keys", "[conf]") {
    check_cases({
        {"virtual_services", {{"/virtual_services", removed()}}, {"/virtual_services: required key is missing"}},
        {"empty virtual_services", {{"/virtual_services", Json::array()}},
         {"/virtual_services: expected at least one virtual service"}},
        {"name", {{"/virtual_services/0/name", removed()}}, {vs + "/name: required key is missing"}},
        {"listen", {{"/virtual_services/0/listen", removed()}}, {vs + "/listen: required key is missing"}},
        {"real_servers", {{"/virtual_services/0/real_servers", removed()}}, {vs + "/real_servers: required key is missing"}},
        {"empty real_servers", {{"/virtual_services/0/real_servers", Json::array()}},
         {vs + "/real_servers: expected at least one real server"}},
        {"real server name", {{"/virtual_services/0/real_servers/0/name", removed()}},
         {vs + "/real_servers/0/name: required key is missing"}},
        {"real server address", {{"/virtual_services/0/real_servers/0/address", removed()}},
         {vs + "/real_servers/0/address: required key is missing"}},
        {"admin listen", {{"/admin", Json::object()}}, {"/admin/listen: required key is missing"}},
        {"persistence type", {{"/virtual_services/0/persistence", Json::object()}},
         {vs + "/persistence/type: required key is missing"}},
        {"tls mode", {{"/virtual_services/0/tls", Json::object()}}, {vs + "/tls/mode: required key is missing"}},
    });
}

TEST_CASE("errors: names", "[conf]") {
    const std::string name_rule = "expected a name of 1 to 64 letters, digits, '_', '.' or '-', got ";
    check_cases({
        {"space", {{"/virtual_services/0/name", "my web"}}, {vs + "/name: " + name_rule + "\"my web\""}},
        {"empty", {{"/virtual_services/0/name", ""}}, {vs + "/name: " + name_rule + "\"\""}},
        {"65 characters", {{"/virtual_services/0/name", std::string(65, 'a')}},
         {vs + "/name: " + name_rule + "\"" + std::string(65, 'a') + "\""}},
        {"slash", {{"/virtual_services/0/real_servers/0/name", "cas/1"}},
         {vs + "/real_servers/0/name: " + name_rule + "\"cas/1\""}},
        {"duplicate real server", {{"/virtual_services/0/real_servers/1/name", "a"}},
         {vs + "/real_servers/1/name: name \"a\" is already used by /virtual_services/0/real_servers/0"}},
        {"duplicate service",
         {{"/virtual_services/1", {{"name", "web"}, {"listen", "127.0.0.1:8081"},
                                   {"real_servers", {{{"name", "a"}, {"address", "h:1"}}}}}}},
         {"/virtual_services/1/name: name \"web\" is already used by /virtual_services/0"}},
        {"group name", {{"/persistence_groups/rpc group", Json::object()}},
         {"/persistence_groups/rpc group: expected a group name of 1 to 64 letters, digits, '_', '.' or '-'"}},
    });
    // 64 characters and every allowed sort of character are fine.
    CHECK(valid({{"/virtual_services/0/name", std::string(64, 'z')}}).virtual_services[0].name.size() == 64);
    CHECK(valid({{"/virtual_services/0/name", "A-z_0.9"}}).virtual_services[0].name == "A-z_0.9");
}

TEST_CASE("errors: addresses", "[conf]") {
    check_cases({
        {"no port", {{"/virtual_services/0/listen", "cas1"}}, {vs + "/listen: expected IP:PORT, got \"cas1\""}},
        {"hostname listen", {{"/virtual_services/0/listen", "localhost:80"}},
         {vs + "/listen: expected IP:PORT, got \"localhost:80\" (an IP address is needed here, not a hostname)"}},
        {"port 0", {{"/virtual_services/0/listen", "127.0.0.1:0"}},
         {vs + "/listen: expected IP:PORT, got \"127.0.0.1:0\" (port must be 1 to 65535)"}},
        {"port 65536", {{"/virtual_services/0/listen", "127.0.0.1:65536"}},
         {vs + "/listen: expected IP:PORT, got \"127.0.0.1:65536\" (port must be 1 to 65535)"}},
        {"IPv6 without brackets", {{"/virtual_services/0/listen", "::1:80"}},
         {vs + "/listen: expected IP:PORT, got \"::1:80\" (an IPv6 address needs brackets, as in [::1]:443)"}},
        {"bad IPv4", {{"/virtual_services/0/listen", "10.0.0.256:80"}},
         {vs + "/listen: expected IP:PORT, got \"10.0.0.256:80\" (not a valid IPv4 address)"}},
        {"bad IPv6", {{"/virtual_services/0/listen", "[::g]:80"}},
         {vs + "/listen: expected IP:PORT, got \"[::g]:80\" (not a valid IPv6 address)"}},
        {"admin hostname", {{"/admin/listen", "localhost:9090"}},
         {"/admin/listen: expected IP:PORT, got \"localhost:9090\" (an IP address is needed here, not a hostname)"}},
        {"real server without port", {{"/virtual_services/0/real_servers/0/address", "cas1"}},
         {vs + "/real_servers/0/address: expected HOST:PORT, got \"cas1\""}},
        {"real server bad hostname", {{"/virtual_services/0/real_servers/0/address", "cas_1:80"}},
         {vs + "/real_servers/0/address: expected HOST:PORT, got \"cas_1:80\" (not a valid hostname (letters, "
               "digits, hyphens and dots))"}},
        {"real server port", {{"/virtual_services/0/real_servers/0/address", "cas1:http"}},
         {vs + "/real_servers/0/address: expected HOST:PORT, got \"cas1:http\" (port must be 1 to 65535)"}},
    });
}

TEST_CASE("errors: the INTERFACE.md example message, in the third service", "[conf]") {
    Json document = minimal_config();
    for (int port : {8081, 8082}) {
        Json service = document["virtual_services"][0];
        service["name"] = "web" + std::to_string(port);
        service["listen"] = "127.0.0.1:" + std::to_string(port);
        document["virtual_services"].push_back(service);
    }
    document["virtual_services"][2]["real_servers"][0]["address"] = "cas1";
    CHECK(errors_of(document.dump()) ==
          std::vector<std::string>{"/virtual_services/2/real_servers/0/address: expected HOST:PORT, got \"cas1\""});
}

TEST_CASE("errors: enumerations list their values", "[conf]") {
    check_cases({
        {"mode", {{"/virtual_services/0/mode", "tpc"}}, {vs + "/mode: expected one of \"tcp\", \"http\", got \"tpc\""}},
        {"mode case", {{"/virtual_services/0/mode", "HTTP"}}, {vs + "/mode: expected one of \"tcp\", \"http\", got \"HTTP\""}},
        {"scheduler", {{"/virtual_services/0/scheduler", "random"}},
         {vs + "/scheduler: expected one of \"round_robin\", \"weighted_round_robin\", \"least_connections\", "
               "\"source_hash\", got \"random\""}},
        {"on_server_down", {{"/virtual_services/0/on_server_down", 1}},
         {vs + "/on_server_down: expected one of \"keep\", \"close\", got 1"}},
        {"persistence type", {{"/virtual_services/0/persistence/type", "ip"}},
         {vs + "/persistence/type: expected one of \"none\", \"source_ip\", \"cookie\", \"rpc_http\", got \"ip\""}},
        {"health check type", {{"/virtual_services/0/health_check/type", "icmp"}},
         {vs + "/health_check/type: expected one of \"tcp\", \"http\", \"https\", \"smtp\", \"dcerpc\", \"none\", got \"icmp\""}},
        {"tls mode", {{"/virtual_services/0/tls/mode", "offload"}},
         {vs + "/tls/mode: expected one of \"terminate\", \"passthrough\", \"reencrypt\", got \"offload\""}},
    });
}

TEST_CASE("errors: persistence", "[conf]") {
    const std::string p = vs + "/persistence";
    check_cases({
        {"group not defined", {{p, {{"type", "source_ip"}, {"group", "rpc"}}}},
         {p + "/group: persistence group \"rpc\" is not defined in /persistence_groups"}},
        {"group defined elsewhere only",
         {{"/persistence_groups/other", Json::object()}, {p, {{"type", "source_ip"}, {"group", "rpc"}}}},
         {p + "/group: persistence group \"rpc\" is not defined in /persistence_groups"}},
        {"group with timeout_s",
         {{"/persistence_groups/rpc", Json::object()}, {p, {{"type", "source_ip"}, {"group", "rpc"}, {"timeout_s", 5}}}},
         {p + "/timeout_s: not allowed together with group (the group's timeout_s applies)"}},
        {"group with max_entries",
         {{"/persistence_groups/rpc", Json::object()}, {p, {{"type", "source_ip"}, {"group", "rpc"}, {"max_entries", 5}}}},
         {p + "/max_entries: not allowed together with group (the group's max_entries applies)"}},
        {"group not a string", {{p, {{"type", "source_ip"}, {"group", 1}}}}, {p + "/group: expected a string, got 1"}},
        {"source_ip timeout_s", {{p, {{"type", "source_ip"}, {"timeout_s", 604801}}}},
         {p + "/timeout_s: expected an integer from 1 to 604800, got 604801"}},
        {"source_ip max_entries", {{p, {{"type", "source_ip"}, {"max_entries", 0}}}},
         {p + "/max_entries: expected an integer >= 1, got 0"}},
        {"cookie in tcp mode", {{p, {{"type", "cookie"}}}},
         {p + "/type: cookie persistence needs mode \"http\" (this service's mode is \"tcp\")"}},
        {"cookie keys with source_ip", {{p, {{"type", "source_ip"}, {"cookie_name", "X"}, {"cookie_secret_file", "s"}}}},
         {p + "/cookie_name: only allowed with type \"cookie\"",
          p + "/cookie_secret_file: only allowed with type \"cookie\""}},
        {"source_ip keys with cookie",
         {{"/virtual_services/0/mode", "http"}, {p, {{"type", "cookie"}, {"group", "g"}, {"max_entries", 5}}}},
         {p + "/group: only allowed with type \"source_ip\"", p + "/max_entries: only allowed with type \"source_ip\""}},
        {"keys with none", {{p, {{"type", "none"}, {"timeout_s", 5}, {"group", "g"}, {"cookie_name", "X"}}}},
         {p + "/group: only allowed with type \"source_ip\"",
          p + "/timeout_s: only allowed with type \"source_ip\" or \"cookie\"",
          p + "/cookie_name: only allowed with type \"cookie\""}},
        {"cookie name not a token",
         {{"/virtual_services/0/mode", "http"}, {p, {{"type", "cookie"}, {"cookie_name", "my cookie"}}}},
         {p + "/cookie_name: expected a cookie name (letters, digits and !#$%&'*+-.^_`|~), got \"my cookie\""}},
        {"cookie name with =", {{"/virtual_services/0/mode", "http"}, {p, {{"type", "cookie"}, {"cookie_name", "a=b"}}}},
         {p + "/cookie_name: expected a cookie name (letters, digits and !#$%&'*+-.^_`|~), got \"a=b\""}},
        {"cookie timeout_s", {{"/virtual_services/0/mode", "http"}, {p, {{"type", "cookie"}, {"timeout_s", 0}}}},
         {p + "/timeout_s: expected an integer from 1 to 604800, got 0"}},
        {"cookie secret empty", {{"/virtual_services/0/mode", "http"}, {p, {{"type", "cookie"}, {"cookie_secret_file", ""}}}},
         {p + "/cookie_secret_file: expected a file path, got \"\""}},
        {"a bad type does not make the other keys unknown", {{p, {{"type", "sticky"}, {"timeout_s", 5}}}},
         {p + "/type: expected one of \"none\", \"source_ip\", \"cookie\", \"rpc_http\", got \"sticky\""}},
        {"rpc_http in tcp mode", {{p, {{"type", "rpc_http"}}}},
         {p + "/type: rpc_http persistence needs mode \"http\" (this service's mode is \"tcp\")"}},
        {"fallback with another type", {{p, {{"type", "source_ip"}, {"fallback", "cookie"}}}},
         {p + "/fallback: only allowed with type \"rpc_http\""}},
        {"rpc_http fallback unknown",
         {{"/virtual_services/0/mode", "http"}, {p, {{"type", "rpc_http"}, {"fallback", "rpc_http"}}}},
         {p + "/fallback: expected one of \"cookie\", \"source_ip\", \"none\", got \"rpc_http\""}},
        {"rpc_http falling back to the cookie takes no table keys",
         {{"/virtual_services/0/mode", "http"}, {p, {{"type", "rpc_http"}, {"group", "g"}, {"max_entries", 5}}}},
         {p + "/group: only allowed with fallback \"source_ip\"",
          p + "/max_entries: only allowed with fallback \"source_ip\""}},
        {"rpc_http falling back to source_ip: a group and its own timeout",
         {{"/virtual_services/0/mode", "http"},
          {"/persistence_groups/rpc", Json::object()},
          {p, {{"type", "rpc_http"}, {"fallback", "source_ip"}, {"group", "rpc"}, {"timeout_s", 5}}}},
         {p + "/timeout_s: not allowed together with group (the group's timeout_s applies)"}},
        {"rpc_http with no fallback takes no other keys",
         {{"/virtual_services/0/mode", "http"},
          {p, {{"type", "rpc_http"}, {"fallback", "none"}, {"timeout_s", 5}, {"cookie_name", "X"}}}},
         {p + "/timeout_s: only allowed with fallback \"source_ip\" or \"cookie\"",
          p + "/cookie_name: only allowed with fallback \"cookie\" or \"source_ip\""}},
        {"group timeout_s", {{"/persistence_groups/rpc", {{"timeout_s", 0}}}},
         {"/persistence_groups/rpc/timeout_s: expected an integer from 1 to 604800, got 0"}},
        {"group max_entries", {{"/persistence_groups/rpc", {{"max_entries", -5}}}},
         {"/persistence_groups/rpc/max_entries: expected an integer >= 1, got -5"}},
        {"group not an object", {{"/persistence_groups/rpc", 5}}, {"/persistence_groups/rpc: expected an object, got 5"}},
    });
}

TEST_CASE("errors: health checks", "[conf]") {
    const std::string h = vs + "/health_check";
    check_cases({
        {"interval below", {{h + "/interval_ms", 99}}, {h + "/interval_ms: expected an integer from 100 to 3600000, got 99"}},
        {"interval above", {{h + "/interval_ms", 3600001}},
         {h + "/interval_ms: expected an integer from 100 to 3600000, got 3600001"}},
        {"timeout below", {{h + "/timeout_ms", 49}}, {h + "/timeout_ms: expected an integer from 50 to 60000, got 49"}},
        {"timeout above", {{h + "/interval_ms", 100000}, {h + "/timeout_ms", 60001}},
         {h + "/timeout_ms: expected an integer from 50 to 60000, got 60001"}},
        {"timeout equal to interval", {{h + "/interval_ms", 1000}, {h + "/timeout_ms", 1000}},
         {h + "/timeout_ms: must be less than interval_ms (1000), got 1000"}},
        {"timeout above interval", {{h + "/interval_ms", 500}, {h + "/timeout_ms", 800}},
         {h + "/timeout_ms: must be less than interval_ms (500), got 800"}},
        {"interval below the default timeout", {{h + "/interval_ms", 500}},
         {h + "/interval_ms: must be greater than timeout_ms (1000 by default), got 500"}},
        {"rise", {{h + "/rise", 0}}, {h + "/rise: expected an integer from 1 to 100, got 0"}},
        {"fall", {{h + "/fall", 101}}, {h + "/fall: expected an integer from 1 to 100, got 101"}},
        {"port", {{h + "/port", 65536}}, {h + "/port: expected an integer from 1 to 65535, got 65536"}},
        {"http keys with tcp", {{h, {{"type", "tcp"}, {"path", "/"}, {"method", "GET"}, {"host", "x"}, {"expect_status", {200}}}}},
         {h + "/method: only allowed with type \"http\" or \"https\"", h + "/path: only allowed with type \"http\" or \"https\"",
          h + "/host: only allowed with type \"http\" or \"https\"",
          h + "/expect_status: only allowed with type \"http\" or \"https\""}},
        {"http keys by default (tcp)", {{h + "/path", "/owa/"}}, {h + "/path: only allowed with type \"http\" or \"https\""}},
        {"http keys with smtp", {{h, {{"type", "smtp"}, {"path", "/"}}}}, {h + "/path: only allowed with type \"http\" or \"https\""}},
        {"http keys with none", {{h, {{"type", "none"}, {"expect_status", {200}}}}},
         {h + "/expect_status: only allowed with type \"http\" or \"https\""}},
        {"https keys with http", {{h, {{"type", "http"}, {"verify", true}, {"ca", "ca.pem"}, {"sni", "x"}}}},
         {h + "/verify: only allowed with type \"https\"", h + "/ca: only allowed with type \"https\"",
          h + "/sni: only allowed with type \"https\""}},
        {"https keys with tcp", {{h, {{"type", "tcp"}, {"verify", false}}}}, {h + "/verify: only allowed with type \"https\""}},
        {"path without /", {{h, {{"type", "http"}, {"path", "owa"}}}},
         {h + "/path: expected a path starting with / (no spaces or control characters), got \"owa\""}},
        {"path with a space", {{h, {{"type", "http"}, {"path", "/a b"}}}},
         {h + "/path: expected a path starting with / (no spaces or control characters), got \"/a b\""}},
        {"method", {{h, {{"type", "http"}, {"method", "GE T"}}}},
         {h + "/method: expected an HTTP method such as GET or HEAD, got \"GE T\""}},
        {"host", {{h, {{"type", "http"}, {"host", ""}}}}, {h + "/host: expected a Host header value (no spaces), got \"\""}},
        {"expect_status items", {{h, {{"type", "http"}, {"expect_status", {200, 99, 600, "6xx", "2x", "abc", 2.5, "200"}}}}},
         {h + "/expect_status/1: expected a status code from 100 to 599 or a class \"1xx\" to \"5xx\", got 99",
          h + "/expect_status/2: expected a status code from 100 to 599 or a class \"1xx\" to \"5xx\", got 600",
          h + "/expect_status/3: expected a status code from 100 to 599 or a class \"1xx\" to \"5xx\", got \"6xx\"",
          h + "/expect_status/4: expected a status code from 100 to 599 or a class \"1xx\" to \"5xx\", got \"2x\"",
          h + "/expect_status/5: expected a status code from 100 to 599 or a class \"1xx\" to \"5xx\", got \"abc\"",
          h + "/expect_status/6: expected a status code from 100 to 599 or a class \"1xx\" to \"5xx\", got 2.5",
          h + "/expect_status/7: expected a status code from 100 to 599 or a class \"1xx\" to \"5xx\", got \"200\""}},
        {"expect_status empty", {{h, {{"type", "http"}, {"expect_status", Json::array()}}}},
         {h + "/expect_status: expected a non-empty array of status codes and classes such as [\"2xx\", 401], got an array"}},
        {"expect_status not an array", {{h, {{"type", "https"}, {"expect_status", 200}}}},
         {h + "/expect_status: expected a non-empty array of status codes and classes such as [\"2xx\", 401], got 200"}},
        {"verify", {{h, {{"type", "https"}, {"verify", "no"}}}}, {h + "/verify: expected true or false, got \"no\""}},
        {"sni is a DNS name", {{h, {{"type", "https"}, {"sni", "10.0.0.1"}}}}, {h + "/sni: expected a DNS name, got \"10.0.0.1\""}},
        {"ca empty", {{h, {{"type", "https"}, {"ca", ""}}}}, {h + "/ca: expected a file path, got \"\""}},
    });
    // A bad type leaves the other keys judged by themselves, not as unknown.
    CHECK(errors_of({{h, {{"type", "htp"}, {"path", "/"}, {"verify", true}}}}) ==
          std::vector<std::string>{h + "/type: expected one of \"tcp\", \"http\", \"https\", \"smtp\", \"dcerpc\", \"none\", got \"htp\""});
    // Common keys are fine with every type, "none" included (passive checks use fall).
    for (const char* type : {"tcp", "http", "https", "smtp", "none"}) {
        INFO(type);
        CHECK(valid({{h, {{"type", type}, {"interval_ms", 5000}, {"timeout_ms", 4999}, {"rise", 3}, {"fall", 1}, {"port", 25}}}})
                  .virtual_services[0]
                  .health_check.timeout_ms == 4999);
    }
}

TEST_CASE("errors: tls", "[conf]") {
    const std::string t = vs + "/tls";
    const Json certificates = Json::array({{{"cert", "a.pem"}, {"key", "a.key"}}});
    check_cases({
        {"terminate without certificates", {{t, {{"mode", "terminate"}}}},
         {t + "/certificates: required for mode \"terminate\""}},
        {"reencrypt without certificates", {{t, {{"mode", "reencrypt"}}}},
         {t + "/certificates: required for mode \"reencrypt\""}},
        {"empty certificates", {{t, {{"mode", "terminate"}, {"certificates", Json::array()}}}},
         {t + "/certificates: expected at least one certificate"}},
        {"certificates not an array", {{t, {{"mode", "terminate"}, {"certificates", "a.pem"}}}},
         {t + "/certificates: expected an array of {\"cert\": ..., \"key\": ...}, got \"a.pem\""}},
        {"certificate without key", {{t, {{"mode", "terminate"}, {"certificates", {{{"cert", "a.pem"}}}}}}},
         {t + "/certificates/0/key: required key is missing"}},
        {"certificate not an object", {{t, {{"mode", "terminate"}, {"certificates", {"a.pem"}}}}},
         {t + "/certificates/0: expected an object, got \"a.pem\""}},
        {"passthrough with certificates", {{t, {{"mode", "passthrough"}, {"certificates", certificates}}}},
         {t + "/certificates: not allowed with mode \"passthrough\" (the real servers present their own)"}},
        {"passthrough with TLS settings",
         {{t, {{"mode", "passthrough"}, {"min_version", "1.3"}, {"ciphers", "HIGH"}, {"ciphersuites", "X"}}}},
         {t + "/min_version: not allowed with mode \"passthrough\" (castellan takes no part in that TLS)",
          t + "/ciphers: not allowed with mode \"passthrough\" (castellan takes no part in that TLS)",
          t + "/ciphersuites: not allowed with mode \"passthrough\" (castellan takes no part in that TLS)"}},
        {"passthrough in http mode", {{"/virtual_services/0/mode", "http"}, {t, {{"mode", "passthrough"}}}},
         {t + "/mode: passthrough cannot be used with mode \"http\": HTTP inside TLS that castellan does not "
              "terminate cannot be read"}},
        {"upstream with terminate", {{t, {{"mode", "terminate"}, {"certificates", certificates}, {"upstream", Json::object()}}}},
         {t + "/upstream: only allowed with mode \"reencrypt\""}},
        {"upstream with passthrough", {{t, {{"mode", "passthrough"}, {"upstream", {{"verify", true}}}}}},
         {t + "/upstream: only allowed with mode \"reencrypt\""}},
        {"upstream values",
         {{t, {{"mode", "reencrypt"}, {"certificates", certificates},
               {"upstream", {{"verify", "yes"}, {"sni", "bad name"}, {"ca", 5}}}}}},
         {t + "/upstream/verify: expected true or false, got \"yes\"", t + "/upstream/ca: expected a string, got 5",
          t + "/upstream/sni: expected a DNS name, got \"bad name\""}},
        {"min_version 1.1", {{t, {{"mode", "terminate"}, {"certificates", certificates}, {"min_version", "1.1"}}}},
         {t + "/min_version: expected \"1.2\" or \"1.3\", got \"1.1\""}},
        {"min_version as a number", {{t, {{"mode", "terminate"}, {"certificates", certificates}, {"min_version", 1.2}}}},
         {t + "/min_version: expected \"1.2\" or \"1.3\", got 1.2"}},
        {"empty ciphers", {{t, {{"mode", "terminate"}, {"certificates", certificates}, {"ciphers", ""}}}},
         {t + "/ciphers: expected an OpenSSL cipher string, got \"\""}},
    });
}

TEST_CASE("errors: http and timeouts", "[conf]") {
    check_cases({
        {"http with tcp mode", {{"/virtual_services/0/http", {{"x_forwarded_for", true}}}},
         {vs + "/http: only allowed with mode \"http\""}},
        {"max_header_bytes", {{"/virtual_services/0/mode", "http"}, {"/virtual_services/0/http/max_header_bytes", 1023}},
         {vs + "/http/max_header_bytes: expected an integer from 1024 to 1048576, got 1023"}},
        {"x_forwarded_for", {{"/virtual_services/0/mode", "http"}, {"/virtual_services/0/http/x_forwarded_for", "yes"}},
         {vs + "/http/x_forwarded_for: expected true or false, got \"yes\""}},
        {"connect_ms", {{"/virtual_services/0/timeouts/connect_ms", 0}},
         {vs + "/timeouts/connect_ms: expected an integer from 1 to 3600000, got 0"}},
        {"handshake_ms", {{"/virtual_services/0/timeouts/handshake_ms", 3600001}},
         {vs + "/timeouts/handshake_ms: expected an integer from 1 to 3600000, got 3600001"}},
        {"client_header_ms", {{"/virtual_services/0/timeouts/client_header_ms", -1}},
         {vs + "/timeouts/client_header_ms: expected an integer from 1 to 3600000, got -1"}},
        {"idle_s", {{"/virtual_services/0/timeouts/idle_s", 604801}},
         {vs + "/timeouts/idle_s: expected an integer from 1 to 604800, got 604801"}},
    });
    // handshake_ms without tls and client_header_ms in tcp mode are accepted (they have defaults).
    const Config config = valid({{"/virtual_services/0/timeouts", {{"handshake_ms", 500}, {"client_header_ms", 600}}}});
    CHECK(config.virtual_services[0].timeouts.handshake_ms == 500);
    CHECK(config.virtual_services[0].timeouts.client_header_ms == 600);
}

TEST_CASE("errors: listeners may not overlap", "[conf]") {
    auto second_service = [](const std::string& listen) {
        return Edit{"/virtual_services/1", {{"name", "second"},
                                            {"listen", listen},
                                            {"real_servers", {{{"name", "a"}, {"address", "127.0.0.1:9001"}}}}}};
    };
    auto first_listen = [](const std::string& listen) { return Edit{"/virtual_services/0/listen", listen}; };
    const std::string second = "/virtual_services/1/listen: ";
    check_cases({
        {"identical", {second_service("127.0.0.1:8080")},
         {second + "127.0.0.1:8080 overlaps 127.0.0.1:8080 of virtual service \"web\" (/virtual_services/0): the same address"}},
        {"specific after wildcard", {first_listen("0.0.0.0:443"), second_service("10.0.0.1:443")},
         {second + "10.0.0.1:443 overlaps 0.0.0.0:443 of virtual service \"web\" (/virtual_services/0): 0.0.0.0:443 takes "
                   "port 443 on every address"}},
        {"wildcard after specific", {first_listen("10.0.0.1:443"), second_service("0.0.0.0:443")},
         {second + "0.0.0.0:443 overlaps 10.0.0.1:443 of virtual service \"web\" (/virtual_services/0): 0.0.0.0:443 takes "
                   "port 443 on every address"}},
        {"IPv6 wildcard", {first_listen("[::]:443"), second_service("[fe80::1]:443")},
         {second + "[fe80::1]:443 overlaps [::]:443 of virtual service \"web\" (/virtual_services/0): [::]:443 takes port "
                   "443 on every address"}},
        {"one IPv6 address spelled twice", {first_listen("[::1]:443"), second_service("[0:0::1]:443")},
         {second + "[0:0::1]:443 overlaps [::1]:443 of virtual service \"web\" (/virtual_services/0): the same address"}},
        {"a service without a valid name is named by its path",
         {{"/virtual_services/0/name", "a b"}, second_service("127.0.0.1:8080")},
         {vs + "/name: expected a name of 1 to 64 letters, digits, '_', '.' or '-', got \"a b\"",
          second + "127.0.0.1:8080 overlaps 127.0.0.1:8080 of /virtual_services/0: the same address"}},
        {"admin on a service's port", {{"/admin/listen", "0.0.0.0:8080"}},
         {"/admin/listen: 0.0.0.0:8080 overlaps 127.0.0.1:8080 of virtual service \"web\" (/virtual_services/0): "
          "0.0.0.0:8080 takes port 8080 on every address"}},
    });

    SECTION("0.0.0.0 and [::] on one port do not overlap ([::] is IPv6-only)") {
        const Config config = valid({first_listen("0.0.0.0:443"), second_service("[::]:443")});
        CHECK(config.virtual_services.size() == 2);
    }
    SECTION("different ports or different specific addresses do not overlap") {
        valid({first_listen("0.0.0.0:443"), second_service("0.0.0.0:80")});
        valid({first_listen("10.0.0.1:443"), second_service("10.0.0.2:443")});
        valid({first_listen("127.0.0.1:443"), second_service("[::1]:443")});
        valid({{"/admin/listen", "127.0.0.1:9090"}});
    }
    SECTION("three services on one address: each later one is reported") {
        Json document = minimal_config();
        for (const char* name : {"b", "c"}) {
            Json service = document["virtual_services"][0];
            service["name"] = name;
            document["virtual_services"].push_back(service);
        }
        const auto lines = errors_of(document.dump());
        REQUIRE(lines.size() == 3);
        CHECK_THAT(lines[0], Catch::StartsWith("/virtual_services/1/listen: 127.0.0.1:8080 overlaps 127.0.0.1:8080 of "
                                               "virtual service \"web\""));
        CHECK_THAT(lines[1], Catch::StartsWith("/virtual_services/2/listen: 127.0.0.1:8080 overlaps 127.0.0.1:8080 of "
                                               "virtual service \"web\""));
        CHECK_THAT(lines[2], Catch::StartsWith("/virtual_services/2/listen: 127.0.0.1:8080 overlaps 127.0.0.1:8080 of "
                                               "virtual service \"b\""));
    }
}

TEST_CASE("errors: all of them are collected, not only the first", "[conf]") {
    const auto lines = errors_of(R"({
        "threads": -1,
        "shutdown_grace_s": 1.5,
        "admin": { "listen": "localhost" },
        "persistence_groups": { "rpc": { "timeout_s": 0 } },
        "virtual_services": [
            { "name": "a b", "listen": "0.0.0.0:135", "mode": "tcp",
              "persistence": { "type": "source_ip", "group": "missing" },
              "real_servers": [ { "name": "cas1", "address": "cas1" }, { "name": "cas1", "address": "10.0.0.1:135", "weight": 0 } ],
              "health_check": { "typ": "tcp" } },
            { "name": "ok", "listen": "10.0.0.1:136", "real_servers": [] }
        ],
        "extra": true
    })");
    CHECK(lines == std::vector<std::string>{
                       "/threads: expected an integer from 0 to 256, got -1",
                       "/shutdown_grace_s: expected an integer from 0 to 86400, got 1.5",
                       "/admin/listen: expected IP:PORT, got \"localhost\"",
                       "/persistence_groups/rpc/timeout_s: expected an integer from 1 to 604800, got 0",
                       "/virtual_services/0/name: expected a name of 1 to 64 letters, digits, '_', '.' or '-', got \"a b\"",
                       "/virtual_services/0/persistence/group: persistence group \"missing\" is not defined in "
                       "/persistence_groups",
                       "/virtual_services/0/real_servers/0/address: expected HOST:PORT, got \"cas1\"",
                       "/virtual_services/0/real_servers/1/weight: expected an integer from 1 to 256, got 0",
                       "/virtual_services/0/real_servers/1/name: name \"cas1\" is already used by "
                       "/virtual_services/0/real_servers/0",
                       "/virtual_services/0/health_check/typ: unknown key (did you mean \"type\"?)",
                       "/virtual_services/1/real_servers: expected at least one real server",
                       "/extra: unknown key",
                   });
}

TEST_CASE("errors: source_addresses", "[conf]") {
    const std::string at = vs + "/source_addresses";
    const std::string expected = "expected an IP address such as \"192.0.2.10\" or \"2001:db8::10\", got ";
    check_cases({
        {"not an array", {{at, "127.0.0.2"}}, {at + ": expected an array of IP addresses, got \"127.0.0.2\""}},
        {"a hostname", {{at, {"127.0.0.2", "lb1.contoso.local"}}}, {at + "/1: " + expected + "\"lb1.contoso.local\""}},
        {"a number", {{at, {2130706434}}}, {at + "/0: " + expected + "2130706434"}},
        {"with a port", {{at, {"127.0.0.2:0"}}}, {at + "/0: " + expected + "\"127.0.0.2:0\" (no port: castellan picks one)"}},
        {"IPv6 in brackets", {{at, {"[2001:db8::1]"}}}, {at + "/0: " + expected + "\"[2001:db8::1]\" (without brackets)"}},
        {"an IPv6 zone", {{at, {"fe80::1%eth0"}}}, {at + "/0: " + expected + "\"fe80::1%eth0\""}},
        {"IPv4 wildcard", {{at, {"0.0.0.0"}}},
         {at + "/0: \"0.0.0.0\" is the wildcard address, which means the kernel's choice: leave source_addresses "
               "out for that"}},
        {"IPv6 wildcard", {{at, {"::"}}},
         {at + "/0: \"::\" is the wildcard address, which means the kernel's choice: leave source_addresses out for "
               "that"}},
        {"the same address twice", {{at, {"127.0.0.2", "127.0.0.3", "127.0.0.2"}}},
         {at + "/2: \"127.0.0.2\" is already listed at " + at + "/0"}},
        {"the same IPv6 address spelled twice", {{at, {"2001:db8::1", "127.0.0.2", "2001:DB8:0::1"}}},
         {at + "/2: \"2001:DB8:0::1\" is already listed at " + at + "/0"}},
        {"an IPv6 real server with only IPv4 source addresses",
         {{at, {"127.0.0.2", "127.0.0.3"}}, {"/virtual_services/0/real_servers/1/address", "[2001:db8::35]:443"}},
         {at + ": has no IPv6 address, which real server \"b\" ([2001:db8::35]:443) needs: a connection to a real "
               "server comes from an address of its family"}},
        {"an IPv4 real server with only IPv6 source addresses", {{at, {"2001:db8::10"}}},
         {at + ": has no IPv4 address, which real server \"a\" (127.0.0.1:9001) needs: a connection to a real "
               "server comes from an address of its family"}},
        {"a misspelt key", {{vs + "/source_address", {"127.0.0.2"}}},
         {vs + "/source_address: unknown key (did you mean \"source_addresses\"?)"}},
    });
}

TEST_CASE("errors: transparent", "[conf]") {
    const std::string at = vs + "/transparent";
    check_cases({
        {"not a boolean", {{at, "yes"}}, {at + ": expected true or false, got \"yes\""}},
        {"with source_addresses", {{at, true}, {vs + "/source_addresses", {"127.0.0.2"}}},
         {at + ": cannot be used with source_addresses: a transparent connection comes from the client's own "
               "address; leave source_addresses out"}},
        {"an IPv6 real server behind an IPv4 listener",
         {{at, true}, {vs + "/real_servers/1/address", "[2001:db8::35]:443"}},
         {at + ": real server \"b\" ([2001:db8::35]:443) is IPv6, the clients of 127.0.0.1:8080 are IPv4: a "
               "transparent connection carries the client's address, so it can only reach a real server of its "
               "family"}},
        {"a misspelt key", {{vs + "/transparant", true}}, {vs + "/transparant: unknown key (did you mean \"transparent\"?)"}},
    });
    // false asks for nothing: source_addresses and mixed families stay allowed.
    CHECK(valid({{at, false}, {vs + "/source_addresses", {"127.0.0.2"}}}).virtual_services[0].source_addresses.size() == 1);
}

TEST_CASE("errors: parse_config never throws", "[conf]") {
    for (const char* text : {"", "null", "{", "[1,2", "{\"virtual_services\": [null, 1, \"x\", [], {}]}",
                             "{\"virtual_services\": [{\"real_servers\": [null, {\"address\": []}]}]}",
                             "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}", "\"\\u0000\"", "1e999"}) {
        INFO(text);
        ParseResult result;
        CHECK_NOTHROW(result = parse_config(text, base_dir));
        CHECK_FALSE(result.config);
        CHECK_FALSE(result.errors.empty());
    }
}
