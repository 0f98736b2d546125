#include "proxy/template_command.hpp"

#include "conf/config_parser.hpp"
#include "conf/json_layout.hpp"

#include <charconv>

namespace castellan::proxy {

const char* const template_usage_text =
    "usage: castellan template exchange2010 --cas NAME=ADDRESS --cas NAME=ADDRESS ... [options]\n"
    "Prints a castellan config for an Exchange 2010 CAS array (README: \"Generating a config\").\n"
    "  --cas NAME=ADDRESS      one per CAS: its name in castellan (letters, digits, _ . -) and its IP address\n"
    "  --vip ADDRESS           the address castellan listens on (default 0.0.0.0: all IPv4 addresses)\n"
    "  --rpc-ports MBX,AB      the static mailbox and address-book RPC ports of every CAS (default 59532,59533)\n"
    "  --tls MODE              443: passthrough, reencrypt or terminate\n"
    "                          (default: reencrypt with --certificate, passthrough without)\n"
    "  --certificate CERT KEY  the PEM certificate chain and key castellan presents on 443\n"
    "  --pop-imap              add POP3 and IMAP4 (110, 143, 995, 993)\n"
    "  --outlook-anywhere-auth basic|ntlm\n"
    "                          Outlook Anywhere's client authentication (default basic): with ntlm, 443\n"
    "                          falls back to the client address for what it cannot pair (README)\n"
    "  --admin IP:PORT         the admin API and status page (default 127.0.0.1:9090)\n"
    "The config names admin.token (and cookie.secret with reencrypt or terminate) in its own folder:\n"
    "create them there; --check reads them, and the certificate and key.\n";

namespace {

// "59532,59533" -> the two ports, or false.
bool parse_port_pair(const std::string& text, std::uint16_t& first, std::uint16_t& second) {
    const auto comma = text.find(',');
    if (comma == std::string::npos) return false;
    auto port = [](std::string_view digits, std::uint16_t& out) {
        if (digits.empty() || digits.size() > 5) return false;
        unsigned value = 0;
        const auto [end, problem] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
        if (problem != std::errc{} || end != digits.data() + digits.size() || value < 1 || value > 65535) return false;
        out = static_cast<std::uint16_t>(value);
        return true;
    };
    const std::string_view view(text);
    return port(view.substr(0, comma), first) && port(view.substr(comma + 1), second);
}

}  // namespace

std::optional<TemplateCommand> parse_template_command(const std::vector<std::string>& arguments, std::string& error) {
    if (arguments.empty()) {
        error = "template needs a name: castellan template exchange2010 --cas NAME=ADDRESS ...";
        return std::nullopt;
    }
    if (arguments[0] != "exchange2010") {
        error = "unknown template: " + arguments[0] + " (there is one: exchange2010)";
        return std::nullopt;
    }
    TemplateCommand command;
    auto& options = command.exchange2010;
    bool have_vip = false, have_ports = false, have_tls = false, have_admin = false, have_auth = false;
    for (std::size_t i = 1; i < arguments.size(); ++i) {
        std::string flag = arguments[i];
        std::optional<std::string> inline_value;  // --flag=value
        if (const auto equals = flag.find('='); flag.rfind("--", 0) == 0 && equals != std::string::npos) {
            inline_value = flag.substr(equals + 1);
            flag.resize(equals);
        }
        // The value of a one-value flag, from `--flag=value` or the next argument.
        auto value = [&](const char* what) -> std::optional<std::string> {
            if (inline_value) return inline_value;
            if (i + 1 >= arguments.size()) {
                error = flag + " needs " + what;
                return std::nullopt;
            }
            return arguments[++i];
        };
        auto once = [&](bool& seen) {
            if (seen) error = flag + " given twice";
            const bool first = !seen;
            seen = true;
            return first;
        };
        auto no_value = [&] {
            if (inline_value) error = flag + " takes no value";
            return !inline_value;
        };

        if (flag == "--help" || flag == "-h") {
            if (!no_value()) return std::nullopt;
            command.help = true;
        } else if (flag == "--cas") {
            auto text = value("NAME=ADDRESS");
            if (!text) return std::nullopt;
            const auto equals = text->find('=');
            if (equals == std::string::npos) {
                error = "--cas " + *text + ": expected NAME=ADDRESS (e.g. cas1=192.168.0.34)";
                return std::nullopt;
            }
            options.cas.push_back({text->substr(0, equals), text->substr(equals + 1)});
        } else if (flag == "--vip") {
            auto text = value("an ADDRESS");
            if (!text || !once(have_vip)) return std::nullopt;
            options.vip = *text;
        } else if (flag == "--rpc-ports") {
            auto text = value("MBX,AB");
            if (!text || !once(have_ports)) return std::nullopt;
            if (!parse_port_pair(*text, options.mailbox_port, options.address_book_port)) {
                error = "--rpc-ports " + *text + ": expected MBX,AB, two ports 1 to 65535 (e.g. 59532,59533)";
                return std::nullopt;
            }
        } else if (flag == "--tls") {
            auto text = value("a MODE: passthrough, reencrypt or terminate");
            if (!text || !once(have_tls)) return std::nullopt;
            if (*text == "passthrough") {
                options.web_tls = conf::WebTls::passthrough;
            } else if (*text == "reencrypt") {
                options.web_tls = conf::WebTls::reencrypt;
            } else if (*text == "terminate") {
                options.web_tls = conf::WebTls::terminate;
            } else {
                error = "--tls " + *text + ": expected passthrough, reencrypt or terminate";
                return std::nullopt;
            }
        } else if (flag == "--certificate") {
            if (inline_value) {
                error = "--certificate takes two values: --certificate CERT KEY";
                return std::nullopt;
            }
            if (options.certificate) {
                error = "--certificate given twice";
                return std::nullopt;
            }
            if (i + 2 >= arguments.size()) {
                error = "--certificate needs CERT KEY: the PEM certificate chain and its key";
                return std::nullopt;
            }
            options.certificate = conf::Exchange2010Options::Certificate{arguments[i + 1], arguments[i + 2]};
            i += 2;
        } else if (flag == "--outlook-anywhere-auth") {
            auto text = value("basic or ntlm");
            if (!text || !once(have_auth)) return std::nullopt;
            if (*text == "basic") {
                options.outlook_anywhere_auth = conf::OutlookAnywhereAuth::basic;
            } else if (*text == "ntlm") {
                options.outlook_anywhere_auth = conf::OutlookAnywhereAuth::ntlm;
            } else {
                error = "--outlook-anywhere-auth " + *text + ": expected basic or ntlm";
                return std::nullopt;
            }
        } else if (flag == "--pop-imap") {
            if (!no_value()) return std::nullopt;
            options.pop_imap = true;
        } else if (flag == "--admin") {
            auto text = value("IP:PORT");
            if (!text || !once(have_admin)) return std::nullopt;
            options.admin_listen = *text;
        } else {
            error = "unknown argument: " + arguments[i];
            return std::nullopt;
        }
    }
    return command;
}

TemplateOutput run_template_command(const TemplateCommand& command) {
    TemplateOutput output;
    if (command.help) {
        output.out = template_usage_text;
        return output;
    }
    auto result = conf::make_exchange2010_config(command.exchange2010);
    if (!result.config) {  // the errors alone: the first line names what to fix
        for (const auto& error : result.errors) output.err += "castellan: " + error + "\n";
        output.exit_code = 2;
        return output;
    }
    std::string text = conf::layout_json(*result.config);
    // The base folder only resolves relative paths; nothing is read.
    const auto parsed = conf::parse_config(text, "/etc/castellan");
    if (!parsed.config) {
        for (const auto& error : parsed.errors) {
            output.err += "castellan: these arguments give a config castellan refuses: " + error.to_string() + "\n";
        }
        output.exit_code = 2;
        return output;
    }
    for (const auto& warning : result.warnings) output.err += "castellan: warning: " + warning + "\n";
    output.out = std::move(text);
    return output;
}

}  // namespace castellan::proxy
