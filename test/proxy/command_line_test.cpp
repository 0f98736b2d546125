#include "proxy/command_line.hpp"

#include <catch2/catch.hpp>

using castellan::proxy::CommandLine;
using castellan::proxy::parse_command_line;

TEST_CASE("command line: the three forms of INTERFACE.md", "[proxy]") {
    std::string error;
    auto run = parse_command_line({"--config", "/etc/castellan.json"}, error);
    REQUIRE(run);
    CHECK(run->action == CommandLine::Action::run);
    CHECK(run->config_file == "/etc/castellan.json");

    auto check = parse_command_line({"--config", "a.json", "--check"}, error);
    REQUIRE(check);
    CHECK(check->action == CommandLine::Action::check);

    auto version = parse_command_line({"--version"}, error);
    REQUIRE(version);
    CHECK(version->action == CommandLine::Action::version);
}

TEST_CASE("command line: wrong ones are refused with a reason", "[proxy]") {
    std::string error;
    CHECK_FALSE(parse_command_line({}, error));
    CHECK(error.find("--config") != std::string::npos);
    CHECK_FALSE(parse_command_line({"--config"}, error));
    CHECK_FALSE(parse_command_line({"--config", "a", "--frobnicate"}, error));
    CHECK(error.find("--frobnicate") != std::string::npos);
    CHECK_FALSE(parse_command_line({"--check"}, error));
    CHECK_FALSE(parse_command_line({"--config", "a", "--config", "b"}, error));
}
