// The Exchange 2010 template (`castellan template exchange2010`): every option
// shapes the config as the README says, every config it builds passes
// castellan's own parser, it agrees with conf/examples/exchange2010-rpc-smtp.json,
// and bad arguments are refused naming the argument.
#include "conf/exchange_template.hpp"

#include "conf/config_parser.hpp"
#include "conf/json_layout.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <tuple>

using namespace castellan::conf;
using Json = nlohmann::ordered_json;

namespace {

Exchange2010Options two_cas() {
    Exchange2010Options options;
    options.cas = {{"cas1", "192.168.0.34"}, {"cas2", "192.168.0.35"}};
    return options;
}

Exchange2010Options with_certificate(Exchange2010Options options, std::optional<WebTls> tls) {
    options.certificate = Exchange2010Options::Certificate{"mail.contoso.com.pem", "mail.contoso.com.key"};
    options.web_tls = tls;
    return options;
}

// The config of `options`, which must be accepted, after it passed
// castellan's own parser with no error (as `--check` would parse it).
Json built(const Exchange2010Options& options) {
    const auto result = make_exchange2010_config(options);
    for (const auto& error : result.errors) UNSCOPED_INFO(error);
    REQUIRE(result.errors.empty());
    REQUIRE(result.config);
    const std::string text = layout_json(*result.config);
    INFO(text);
    const auto parsed = parse_config(text, "/etc/castellan");
    for (const auto& error : parsed.errors) UNSCOPED_INFO(error.to_string());
    REQUIRE(parsed.errors.empty());
    REQUIRE(parsed.config);
    CHECK(Json::parse(text) == *result.config);
    return *result.config;
}

const Json& service(const Json& config, const std::string& name) {
    for (const auto& candidate : config.at("virtual_services")) {
        if (candidate.at("name") == name) return candidate;
    }
    FAIL("no virtual service " << name);
    throw std::logic_error("unreachable");
}

std::vector<std::string> service_names(const Json& config) {
    std::vector<std::string> names;
    for (const auto& candidate : config.at("virtual_services")) names.push_back(candidate.at("name").get<std::string>());
    return names;
}

std::vector<std::string> keys_of(const Json& object) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : object.items()) keys.push_back(key);
    return keys;
}

std::vector<std::string> errors_of(const Exchange2010Options& options) {
    const auto result = make_exchange2010_config(options);
    CHECK_FALSE(result.config);
    return result.errors;
}

// Whether exactly one error came back and it names `argument`.
bool one_error_naming(const Exchange2010Options& options, const std::string& argument) {
    const auto errors = errors_of(options);
    for (const auto& error : errors) UNSCOPED_INFO(error);
    return errors.size() == 1 && errors[0].find(argument) != std::string::npos;
}

}  // namespace

TEST_CASE("exchange template: the RPC group, SMTP and the admin API", "[conf][template]") {
    const Json config = built(two_cas());
    CHECK(service_names(config) ==
          std::vector<std::string>{"cas-rpc-epm", "cas-rpc-mailbox", "cas-rpc-ab", "cas-smtp", "cas-https"});
    CHECK(config.at("persistence_groups") == Json::parse(R"({"exchange-rpc": {"timeout_s": 7200}})"));
    CHECK(config.at("admin") == Json::parse(R"({"listen": "127.0.0.1:9090", "token_file": "admin.token"})"));

    const std::vector<std::pair<std::string, int>> rpc = {
        {"cas-rpc-epm", 135}, {"cas-rpc-mailbox", 59532}, {"cas-rpc-ab", 59533}};
    for (const auto& [name, port] : rpc) {
        INFO(name);
        const Json& rpc_service = service(config, name);
        CHECK(rpc_service.at("listen") == "0.0.0.0:" + std::to_string(port));
        CHECK(rpc_service.at("persistence") == Json::parse(R"({"type": "source_ip", "group": "exchange-rpc"})"));
        CHECK(rpc_service.at("on_server_down") == "close");
        CHECK(rpc_service.at("health_check").at("type") == "dcerpc");
        CHECK(rpc_service.at("timeouts").at("idle_s") == 7200);
        CHECK(rpc_service.at("real_servers") ==
              Json::array({Json{{"name", "cas1"}, {"address", "192.168.0.34:" + std::to_string(port)}},
                           Json{{"name", "cas2"}, {"address", "192.168.0.35:" + std::to_string(port)}}}));
    }
    // 135 and the mailbox port ask the mailbox service itself (Windows' endpoint
    // mapper answers even when Exchange is down); the address book its own.
    const Json mailbox = Json::parse(R"({"uuid": "a4f1db00-ca47-1067-b31f-00dd010662da", "version": "0.81"})");
    CHECK(service(config, "cas-rpc-epm").at("health_check").at("interface") == mailbox);
    CHECK(service(config, "cas-rpc-epm").at("health_check").at("port") == 59532);
    CHECK(service(config, "cas-rpc-mailbox").at("health_check").at("interface") == mailbox);
    CHECK(service(config, "cas-rpc-ab").at("health_check").at("interface") ==
          Json::parse(R"({"uuid": "f5cc5a18-4264-101a-8c59-08002b2f8426", "version": "56.0"})"));
    CHECK_FALSE(service(config, "cas-rpc-ab").at("health_check").contains("port"));

    const Json& smtp = service(config, "cas-smtp");
    CHECK(smtp.at("listen") == "0.0.0.0:25");
    CHECK(smtp.at("health_check").at("type") == "smtp");
    CHECK_FALSE(smtp.contains("persistence"));

    // A stable, readable order: the order of the examples, not the alphabet.
    CHECK(keys_of(config) ==
          std::vector<std::string>{"threads", "shutdown_grace_s", "admin", "persistence_groups", "virtual_services"});
    CHECK(keys_of(service(config, "cas-rpc-epm")) ==
          std::vector<std::string>{"name", "listen", "mode", "scheduler", "persistence", "real_servers",
                                   "health_check", "on_server_down", "timeouts"});
}

TEST_CASE("exchange template: agrees with conf/examples/exchange2010-rpc-smtp.json", "[conf][template]") {
    std::ifstream file(std::string(CASTELLAN_SOURCE_DIR) + "/conf/examples/exchange2010-rpc-smtp.json");
    REQUIRE(file);
    std::stringstream text;
    text << file.rdbuf();
    // Compared as unordered JSON: the same keys and values, whatever the order.
    const auto example = nlohmann::json::parse(text.str());
    auto generated = nlohmann::json::parse(built(two_cas()).dump());
    auto& services = generated.at("virtual_services");
    services.erase(services.begin() + 4);  // the example has no 443: its own file does
    CHECK(generated == example);
}

TEST_CASE("exchange template: 443 passed through by default", "[conf][template]") {
    const Json https = service(built(two_cas()), "cas-https");
    CHECK(https.at("listen") == "0.0.0.0:443");
    CHECK(https.at("mode") == "tcp");
    CHECK(https.at("tls") == Json::parse(R"({"mode": "passthrough"})"));
    CHECK(https.at("persistence") == Json::parse(R"({"type": "source_ip", "timeout_s": 1800})"));
    CHECK(https.at("real_servers").at(0).at("address") == "192.168.0.34:443");
    CHECK(https.at("health_check").at("type") == "https");
    CHECK(https.at("health_check").at("path") == "/owa/auth/logon.aspx");
    CHECK(https.at("on_server_down") == "close");
    CHECK(https.at("timeouts").at("idle_s") == 7200);
    CHECK_FALSE(https.contains("http"));
}

TEST_CASE("exchange template: 443 re-encrypted, rpc_http falling back to the cookie", "[conf][template]") {
    // Re-encrypt is what a certificate alone asks for, and what --tls reencrypt says.
    for (auto tls : {std::optional<WebTls>{}, std::optional<WebTls>{WebTls::reencrypt}}) {
        const auto options = with_certificate(two_cas(), tls);
        CHECK(effective_web_tls(options) == WebTls::reencrypt);
        const Json https = service(built(options), "cas-https");
        CHECK(https.at("mode") == "http");
        CHECK(https.at("tls") == Json::parse(R"({"mode": "reencrypt",
            "certificates": [{"cert": "mail.contoso.com.pem", "key": "mail.contoso.com.key"}],
            "upstream": {"verify": false}})"));
        CHECK(https.at("persistence") == Json::parse(R"({"type": "rpc_http", "fallback": "cookie",
            "cookie_name": "CASTELLAN", "cookie_secret_file": "cookie.secret"})"));
        CHECK(https.at("real_servers").at(1).at("address") == "192.168.0.35:443");
        CHECK(https.at("health_check").at("type") == "https");
        CHECK(https.at("health_check").at("path") == "/owa/auth/logon.aspx");
        CHECK(https.at("health_check").at("expect_status") == Json::array({200}));
        CHECK(https.at("http").at("x_forwarded_for") == true);
        CHECK(https.at("timeouts").at("idle_s") == 7200);
    }
}

TEST_CASE("exchange template: 443 terminated, the CAS in the clear on 80", "[conf][template]") {
    const Json https = service(built(with_certificate(two_cas(), WebTls::terminate)), "cas-https");
    CHECK(https.at("mode") == "http");
    CHECK(https.at("tls").at("mode") == "terminate");
    CHECK_FALSE(https.at("tls").contains("upstream"));
    CHECK(https.at("real_servers").at(0).at("address") == "192.168.0.34:80");
    CHECK(https.at("health_check").at("type") == "http");
    CHECK(https.at("persistence").at("type") == "rpc_http");
}

TEST_CASE("exchange template: Outlook Anywhere over NTLM falls back to the client address", "[conf][template]") {
    auto options = with_certificate(two_cas(), WebTls::reencrypt);
    options.outlook_anywhere_auth = OutlookAnywhereAuth::ntlm;
    const auto result = make_exchange2010_config(options);
    REQUIRE(result.errors.empty());
    const Json https = service(*result.config, "cas-https");
    CHECK(https.at("persistence") == Json::parse(R"({"type": "rpc_http", "fallback": "source_ip", "timeout_s": 7200,
        "cookie_name": "CASTELLAN", "cookie_secret_file": "cookie.secret"})"));
    // With passthrough castellan reads no request: the choice would be a lie.
    auto passthrough = two_cas();
    passthrough.outlook_anywhere_auth = OutlookAnywhereAuth::basic;
    const auto refused = make_exchange2010_config(passthrough);
    REQUIRE(refused.errors.size() == 1);
    CHECK(refused.errors[0].rfind("--outlook-anywhere-auth:", 0) == 0);
}

TEST_CASE("exchange template: --vip, --rpc-ports, --admin, IPv6", "[conf][template]") {
    auto options = two_cas();
    options.vip = "192.168.0.30";
    options.mailbox_port = 6001;
    options.address_book_port = 6004;
    options.admin_listen = "192.168.0.30:8443";
    const Json config = built(options);
    CHECK(service(config, "cas-rpc-mailbox").at("listen") == "192.168.0.30:6001");
    CHECK(service(config, "cas-rpc-mailbox").at("real_servers").at(0).at("address") == "192.168.0.34:6001");
    CHECK(service(config, "cas-rpc-ab").at("listen") == "192.168.0.30:6004");
    CHECK(service(config, "cas-rpc-epm").at("health_check").at("port") == 6001);
    CHECK(service(config, "cas-smtp").at("listen") == "192.168.0.30:25");
    CHECK(config.at("admin").at("listen") == "192.168.0.30:8443");

    Exchange2010Options v6;
    v6.cas = {{"cas1", "2001:db8::34"}, {"cas2", "192.168.0.35"}};
    v6.vip = "2001:db8::30";
    const Json v6_config = built(v6);
    CHECK(service(v6_config, "cas-https").at("listen") == "[2001:db8::30]:443");
    CHECK(service(v6_config, "cas-rpc-ab").at("real_servers").at(0).at("address") == "[2001:db8::34]:59533");
    CHECK(service(v6_config, "cas-rpc-ab").at("real_servers").at(1).at("address") == "192.168.0.35:59533");
}

TEST_CASE("exchange template: POP3 and IMAP4 when asked", "[conf][template]") {
    CHECK(service_names(built(two_cas())).size() == 5);
    auto options = two_cas();
    options.pop_imap = true;
    const Json config = built(options);
    const std::vector<std::tuple<std::string, int, bool>> expected = {
        {"cas-pop3", 110, false}, {"cas-imap4", 143, false}, {"cas-pop3s", 995, true}, {"cas-imap4s", 993, true}};
    for (const auto& [name, port, tls] : expected) {
        INFO(name);
        const Json& mail = service(config, name);
        CHECK(mail.at("listen") == "0.0.0.0:" + std::to_string(port));
        CHECK(mail.at("mode") == "tcp");
        CHECK(mail.contains("tls") == tls);
        if (tls) CHECK(mail.at("tls").at("mode") == "passthrough");
        CHECK(mail.at("real_servers").at(1).at("address") == "192.168.0.35:" + std::to_string(port));
        CHECK(mail.at("timeouts").at("idle_s") == 1800);
    }
}

TEST_CASE("exchange template: one CAS is a warning, not an error", "[conf][template]") {
    Exchange2010Options options;
    options.cas = {{"cas1", "192.168.0.34"}};
    const auto result = make_exchange2010_config(options);
    REQUIRE(result.config);
    REQUIRE(result.warnings.size() == 1);
    CHECK(result.warnings[0].find("one --cas") != std::string::npos);
    CHECK(make_exchange2010_config(two_cas()).warnings.empty());
}

TEST_CASE("exchange template: bad arguments are refused, naming the argument", "[conf][template]") {
    CHECK(one_error_naming(Exchange2010Options{}, "--cas"));

    auto bad_name = two_cas();
    bad_name.cas[1].name = "cas 2";
    CHECK(one_error_naming(bad_name, "--cas cas 2=192.168.0.35"));
    bad_name.cas[1].name = std::string(65, 'a');
    CHECK(one_error_naming(bad_name, "NAME"));

    for (const char* address : {"cas2.contoso.com", "192.168.0.35:135", "", "[2001:db8::1]", "192.168.0.256"}) {
        auto bad_address = two_cas();
        bad_address.cas[1].address = address;
        INFO(address);
        CHECK(one_error_naming(bad_address, std::string("--cas cas2=") + address + ": ADDRESS"));
    }

    auto same_name = two_cas();
    same_name.cas[1].name = "cas1";
    CHECK(one_error_naming(same_name, "the name cas1 is given twice"));
    auto same_address = two_cas();
    same_address.cas[1].address = "192.168.0.34";
    CHECK(one_error_naming(same_address, "--cas cas2=192.168.0.34"));

    auto bad_vip = two_cas();
    bad_vip.vip = "castellan.contoso.com";
    CHECK(one_error_naming(bad_vip, "--vip castellan.contoso.com"));
    bad_vip.vip = "192.168.0.34";
    CHECK(one_error_naming(bad_vip, "--vip 192.168.0.34: that is the address of CAS cas1"));

    auto ports = two_cas();
    ports.address_book_port = ports.mailbox_port;
    CHECK(one_error_naming(ports, "--rpc-ports 59532,59532"));
    ports.address_book_port = 0;
    CHECK(one_error_naming(ports, "--rpc-ports 59532,0"));
    ports.address_book_port = 443;
    CHECK(one_error_naming(ports, "port 443 is taken by cas-https"));
    ports.address_book_port = 110;  // free until POP3 is asked for
    CHECK(make_exchange2010_config(ports).config);
    ports.pop_imap = true;
    CHECK(one_error_naming(ports, "port 110 is taken by cas-pop3"));

    CHECK(one_error_naming(with_certificate(two_cas(), WebTls::passthrough), "--certificate"));
    auto no_certificate = two_cas();
    no_certificate.web_tls = WebTls::reencrypt;
    CHECK(one_error_naming(no_certificate, "--tls reencrypt needs --certificate"));
    no_certificate.web_tls = WebTls::terminate;
    CHECK(one_error_naming(no_certificate, "--tls terminate needs --certificate"));
    auto empty_path = with_certificate(two_cas(), {});
    empty_path.certificate->key.clear();
    CHECK(one_error_naming(empty_path, "--certificate"));

    auto admin = two_cas();
    admin.admin_listen = "localhost:9090";
    CHECK(one_error_naming(admin, "--admin localhost:9090"));
    admin.admin_listen = "127.0.0.1";
    CHECK(one_error_naming(admin, "--admin 127.0.0.1"));
    admin.admin_listen = "127.0.0.1:25";  // the SMTP listener on 0.0.0.0 takes port 25 of every address
    CHECK(one_error_naming(admin, "--admin 127.0.0.1:25: overlaps 0.0.0.0:25 of cas-smtp"));

    // Every error at once, as an administrator fixing a command line wants them.
    Exchange2010Options everything;
    everything.cas = {{"a b", "x"}};
    everything.vip = "y";
    everything.web_tls = WebTls::terminate;
    CHECK(errors_of(everything).size() == 4);
}
