// The command line of INTERFACE.md, parsed without side effects.
#pragma once

#include "proxy/template_command.hpp"

#include <optional>
#include <string>
#include <vector>

namespace castellan::proxy {

struct CommandLine {
    enum class Action { run, check, version, print_template } action = Action::run;
    std::string config_file;
    TemplateCommand template_command;  // print_template: `castellan template ...`
};

// Gives nullopt and sets `error` for a wrong command line (exit code 2).
std::optional<CommandLine> parse_command_line(const std::vector<std::string>& arguments, std::string& error);

extern const char* const usage_text;

}  // namespace castellan::proxy
