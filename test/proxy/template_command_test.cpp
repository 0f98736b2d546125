// `castellan template exchange2010 ...`: the argument syntax, and what the command
// prints for good and bad arguments (the config itself: test/conf/exchange_template_test.cpp).
#include "proxy/command_line.hpp"
#include "proxy/template_command.hpp"

#include "conf/config_parser.hpp"

#include <catch2/catch.hpp>

using namespace castellan;
using proxy::parse_template_command;

namespace {

std::optional<proxy::TemplateCommand> parse(std::vector<std::string> arguments, std::string& error) {
    arguments.insert(arguments.begin(), "exchange2010");
    return parse_template_command(arguments, error);
}

}  // namespace

TEST_CASE("template command: every flag", "[proxy][template]") {
    std::string error;
    auto command = parse({"--cas", "cas1=192.168.0.34", "--cas=cas2=192.168.0.35", "--vip", "192.168.0.30",
                          "--rpc-ports", "6001,6004", "--tls=terminate", "--certificate", "mail.pem", "mail.key",
                          "--pop-imap", "--admin", "127.0.0.1:8080"},
                         error);
    INFO(error);
    REQUIRE(command);
    const auto& options = command->exchange2010;
    REQUIRE(options.cas.size() == 2);
    CHECK(options.cas[0].name == "cas1");
    CHECK(options.cas[0].address == "192.168.0.34");
    CHECK(options.cas[1].name == "cas2");
    CHECK(options.cas[1].address == "192.168.0.35");
    CHECK(options.vip == "192.168.0.30");
    CHECK(options.mailbox_port == 6001);
    CHECK(options.address_book_port == 6004);
    CHECK(options.web_tls == conf::WebTls::terminate);
    REQUIRE(options.certificate);
    CHECK(options.certificate->cert == "mail.pem");
    CHECK(options.certificate->key == "mail.key");
    CHECK(options.pop_imap);
    CHECK(options.admin_listen == "127.0.0.1:8080");
    CHECK_FALSE(command->help);

    // The defaults, and an address that holds '=' is the generator's to refuse.
    auto defaults = parse({"--cas", "cas1=fe80::1=x"}, error);
    REQUIRE(defaults);
    CHECK(defaults->exchange2010.cas[0].address == "fe80::1=x");
    CHECK(defaults->exchange2010.vip == "0.0.0.0");
    CHECK(defaults->exchange2010.mailbox_port == 59532);
    CHECK(defaults->exchange2010.address_book_port == 59533);
    CHECK_FALSE(defaults->exchange2010.web_tls);
    CHECK_FALSE(defaults->exchange2010.pop_imap);
    CHECK(defaults->exchange2010.admin_listen == "127.0.0.1:9090");

    auto help = parse({"--help"}, error);
    REQUIRE(help);
    CHECK(help->help);
}

TEST_CASE("template command: a wrong command line is refused, naming the argument", "[proxy][template]") {
    const std::vector<std::pair<std::vector<std::string>, std::string>> wrong = {
        {{"--cas"}, "--cas needs NAME=ADDRESS"},
        {{"--cas", "192.168.0.34"}, "--cas 192.168.0.34: expected NAME=ADDRESS"},
        {{"--vip"}, "--vip needs"},
        {{"--vip", "1.2.3.4", "--vip", "1.2.3.5"}, "--vip given twice"},
        {{"--rpc-ports", "59532"}, "--rpc-ports 59532: expected MBX,AB"},
        {{"--rpc-ports", "59532,65536"}, "--rpc-ports 59532,65536"},
        {{"--rpc-ports", "0,1"}, "--rpc-ports 0,1"},
        {{"--rpc-ports", "1,2x"}, "--rpc-ports 1,2x"},
        {{"--rpc-ports", "1,2", "--rpc-ports", "3,4"}, "--rpc-ports given twice"},
        {{"--tls", "offload"}, "--tls offload: expected passthrough, reencrypt or terminate"},
        {{"--certificate", "mail.pem"}, "--certificate needs CERT KEY"},
        {{"--certificate=mail.pem"}, "--certificate takes two values"},
        {{"--certificate", "a", "b", "--certificate", "c", "d"}, "--certificate given twice"},
        {{"--pop-imap=yes"}, "--pop-imap takes no value"},
        {{"--outlook-anywhere-auth", "kerberos"}, "--outlook-anywhere-auth kerberos: expected basic or ntlm"},
        {{"--outlook-anywhere-auth", "ntlm", "--outlook-anywhere-auth", "ntlm"}, "--outlook-anywhere-auth given twice"},
        {{"--admin"}, "--admin needs IP:PORT"},
        {{"--frobnicate"}, "unknown argument: --frobnicate"},
        {{"cas1=192.168.0.34"}, "unknown argument: cas1=192.168.0.34"},
    };
    for (const auto& [arguments, expected] : wrong) {
        std::string error;
        const bool parsed = parse(arguments, error).has_value();
        INFO(arguments.front() << " -> " << error);
        CHECK_FALSE(parsed);
        CHECK(error.find(expected) != std::string::npos);
        CHECK(error.find('\n') == std::string::npos);
    }
    std::string error;
    CHECK_FALSE(parse_template_command({}, error));
    CHECK(error.find("exchange2010") != std::string::npos);
    CHECK_FALSE(parse_template_command({"exchange2013"}, error));
    CHECK(error.find("exchange2013") != std::string::npos);
}

TEST_CASE("template command: reached from the main command line", "[proxy][template]") {
    std::string error;
    auto command = proxy::parse_command_line({"template", "exchange2010", "--cas", "cas1=10.0.0.1"}, error);
    REQUIRE(command);
    CHECK(command->action == proxy::CommandLine::Action::print_template);
    CHECK(command->template_command.exchange2010.cas.size() == 1);
    CHECK_FALSE(proxy::parse_command_line({"template", "exchange2010", "--config", "x"}, error));
    CHECK(error.find("--config") != std::string::npos);
}

TEST_CASE("template command: prints a config that parses, or errors with exit 2", "[proxy][template]") {
    std::string error;
    auto good = parse({"--cas", "cas1=192.168.0.34", "--cas", "cas2=192.168.0.35"}, error);
    REQUIRE(good);
    auto printed = proxy::run_template_command(*good);
    CHECK(printed.exit_code == 0);
    CHECK(printed.err.empty());
    REQUIRE_FALSE(printed.out.empty());
    CHECK(printed.out.back() == '\n');
    CHECK(conf::parse_config(printed.out, "/etc/castellan").errors.empty());
    // Stable: the same arguments print the same bytes.
    CHECK(proxy::run_template_command(*good).out == printed.out);

    auto single = parse({"--cas", "cas1=192.168.0.34"}, error);
    REQUIRE(single);
    auto warned = proxy::run_template_command(*single);
    CHECK(warned.exit_code == 0);
    CHECK(warned.err.rfind("castellan: warning: only one --cas", 0) == 0);
    // With an error, the error alone: the warning would hide what to fix.
    auto single_and_wrong = parse({"--cas", "cas 1=192.168.0.34"}, error);
    REQUIRE(single_and_wrong);
    auto wrong = proxy::run_template_command(*single_and_wrong);
    CHECK(wrong.exit_code == 2);
    CHECK(wrong.err.rfind("castellan: --cas cas 1=192.168.0.34: NAME must be", 0) == 0);
    CHECK(wrong.err.find("warning") == std::string::npos);

    auto bad = parse({"--cas", "cas1=192.168.0.34", "--cas", "cas2=192.168.0.35", "--tls", "reencrypt"}, error);
    REQUIRE(bad);
    auto refused = proxy::run_template_command(*bad);
    CHECK(refused.exit_code == 2);
    CHECK(refused.out.empty());
    CHECK(refused.err == "castellan: --tls reencrypt needs --certificate CERT KEY: the PEM certificate (with its "
                         "chain) and key castellan presents to clients\n");

    auto help = parse({"--help"}, error);
    REQUIRE(help);
    auto usage = proxy::run_template_command(*help);
    CHECK(usage.exit_code == 0);
    CHECK(usage.out == proxy::template_usage_text);
    for (const char* flag : {"--cas", "--vip", "--rpc-ports", "--tls", "--certificate", "--pop-imap",
                             "--outlook-anywhere-auth", "--admin"}) {
        CHECK(usage.out.find(flag) != std::string::npos);
    }
}
