#include "conf/exchange_template.hpp"

#include "conf/address.hpp"
#include "conf/field_readers.hpp"

#include <fmt/format.h>

#include <utility>

namespace castellan::conf {

namespace {

using Json = nlohmann::ordered_json;
using Options = Exchange2010Options;

// The numbers below are those of conf/examples/exchange2010-*.json and the README;
// the README's "Generating a config" says why each is what it is.

constexpr const char* rpc_group = "exchange-rpc";
// Outlook's RPC connections idle for long stretches, and Windows' TCP keep-alive
// is 2 hours: a shorter idle limit would cut working Outlook sessions.
constexpr int rpc_idle_s = 7200;
constexpr int rpc_group_timeout_s = 7200;
// Exchange's receive connectors drop an idle SMTP session after 5 minutes; above
// that, the CAS decides.
constexpr int smtp_idle_s = 600;
// 443 carries Outlook Anywhere (two long RPC channels, idle between keep-alives)
// and ActiveSync's hanging Ping (up to 59 minutes): the RPC figure covers both.
constexpr int web_idle_s = 7200;
// Without cookies (passthrough) a client keeps its CAS this long after its last
// connection closed: an OWA user coming back from a break stays logged on.
constexpr int web_source_ip_timeout_s = 1800;
// Exchange 2010 logs an authenticated POP3 or IMAP4 connection off after 30
// idle minutes; IMAP clients re-issue IDLE within 29.
constexpr int pop_imap_idle_s = 1800;
constexpr int connect_ms = 3000;

constexpr const char* owa_logon_path = "/owa/auth/logon.aspx";  // 200 on a healthy 2010 CAS (README)

// How long a client address keeps its CAS for Outlook Anywhere over NTLM: as
// long as the RPC services' persistence group.
constexpr int outlook_anywhere_source_ip_timeout_s = 7200;

constexpr const char* mailbox_interface_uuid = "a4f1db00-ca47-1067-b31f-00dd010662da";
constexpr const char* mailbox_interface_version = "0.81";
constexpr const char* address_book_interface_uuid = "f5cc5a18-4264-101a-8c59-08002b2f8426";
constexpr const char* address_book_interface_version = "56.0";

// The persistence of the 443 service in http mode (--tls terminate or reencrypt):
// rpc_http, which pairs Outlook Anywhere's two channels by their virtual
// connection cookie and gives every other request (OWA, ActiveSync, EWS) the
// cookie. With NTLM, the channels' authentication legs carry no body, so they
// fall back to the client's address instead (README "Outlook Anywhere"). The
// named secret file makes cookies survive a restart and lets an HA pair share
// them.
Json web_http_persistence(const Exchange2010Options& options) {
    Json persistence{{"type", "rpc_http"}};
    if (options.outlook_anywhere_auth.value_or(OutlookAnywhereAuth::basic) == OutlookAnywhereAuth::ntlm) {
        persistence["fallback"] = "source_ip";
        persistence["timeout_s"] = outlook_anywhere_source_ip_timeout_s;
    } else {
        persistence["fallback"] = "cookie";
    }
    persistence["cookie_name"] = "CASTELLAN";
    persistence["cookie_secret_file"] = template_cookie_secret_file;
    return persistence;
}

bool is_ipv6(const std::string& address) { return parse_ipv6(address).has_value(); }
bool is_ip_literal(const std::string& address) { return parse_ipv4(address) || parse_ipv6(address); }

std::string host_port(const std::string& ip, std::uint16_t port) {
    return is_ipv6(ip) ? fmt::format("[{}]:{}", ip, port) : fmt::format("{}:{}", ip, port);
}

struct Ports {
    std::uint16_t epm = 135, smtp = 25, https = 443;
    std::uint16_t pop3 = 110, imap4 = 143, pop3s = 995, imap4s = 993;
};
constexpr Ports ports;

std::string cas_argument(const Options::Cas& cas) { return fmt::format("--cas {}={}", cas.name, cas.address); }

// The listens of the services the options ask for, by service name; the
// template's own fixed ports first, so a clash names the fixed one.
std::vector<std::pair<std::string, std::uint16_t>> service_ports(const Options& options) {
    std::vector<std::pair<std::string, std::uint16_t>> list = {
        {"cas-rpc-epm", ports.epm}, {"cas-smtp", ports.smtp}, {"cas-https", ports.https}};
    if (options.pop_imap) {
        list.insert(list.end(), {{"cas-pop3", ports.pop3},
                                 {"cas-imap4", ports.imap4},
                                 {"cas-pop3s", ports.pop3s},
                                 {"cas-imap4s", ports.imap4s}});
    }
    list.emplace_back("cas-rpc-mailbox", options.mailbox_port);
    list.emplace_back("cas-rpc-ab", options.address_book_port);
    return list;
}

void check_cas(const Options& options, TemplateResult& result) {
    if (options.cas.empty()) {
        result.errors.push_back("--cas NAME=ADDRESS is required: one for each CAS of the array");
        return;
    }
    for (std::size_t i = 0; i < options.cas.size(); ++i) {
        const auto& cas = options.cas[i];
        if (!detail::is_name(cas.name)) {
            result.errors.push_back(
                fmt::format("{}: NAME must be {}", cas_argument(cas), detail::name_rule));
        }
        if (!is_ip_literal(cas.address)) {
            result.errors.push_back(fmt::format(
                "{}: ADDRESS must be an IPv4 or IPv6 address (e.g. 192.168.0.34), without a port", cas_argument(cas)));
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (options.cas[j].name == cas.name) {
                result.errors.push_back(fmt::format("{}: the name {} is given twice", cas_argument(cas), cas.name));
            } else if (options.cas[j].address == cas.address) {
                result.errors.push_back(fmt::format("{}: {} is already the address of {}", cas_argument(cas),
                                                    cas.address, options.cas[j].name));
            }
        }
    }
    if (options.cas.size() == 1) {
        result.warnings.push_back(
            "only one --cas: nothing to balance or fail over to until the array's other CAS servers are added");
    }
}

void check_vip(const Options& options, TemplateResult& result) {
    if (!is_ip_literal(options.vip)) {
        result.errors.push_back(fmt::format(
            "--vip {}: expected an IPv4 or IPv6 address of this machine (e.g. 192.168.0.30), without a port",
            options.vip));
        return;
    }
    for (const auto& cas : options.cas) {
        if (cas.address == options.vip) {
            result.errors.push_back(fmt::format(
                "--vip {}: that is the address of CAS {}; castellan needs an address of its own", options.vip,
                cas.name));
        }
    }
}

void check_ports(const Options& options, TemplateResult& result) {
    const std::string argument = fmt::format("--rpc-ports {},{}", options.mailbox_port, options.address_book_port);
    if (options.mailbox_port == 0 || options.address_book_port == 0) {
        result.errors.push_back(argument + ": ports must be 1 to 65535");
        return;
    }
    if (options.mailbox_port == options.address_book_port) {
        result.errors.push_back(argument + ": the mailbox and address-book ports must differ");
        return;
    }
    for (const auto& [service, port] : service_ports(options)) {
        if (service == "cas-rpc-mailbox" || service == "cas-rpc-ab") continue;
        if (port == options.mailbox_port || port == options.address_book_port) {
            result.errors.push_back(fmt::format("{}: port {} is taken by {}", argument, port, service));
        }
    }
}

void check_tls(const Options& options, TemplateResult& result) {
    const WebTls tls = effective_web_tls(options);
    if (tls == WebTls::passthrough && options.certificate) {
        result.errors.push_back(
            "--certificate: --tls passthrough leaves TLS to the CAS servers and their own certificate; "
            "leave --certificate out or choose --tls reencrypt");
    }
    if (tls != WebTls::passthrough && !options.certificate) {
        result.errors.push_back(fmt::format(
            "--tls {} needs --certificate CERT KEY: the PEM certificate (with its chain) and key castellan "
            "presents to clients",
            tls == WebTls::terminate ? "terminate" : "reencrypt"));
    }
    if (tls == WebTls::passthrough && options.outlook_anywhere_auth) {
        result.errors.push_back(
            "--outlook-anywhere-auth: with --tls passthrough castellan cannot read Outlook Anywhere's requests "
            "(443 keeps source_ip); leave it out or choose --tls reencrypt");
    }
    if (options.certificate && (options.certificate->cert.empty() || options.certificate->key.empty())) {
        result.errors.push_back("--certificate CERT KEY: neither path may be empty");
    }
}

void check_admin(const Options& options, TemplateResult& result) {
    const auto admin = parse_host_port(options.admin_listen, false);
    if (!admin) {
        result.errors.push_back(
            fmt::format("--admin {}: expected IP:PORT (e.g. 127.0.0.1:9090)", options.admin_listen));
        return;
    }
    if (!is_ip_literal(options.vip)) return;  // reported by check_vip
    for (const auto& [service, port] : service_ports(options)) {
        HostPort listen{options.vip, port, is_ipv6(options.vip) ? HostPort::Kind::ipv6 : HostPort::Kind::ipv4};
        if (listens_overlap(*admin, listen)) {
            result.errors.push_back(fmt::format("--admin {}: overlaps {} of {}", options.admin_listen,
                                                listen.to_string(), service));
        }
    }
}

Json real_servers(const Options& options, std::uint16_t port) {
    Json list = Json::array();
    for (const auto& cas : options.cas) list.push_back(Json{{"name", cas.name}, {"address", host_port(cas.address, port)}});
    return list;
}

Json with_timing(Json check, int interval_ms, int timeout_ms) {
    check["interval_ms"] = interval_ms;
    check["timeout_ms"] = timeout_ms;
    check["rise"] = 2;
    check["fall"] = 2;
    return check;
}

Json timeouts(int idle_s) { return Json{{"connect_ms", connect_ms}, {"idle_s", idle_s}}; }

// One member of the RPC persistence group. The endpoint-mapper service binds to
// the mailbox interface on the mailbox port, not to 135: Windows' own endpoint
// mapper answers even when Exchange's RPC Client Access service is down.
Json rpc_service(const Options& options, const char* name, std::uint16_t port, Json check) {
    return Json{{"name", name},
                {"listen", host_port(options.vip, port)},
                {"mode", "tcp"},
                {"scheduler", "least_connections"},
                {"persistence", Json{{"type", "source_ip"}, {"group", rpc_group}}},
                {"real_servers", real_servers(options, port)},
                {"health_check", with_timing(std::move(check), 2000, 1000)},
                {"on_server_down", "close"},
                {"timeouts", timeouts(rpc_idle_s)}};
}

Json mailbox_check(const Options& options) {
    return Json{{"type", "dcerpc"},
                {"port", options.mailbox_port},
                {"interface", Json{{"uuid", mailbox_interface_uuid}, {"version", mailbox_interface_version}}}};
}

Json address_book_check() {
    return Json{{"type", "dcerpc"},
                {"interface", Json{{"uuid", address_book_interface_uuid}, {"version", address_book_interface_version}}}};
}

Json smtp_service(const Options& options) {
    return Json{{"name", "cas-smtp"},
                {"listen", host_port(options.vip, ports.smtp)},
                {"mode", "tcp"},
                {"scheduler", "round_robin"},
                {"real_servers", real_servers(options, ports.smtp)},
                {"health_check", with_timing(Json{{"type", "smtp"}}, 5000, 3000)},
                {"timeouts", timeouts(smtp_idle_s)}};
}

Json web_service(const Options& options) {
    const WebTls tls = effective_web_tls(options);
    Json service{{"name", "cas-https"}, {"listen", host_port(options.vip, ports.https)}};
    Json check{{"type", "https"}, {"path", owa_logon_path}, {"expect_status", Json::array({200})}};
    if (tls == WebTls::passthrough) {
        service["mode"] = "tcp";
        service["tls"] = Json{{"mode", "passthrough"}};
        service["scheduler"] = "least_connections";
        service["persistence"] = Json{{"type", "source_ip"}, {"timeout_s", web_source_ip_timeout_s}};
        service["real_servers"] = real_servers(options, ports.https);
    } else {
        Json certificates = Json::array({Json{{"cert", options.certificate->cert}, {"key", options.certificate->key}}});
        service["mode"] = "http";
        if (tls == WebTls::terminate) {
            // The CAS serves plain HTTP on 80 once SSL offloading is set up (README).
            service["tls"] = Json{{"mode", "terminate"}, {"certificates", std::move(certificates)}};
            check["type"] = "http";
        } else {
            // verify: false accepts the CAS servers' self-signed certificates.
            service["tls"] = Json{{"mode", "reencrypt"},
                                  {"certificates", std::move(certificates)},
                                  {"upstream", Json{{"verify", false}}}};
        }
        service["scheduler"] = "least_connections";
        service["persistence"] = web_http_persistence(options);
        service["real_servers"] = real_servers(options, tls == WebTls::terminate ? 80 : ports.https);
    }
    service["health_check"] = with_timing(std::move(check), 5000, 3000);
    if (tls != WebTls::passthrough) service["http"] = Json{{"x_forwarded_for", true}};
    service["on_server_down"] = "close";
    service["timeouts"] = timeouts(web_idle_s);
    return service;
}

// POP3 and IMAP4 are passed on as bytes; 995 and 993 are TLS from the first byte,
// left to the CAS and its certificate (passthrough logs the name asked for).
Json mail_access_service(const Options& options, const char* name, std::uint16_t port, bool tls) {
    Json service{{"name", name}, {"listen", host_port(options.vip, port)}, {"mode", "tcp"}};
    if (tls) service["tls"] = Json{{"mode", "passthrough"}};
    service["scheduler"] = "least_connections";
    service["real_servers"] = real_servers(options, port);
    service["health_check"] = with_timing(Json{{"type", "tcp"}}, 5000, 3000);
    service["timeouts"] = timeouts(pop_imap_idle_s);
    return service;
}

}  // namespace

WebTls effective_web_tls(const Exchange2010Options& options) {
    if (options.web_tls) return *options.web_tls;
    return options.certificate ? WebTls::reencrypt : WebTls::passthrough;
}

TemplateResult make_exchange2010_config(const Exchange2010Options& options) {
    TemplateResult result;
    check_cas(options, result);
    check_vip(options, result);
    check_ports(options, result);
    check_tls(options, result);
    check_admin(options, result);
    if (!result.errors.empty()) return result;

    Json services = Json::array();
    services.push_back(rpc_service(options, "cas-rpc-epm", ports.epm, mailbox_check(options)));
    services.push_back(rpc_service(options, "cas-rpc-mailbox", options.mailbox_port, mailbox_check(options)));
    services.push_back(rpc_service(options, "cas-rpc-ab", options.address_book_port, address_book_check()));
    services.push_back(smtp_service(options));
    services.push_back(web_service(options));
    if (options.pop_imap) {
        services.push_back(mail_access_service(options, "cas-pop3", ports.pop3, false));
        services.push_back(mail_access_service(options, "cas-imap4", ports.imap4, false));
        services.push_back(mail_access_service(options, "cas-pop3s", ports.pop3s, true));
        services.push_back(mail_access_service(options, "cas-imap4s", ports.imap4s, true));
    }
    result.config = Json{{"threads", 0},
                         {"shutdown_grace_s", 30},
                         {"admin", Json{{"listen", options.admin_listen}, {"token_file", template_token_file}}},
                         {"persistence_groups", Json{{rpc_group, Json{{"timeout_s", rpc_group_timeout_s}}}}},
                         {"virtual_services", std::move(services)}};
    return result;
}

}  // namespace castellan::conf
