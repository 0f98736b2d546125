// Valid configs: the INTERFACE.md example, every default, paths, IPv6 and
// hostname addresses, reading from a file.
#include "conf/config_parser.hpp"

#include "config_test_util.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace castellan::conf;
using namespace castellan::conf::test;

namespace {

// The example of INTERFACE.md, "Config file (JSON)", verbatim.
const char* const interface_example = R"({
  "threads": 0,
  "shutdown_grace_s": 30,
  "admin": { "listen": "127.0.0.1:9090", "token_file": "admin.token" },
  "persistence_groups": { "exchange-rpc": { "timeout_s": 7200 } },
  "virtual_services": [
    {
      "name": "cas-rpc-epm",
      "listen": "0.0.0.0:135",
      "mode": "tcp",
      "scheduler": "least_connections",
      "persistence": { "type": "source_ip", "group": "exchange-rpc" },
      "real_servers": [
        { "name": "cas1", "address": "192.168.0.34:135", "weight": 1 },
        { "name": "cas2", "address": "192.168.0.35:135", "weight": 1 }
      ],
      "health_check": { "type": "tcp", "port": 59532, "interval_ms": 2000, "timeout_ms": 1000, "rise": 2, "fall": 2 },
      "timeouts": { "connect_ms": 3000, "idle_s": 7200 }
    },
    {
      "name": "cas-https",
      "listen": "0.0.0.0:443",
      "mode": "http",
      "tls": {
        "mode": "reencrypt",
        "certificates": [ { "cert": "mail.pem", "key": "mail.key" } ],
        "min_version": "1.2",
        "upstream": { "verify": false, "sni": "mail.contoso.com" }
      },
      "scheduler": "round_robin",
      "persistence": { "type": "cookie", "cookie_name": "CASTELLAN", "timeout_s": 1800 },
      "real_servers": [
        { "name": "cas1", "address": "192.168.0.34:443" },
        { "name": "cas2", "address": "192.168.0.35:443" }
      ],
      "health_check": { "type": "https", "path": "/owa/auth/logon.aspx", "expect_status": [200] },
      "http": { "x_forwarded_for": true, "max_header_bytes": 65536 },
      "timeouts": { "connect_ms": 3000, "idle_s": 1800, "client_header_ms": 10000 }
    }
  ]
})";

// A folder of its own under the system temp folder, removed at the end.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() /
               ("castellan-conf-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    static int& counter() {
        static int value = 0;
        return value;
    }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name) << text;
        return (path / name).string();
    }
};

}  // namespace

TEST_CASE("config: the INTERFACE.md example parses with its values", "[conf]") {
    const auto result = parse_config(interface_example, "/etc/castellan");
    for (const auto& line : error_lines(result)) UNSCOPED_INFO(line);
    REQUIRE(result.errors.empty());
    REQUIRE(result.config);
    const Config& config = *result.config;

    CHECK(config.threads == 0);
    CHECK(config.shutdown_grace_s == 30);
    REQUIRE(config.admin);
    CHECK(config.admin->listen == HostPort{"127.0.0.1", 9090, HostPort::Kind::ipv4});
    CHECK(config.admin->token_file == "/etc/castellan/admin.token");
    REQUIRE(config.persistence_groups.size() == 1);
    CHECK(config.persistence_groups.at("exchange-rpc").timeout_s == 7200);
    CHECK(config.persistence_groups.at("exchange-rpc").max_entries == 1000000);
    REQUIRE(config.virtual_services.size() == 2);

    const VirtualService& rpc = config.virtual_services[0];
    CHECK(rpc.name == "cas-rpc-epm");
    CHECK(rpc.listen == HostPort{"0.0.0.0", 135, HostPort::Kind::ipv4});
    CHECK(rpc.mode == Mode::tcp);
    CHECK(rpc.scheduler == SchedulerKind::least_connections);
    CHECK(rpc.persistence.type == PersistenceKind::source_ip);
    CHECK(rpc.persistence.group == "exchange-rpc");
    CHECK(rpc.persistence.timeout_s == 7200);  // the group's
    REQUIRE(rpc.real_servers.size() == 2);
    CHECK(rpc.real_servers[0] == RealServer{"cas1", {"192.168.0.34", 135, HostPort::Kind::ipv4}, 1, true});
    CHECK(rpc.real_servers[1] == RealServer{"cas2", {"192.168.0.35", 135, HostPort::Kind::ipv4}, 1, true});
    CHECK(rpc.health_check.type == HealthCheckKind::tcp);
    CHECK(rpc.health_check.port == 59532);
    CHECK(rpc.health_check.interval_ms == 2000);
    CHECK(rpc.health_check.timeout_ms == 1000);
    CHECK(rpc.health_check.rise == 2);
    CHECK(rpc.health_check.fall == 2);
    CHECK(rpc.timeouts.connect_ms == 3000);
    CHECK(rpc.timeouts.idle_s == 7200);
    CHECK_FALSE(rpc.tls);

    const VirtualService& https = config.virtual_services[1];
    CHECK(https.name == "cas-https");
    CHECK(https.listen.to_string() == "0.0.0.0:443");
    CHECK(https.mode == Mode::http);
    REQUIRE(https.tls);
    CHECK(https.tls->mode == TlsMode::reencrypt);
    REQUIRE(https.tls->certificates.size() == 1);
    CHECK(https.tls->certificates[0].cert == "/etc/castellan/mail.pem");
    CHECK(https.tls->certificates[0].key == "/etc/castellan/mail.key");
    CHECK(https.tls->min_version == "1.2");
    CHECK_FALSE(https.tls->upstream.verify);
    CHECK(https.tls->upstream.sni == "mail.contoso.com");
    CHECK(https.scheduler == SchedulerKind::round_robin);
    CHECK(https.persistence.type == PersistenceKind::cookie);
    CHECK(https.persistence.cookie_name == "CASTELLAN");
    CHECK(https.persistence.cookie_timeout_s == 1800);
    CHECK_FALSE(https.persistence.cookie_secret_file);
    CHECK(https.real_servers[1].address.to_string() == "192.168.0.35:443");
    CHECK(https.health_check.type == HealthCheckKind::https);
    CHECK(https.health_check.path == "/owa/auth/logon.aspx");
    CHECK(https.health_check.expect_status == std::vector<StatusRange>{{200, 200}});
    CHECK(https.health_check.method == "GET");
    CHECK(https.http.x_forwarded_for);
    CHECK(https.http.max_header_bytes == 65536);
    CHECK(https.timeouts.connect_ms == 3000);
    CHECK(https.timeouts.idle_s == 1800);
    CHECK(https.timeouts.client_header_ms == 10000);
}

TEST_CASE("config: every default of a minimal config", "[conf]") {
    const Config config = valid({});
    CHECK(config.threads == 0);
    CHECK(config.shutdown_grace_s == 30);
    CHECK(config.access_log == castellan::conf::AccessLog::all);
    CHECK_FALSE(config.admin);
    CHECK(config.persistence_groups.empty());
    REQUIRE(config.virtual_services.size() == 1);

    const VirtualService& s = config.virtual_services[0];
    CHECK(s.mode == Mode::tcp);
    CHECK(s.scheduler == SchedulerKind::round_robin);
    CHECK(s.persistence == Persistence{});
    CHECK(s.persistence.type == PersistenceKind::none);
    CHECK(s.real_servers[0].weight == 1);
    CHECK(s.real_servers[0].enabled);
    CHECK(s.real_servers[0].address.kind == HostPort::Kind::ipv4);

    const HealthCheck& hc = s.health_check;
    CHECK(hc.type == HealthCheckKind::tcp);
    CHECK(hc.interval_ms == 2000);
    CHECK(hc.timeout_ms == 1000);
    CHECK(hc.rise == 2);
    CHECK(hc.fall == 2);
    CHECK_FALSE(hc.port);
    CHECK(hc.method == "GET");
    CHECK(hc.path == "/");
    CHECK_FALSE(hc.host);
    CHECK(hc.expect_status == std::vector<StatusRange>{{200, 299}, {301, 301}, {302, 302}, {401, 401}});
    CHECK_FALSE(hc.verify);
    CHECK_FALSE(hc.ca);
    CHECK_FALSE(hc.sni);

    CHECK_FALSE(s.tls);
    CHECK(s.http.x_forwarded_for);
    CHECK(s.http.max_header_bytes == 65536);
    CHECK(s.timeouts.connect_ms == 3000);
    CHECK(s.timeouts.handshake_ms == 10000);
    CHECK(s.timeouts.client_header_ms == 10000);
    CHECK(s.timeouts.idle_s == 7200);
    CHECK(s.max_connections == 0);
    CHECK(s.on_server_down == OnServerDown::keep);
    CHECK_FALSE(s.drain_timeout_s);
}

TEST_CASE("config: idle_s defaults to 3600 in http mode, 7200 in tcp mode", "[conf]") {
    CHECK(valid({{"/virtual_services/0/mode", "http"}}).virtual_services[0].timeouts.idle_s == 3600);
    CHECK(valid({{"/virtual_services/0/mode", "tcp"}}).virtual_services[0].timeouts.idle_s == 7200);
    CHECK(valid({{"/virtual_services/0/mode", "http"}, {"/virtual_services/0/timeouts/idle_s", 7200}})
              .virtual_services[0]
              .timeouts.idle_s == 7200);
    // Another timeouts key given does not make idle_s "given".
    CHECK(valid({{"/virtual_services/0/mode", "http"}, {"/virtual_services/0/timeouts/connect_ms", 500}})
              .virtual_services[0]
              .timeouts.idle_s == 3600);
}

TEST_CASE("config: defaults of the optional objects once present", "[conf]") {
    SECTION("a persistence group") {
        const Config config = valid({{"/persistence_groups/g", Json::object()}});
        CHECK(config.persistence_groups.at("g") == PersistenceGroup{1800, 1000000});
    }
    SECTION("source_ip persistence with its own table") {
        const Config config = valid({{"/virtual_services/0/persistence", {{"type", "source_ip"}}}});
        const Persistence& p = config.virtual_services[0].persistence;
        CHECK(p.type == PersistenceKind::source_ip);
        CHECK_FALSE(p.group);
        CHECK(p.timeout_s == 1800);
        CHECK(p.max_entries == 1000000);
    }
    SECTION("cookie persistence") {
        const Config config = valid({{"/virtual_services/0/mode", "http"},
                                     {"/virtual_services/0/persistence", {{"type", "cookie"}}}});
        const Persistence& p = config.virtual_services[0].persistence;
        CHECK(p.cookie_name == "CASTELLAN");
        CHECK_FALSE(p.cookie_timeout_s);
        CHECK_FALSE(p.cookie_secret_file);
        CHECK_FALSE(uses_source_ip_table(p));
        CHECK(uses_cookie(p));
    }
    SECTION("rpc_http persistence: falls back to the cookie by default") {
        const Config config = valid({{"/virtual_services/0/mode", "http"},
                                     {"/virtual_services/0/persistence", {{"type", "rpc_http"}, {"timeout_s", 3600}}}});
        const Persistence& p = config.virtual_services[0].persistence;
        CHECK(p.type == PersistenceKind::rpc_http);
        CHECK(p.fallback == PersistenceKind::cookie);
        CHECK(p.cookie_timeout_s == 3600);  // timeout_s is the fallback's: the cookie's
        CHECK(uses_cookie(p));
        CHECK_FALSE(uses_source_ip_table(p));
    }
    SECTION("rpc_http persistence falling back to source_ip: the table's keys, and the cookie's name") {
        const Config config =
            valid({{"/virtual_services/0/mode", "http"},
                   {"/persistence_groups/oa", {{"timeout_s", 600}}},
                   {"/virtual_services/0/persistence",
                    {{"type", "rpc_http"}, {"fallback", "source_ip"}, {"group", "oa"}, {"cookie_name", "OA"}}}});
        const Persistence& p = config.virtual_services[0].persistence;
        CHECK(p.fallback == PersistenceKind::source_ip);
        CHECK(p.group == "oa");
        CHECK(p.timeout_s == 600);
        CHECK(p.cookie_name == "OA");
        CHECK_FALSE(p.cookie_timeout_s);  // a session cookie
        CHECK(uses_cookie(p));
        CHECK(uses_source_ip_table(p));
    }
    SECTION("rpc_http persistence with no fallback: RTS pairing alone, no cookie") {
        const Config config = valid({{"/virtual_services/0/mode", "http"},
                                     {"/virtual_services/0/persistence", {{"type", "rpc_http"}, {"fallback", "none"}}}});
        const Persistence& p = config.virtual_services[0].persistence;
        CHECK(p.fallback == PersistenceKind::none);
        CHECK_FALSE(uses_cookie(p));
        CHECK_FALSE(uses_source_ip_table(p));
    }
    SECTION("tls terminate") {
        const Config config = valid({{"/virtual_services/0/tls",
                                      {{"mode", "terminate"}, {"certificates", {{{"cert", "a.pem"}, {"key", "a.key"}}}}}}});
        const Tls& tls = *config.virtual_services[0].tls;
        CHECK(tls.mode == TlsMode::terminate);
        CHECK(tls.min_version == "1.2");
        CHECK_FALSE(tls.ciphers);
        CHECK_FALSE(tls.ciphersuites);
        CHECK(tls.upstream == UpstreamTls{});
    }
    SECTION("tls passthrough") {
        const Config config = valid({{"/virtual_services/0/tls", {{"mode", "passthrough"}}}});
        CHECK(config.virtual_services[0].tls->mode == TlsMode::passthrough);
        CHECK(config.virtual_services[0].tls->certificates.empty());
    }
    SECTION("an empty health_check object is a tcp check") {
        const Config config = valid({{"/virtual_services/0/health_check", Json::object()}});
        CHECK(config.virtual_services[0].health_check == HealthCheck{});
    }
    SECTION("an admin without a token") {
        const Config config = valid({{"/admin", {{"listen", "127.0.0.1:9090"}}}});
        CHECK_FALSE(config.admin->token_file);
    }
}

TEST_CASE("config: every key set to a non-default value", "[conf]") {
    const Config config = valid({
        {"/threads", 4},
        {"/shutdown_grace_s", 0},
        {"/access_log", "errors"},
        {"/persistence_groups/rpc", {{"timeout_s", 60}, {"max_entries", 10}}},
        {"/virtual_services/0/mode", "http"},
        {"/virtual_services/0/scheduler", "source_hash"},
        {"/virtual_services/0/persistence",
         {{"type", "cookie"}, {"cookie_name", "SRV_id"}, {"timeout_s", 600}, {"cookie_secret_file", "/run/secret"}}},
        {"/virtual_services/0/real_servers/1/weight", 256},
        {"/virtual_services/0/real_servers/1/enabled", false},
        {"/virtual_services/0/health_check",
         {{"type", "https"},
          {"interval_ms", 100},
          {"timeout_ms", 50},
          {"rise", 1},
          {"fall", 100},
          {"port", 65535},
          {"method", "HEAD"},
          {"path", "/ews/exchange.asmx?x=1"},
          {"host", "mail.contoso.com"},
          {"expect_status", {"2xx", "3XX", 401}},
          {"verify", true},
          {"ca", "ca.pem"},
          {"sni", "mail.contoso.com"}}},
        {"/virtual_services/0/tls",
         {{"mode", "terminate"},
          {"certificates", {{{"cert", "a.pem"}, {"key", "a.key"}}, {{"cert", "/abs/b.pem"}, {"key", "/abs/b.key"}}}},
          {"min_version", "1.3"},
          {"ciphers", "HIGH:!aNULL"},
          {"ciphersuites", "TLS_AES_256_GCM_SHA384"}}},
        {"/virtual_services/0/http", {{"x_forwarded_for", false}, {"max_header_bytes", 1024}}},
        {"/virtual_services/0/timeouts", {{"connect_ms", 1}, {"handshake_ms", 2}, {"client_header_ms", 3}, {"idle_s", 4}}},
        {"/virtual_services/0/max_connections", 100000},
        {"/virtual_services/0/on_server_down", "close"},
        {"/virtual_services/0/drain_timeout_s", 1},
    });
    CHECK(config.threads == 4);
    CHECK(config.shutdown_grace_s == 0);
    CHECK(config.access_log == castellan::conf::AccessLog::errors);
    CHECK(config.persistence_groups.at("rpc") == PersistenceGroup{60, 10});
    const VirtualService& s = config.virtual_services[0];
    CHECK(s.scheduler == SchedulerKind::source_hash);
    CHECK(s.persistence.cookie_name == "SRV_id");
    CHECK(s.persistence.cookie_timeout_s == 600);
    CHECK(s.persistence.cookie_secret_file == "/run/secret");
    CHECK(s.real_servers[1].weight == 256);
    CHECK_FALSE(s.real_servers[1].enabled);
    const HealthCheck& hc = s.health_check;
    CHECK(hc.type == HealthCheckKind::https);
    CHECK(hc.interval_ms == 100);
    CHECK(hc.timeout_ms == 50);
    CHECK(hc.rise == 1);
    CHECK(hc.fall == 100);
    CHECK(hc.port == 65535);
    CHECK(hc.method == "HEAD");
    CHECK(hc.path == "/ews/exchange.asmx?x=1");
    CHECK(hc.host == "mail.contoso.com");
    CHECK(hc.expect_status == std::vector<StatusRange>{{200, 299}, {300, 399}, {401, 401}});
    CHECK(hc.verify);
    CHECK(hc.ca == "/etc/castellan/ca.pem");
    CHECK(hc.sni == "mail.contoso.com");
    const Tls& tls = *s.tls;
    CHECK(tls.certificates == std::vector<Certificate>{{"/etc/castellan/a.pem", "/etc/castellan/a.key"},
                                                       {"/abs/b.pem", "/abs/b.key"}});
    CHECK(tls.min_version == "1.3");
    CHECK(tls.ciphers == "HIGH:!aNULL");
    CHECK(tls.ciphersuites == "TLS_AES_256_GCM_SHA384");
    CHECK_FALSE(s.http.x_forwarded_for);
    CHECK(s.http.max_header_bytes == 1024);
    CHECK(s.timeouts == Timeouts{1, 2, 3, 4});
    CHECK(s.max_connections == 100000);
    CHECK(s.on_server_down == OnServerDown::close);
    CHECK(s.drain_timeout_s == 1);
}

TEST_CASE("config: source_ip persistence with its own table", "[conf]") {
    const Config config =
        valid({{"/virtual_services/0/persistence", {{"type", "source_ip"}, {"timeout_s", 604800}, {"max_entries", 5}}}});
    const Persistence& p = config.virtual_services[0].persistence;
    CHECK(p.timeout_s == 604800);
    CHECK(p.max_entries == 5);
    CHECK_FALSE(p.group);
}

TEST_CASE("config: a persistence group shared by two services", "[conf]") {
    const Config config = valid({
        {"/persistence_groups/exchange-rpc", {{"timeout_s", 7200}, {"max_entries", 50}}},
        {"/virtual_services/0/persistence", {{"type", "source_ip"}, {"group", "exchange-rpc"}}},
        {"/virtual_services/1",
         {{"name", "mailbox"},
          {"listen", "127.0.0.1:8081"},
          {"persistence", {{"type", "source_ip"}, {"group", "exchange-rpc"}}},
          {"real_servers", {{{"name", "a"}, {"address", "127.0.0.1:9011"}}}}}},
    });
    for (const auto& service : config.virtual_services) {
        CHECK(service.persistence.group == "exchange-rpc");
        CHECK(service.persistence.timeout_s == 7200);
        CHECK(service.persistence.max_entries == 50);
    }
}

TEST_CASE("config: IPv6 listen addresses", "[conf]") {
    SECTION("loopback") {
        const Config config = valid({{"/virtual_services/0/listen", "[::1]:8443"}});
        const HostPort& listen = config.virtual_services[0].listen;
        CHECK(listen == HostPort{"::1", 8443, HostPort::Kind::ipv6});
        CHECK(listen.to_string() == "[::1]:8443");
        CHECK_FALSE(listen.is_wildcard());
    }
    SECTION("wildcard") {
        const Config config = valid({{"/virtual_services/0/listen", "[::]:443"}});
        CHECK(config.virtual_services[0].listen.is_wildcard());
        CHECK(config.virtual_services[0].listen.kind == HostPort::Kind::ipv6);
    }
    SECTION("full form, as written") {
        const Config config = valid({{"/virtual_services/0/listen", "[2001:DB8:0:0:0:0:0:1]:80"}});
        CHECK(config.virtual_services[0].listen.host == "2001:DB8:0:0:0:0:0:1");
    }
    SECTION("admin on IPv6") {
        const Config config = valid({{"/admin/listen", "[::1]:9090"}});
        CHECK(config.admin->listen.kind == HostPort::Kind::ipv6);
    }
}

TEST_CASE("config: real servers by hostname and by IPv6", "[conf]") {
    const Config config = valid({
        {"/virtual_services/0/real_servers/0/address", "cas1.contoso.local:443"},
        {"/virtual_services/0/real_servers/1/address", "[fd00::34]:443"},
    });
    const auto& servers = config.virtual_services[0].real_servers;
    CHECK(servers[0].address == HostPort{"cas1.contoso.local", 443, HostPort::Kind::hostname});
    CHECK(servers[1].address == HostPort{"fd00::34", 443, HostPort::Kind::ipv6});
    CHECK(servers[1].address.to_string() == "[fd00::34]:443");
}

TEST_CASE("config: source_addresses", "[conf]") {
    SECTION("absent and [] are the kernel's choice") {
        CHECK(valid({}).virtual_services[0].source_addresses.empty());
        CHECK(valid({{"/virtual_services/0/source_addresses", Json::array()}}).virtual_services[0].source_addresses.empty());
    }
    SECTION("IPv4 and IPv6 literals, kept as written and in order") {
        const Config config = valid({
            {"/virtual_services/0/source_addresses", {"192.0.2.12", "192.0.2.11", "2001:DB8::10"}},
            {"/virtual_services/0/real_servers/1/address", "[2001:db8::35]:443"},
        });
        CHECK(config.virtual_services[0].source_addresses ==
              std::vector<std::string>{"192.0.2.12", "192.0.2.11", "2001:DB8::10"});
    }
    SECTION("a hostname real server is checked when it is resolved, not here") {
        const Config config = valid({
            {"/virtual_services/0/source_addresses", {"2001:db8::10"}},
            {"/virtual_services/0/real_servers/0/address", "cas1.contoso.local:443"},
            {"/virtual_services/0/real_servers/1/address", "[2001:db8::35]:443"},
        });
        CHECK(config.virtual_services[0].source_addresses.size() == 1);
    }
    SECTION("a change of source_addresses changes the service") {
        CHECK_FALSE(valid({{"/virtual_services/0/source_addresses", {"127.0.0.2"}}}) == valid({}));
    }
}

TEST_CASE("config: transparent", "[conf]") {
    CHECK_FALSE(valid({}).virtual_services[0].transparent);
    CHECK_FALSE(valid({{"/virtual_services/0/transparent", false}}).virtual_services[0].transparent);
    CHECK(valid({{"/virtual_services/0/transparent", true}}).virtual_services[0].transparent);
    SECTION("a hostname real server is checked when it is resolved, not here") {
        CHECK(valid({
                        {"/virtual_services/0/transparent", true},
                        {"/virtual_services/0/real_servers/0/address", "cas1.contoso.local:443"},
                    })
                  .virtual_services[0]
                  .transparent);
    }
    SECTION("an IPv6 listener with IPv6 real servers") {
        CHECK(valid({
                        {"/virtual_services/0/transparent", true},
                        {"/virtual_services/0/listen", "[::]:443"},
                        {"/virtual_services/0/real_servers/0/address", "[2001:db8::34]:443"},
                        {"/virtual_services/0/real_servers/1/address", "[2001:db8::35]:443"},
                    })
                  .virtual_services[0]
                  .transparent);
    }
    SECTION("turning it on changes the service") {
        CHECK_FALSE(valid({{"/virtual_services/0/transparent", true}}) == valid({}));
    }
}

TEST_CASE("config: relative paths are made absolute against base_dir", "[conf]") {
    const std::vector<Edit> edits = {
        {"/admin", {{"listen", "127.0.0.1:9090"}, {"token_file", "secrets/admin.token"}}},
        {"/virtual_services/0/mode", "http"},
        {"/virtual_services/0/persistence", {{"type", "cookie"}, {"cookie_secret_file", "./cookie.secret"}}},
        {"/virtual_services/0/health_check", {{"type", "https"}, {"ca", "../ca/root.pem"}}},
        {"/virtual_services/0/tls",
         {{"mode", "reencrypt"},
          {"certificates", {{{"cert", "mail.pem"}, {"key", "/var/lib/keys/mail.key"}}}},
          {"upstream", {{"ca", "upstream-ca.pem"}}}}},
    };
    auto check = [&](const std::string& base, const std::string& expected_base) {
        const auto result = parse_config(edited(edits).dump(), base);
        REQUIRE(result.config);
        const Config& config = *result.config;
        const VirtualService& s = config.virtual_services[0];
        CHECK(config.admin->token_file == expected_base + "/secrets/admin.token");
        CHECK(s.persistence.cookie_secret_file == expected_base + "/cookie.secret");
        CHECK(s.health_check.ca == expected_base + "/../ca/root.pem");
        CHECK(s.tls->certificates[0].cert == expected_base + "/mail.pem");
        CHECK(s.tls->certificates[0].key == "/var/lib/keys/mail.key");  // absolute: kept
        CHECK(s.tls->upstream.ca == expected_base + "/upstream-ca.pem");
    };
    SECTION("an absolute base") { check("/etc/castellan", "/etc/castellan"); }
    SECTION("a base with a trailing slash") { check("/etc/castellan/", "/etc/castellan"); }
    SECTION("a relative base is taken from the working folder") {
        const std::string cwd = std::filesystem::current_path().string();
        check("conf.d", cwd + "/conf.d");
    }
    SECTION("an empty base is the working folder") {
        const std::string cwd = std::filesystem::current_path().string();
        check("", cwd);
    }
}

TEST_CASE("config: files are not opened by parse_config", "[conf]") {
    // The runtime checks certificates and secrets at load; --check only reads the config.
    const Config config = valid({{"/virtual_services/0/tls",
                                  {{"mode", "terminate"},
                                   {"certificates", {{{"cert", "/does/not/exist.pem"}, {"key", "nope.key"}}}}}}});
    CHECK(config.virtual_services[0].tls->certificates[0].cert == "/does/not/exist.pem");
}

TEST_CASE("config: load_config_file reads the file, paths relative to its folder", "[conf]") {
    const TempDir dir;
    Json document = minimal_config();
    document["admin"] = {{"listen", "127.0.0.1:9090"}, {"token_file", "admin.token"}};
    const std::string file = dir.write("castellan.json", document.dump());

    const auto result = load_config_file(file);
    for (const auto& line : error_lines(result)) UNSCOPED_INFO(line);
    REQUIRE(result.config);
    CHECK(result.config->admin->token_file == (dir.path / "admin.token").string());
}

TEST_CASE("config: load_config_file of a missing or unreadable file", "[conf]") {
    const TempDir dir;
    SECTION("missing") {
        const std::string file = (dir.path / "missing.json").string();
        const auto result = load_config_file(file);
        CHECK_FALSE(result.config);
        REQUIRE(result.errors.size() == 1);
        CHECK(result.errors[0].path.empty());
        CHECK(result.errors[0].message == "cannot read config file \"" + file + "\": No such file or directory");
        CHECK(result.errors[0].to_string() == result.errors[0].message);
    }
    SECTION("a folder") {
        const auto result = load_config_file(dir.path.string());
        CHECK_FALSE(result.config);
        REQUIRE(result.errors.size() == 1);
        CHECK(result.errors[0].path.empty());
        CHECK(result.errors[0].message == "cannot read config file \"" + dir.path.string() + "\": Is a directory");
    }
    SECTION("an invalid file") {
        const auto result = load_config_file(dir.write("bad.json", "{\"threads\": 1000}"));
        CHECK_FALSE(result.config);
        CHECK(error_lines(result) == std::vector<std::string>{"/threads: expected an integer from 0 to 256, got 1000",
                                                              "/virtual_services: required key is missing"});
    }
}

TEST_CASE("config: HostPort and enum spellings", "[conf]") {
    CHECK(std::string(to_string(Mode::http)) == "http");
    CHECK(std::string(to_string(SchedulerKind::weighted_round_robin)) == "weighted_round_robin");
    CHECK(std::string(to_string(SchedulerKind::least_connections)) == "least_connections");
    CHECK(std::string(to_string(SchedulerKind::source_hash)) == "source_hash");
    CHECK(std::string(to_string(PersistenceKind::source_ip)) == "source_ip");
    CHECK(std::string(to_string(HealthCheckKind::smtp)) == "smtp");
    CHECK(std::string(to_string(TlsMode::reencrypt)) == "reencrypt");
    CHECK(std::string(to_string(OnServerDown::close)) == "close");
    CHECK(ConfigError{"/threads", "bad"}.to_string() == "/threads: bad");
}
