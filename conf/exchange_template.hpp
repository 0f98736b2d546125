// The config that `castellan template exchange2010` prints for an Exchange 2010
// CAS array: a plain options struct in, a config document out. Pure: no I/O, no
// clock, nothing read from the machine. proxy/template_command.* parses the
// command line and prints; the README's "Generating a config" walks through each
// service built here and must change with it (JSON has no comments).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace castellan::conf {

// How the 443 service treats TLS (`--tls`).
enum class WebTls { passthrough, terminate, reencrypt };

// How Outlook Anywhere authenticates (`--outlook-anywhere-auth`, Exchange's
// ClientAuthenticationMethod): what rpc_http falls back to for the requests
// that carry no body to pair by (README "Outlook Anywhere").
enum class OutlookAnywhereAuth { basic, ntlm };

struct Exchange2010Options {
    struct Cas {
        std::string name;     // the real-server name in every service (`--cas NAME=ADDRESS`)
        std::string address;  // an IPv4 or IPv6 literal, without a port
    };
    struct Certificate {
        // PEM paths as the administrator gave them: a relative path is relative to
        // the folder the config file will live in, as for every path in a config.
        std::string cert;
        std::string key;
    };

    std::vector<Cas> cas;
    std::string vip = "0.0.0.0";  // where every service listens; an IP literal
    std::uint16_t mailbox_port = 59532;       // the static RPC ports the README
    std::uint16_t address_book_port = 59533;  // has the administrator set on every CAS
    std::optional<WebTls> web_tls;            // absent: reencrypt with a certificate, passthrough without
    std::optional<Certificate> certificate;
    bool pop_imap = false;                     // add POP3 and IMAP4 (110, 143, 995, 993)
    std::optional<OutlookAnywhereAuth> outlook_anywhere_auth;  // absent: basic (Exchange 2010's default)
    std::string admin_listen = "127.0.0.1:9090";
};

struct TemplateResult {
    std::optional<nlohmann::ordered_json> config;  // set exactly when errors is empty
    std::vector<std::string> errors;               // one line each, naming the argument at fault
    std::vector<std::string> warnings;             // worth saying, not worth refusing
};

// The files the generated config names beside itself (relative, so they are
// looked for in the config file's folder); the administrator creates them, and
// `--check` reads them.
inline constexpr const char* template_token_file = "admin.token";
inline constexpr const char* template_cookie_secret_file = "cookie.secret";

// Validates `options` and builds the config. Every error names the command-line
// argument at fault (`--cas`, `--vip`, ...). Any thread.
TemplateResult make_exchange2010_config(const Exchange2010Options& options);

// The 443 service's TLS mode when `--tls` is not given.
WebTls effective_web_tls(const Exchange2010Options& options);

}  // namespace castellan::conf
