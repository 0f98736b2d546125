// The command line of INTERFACE.md, parsed without side effects.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace castellan::proxy {

struct CommandLine {
    enum class Action { run, check, version } action = Action::run;
    std::string config_file;
};

// Gives nullopt and sets `error` for a wrong command line (exit code 2).
std::optional<CommandLine> parse_command_line(const std::vector<std::string>& arguments, std::string& error);

extern const char* const usage_text;

}  // namespace castellan::proxy
