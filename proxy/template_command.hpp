// `castellan template exchange2010 ...` (INTERFACE.md, command line): the arguments
// after `template` turned into conf::Exchange2010Options (syntax only; what the
// values mean is checked by the generator), and the options turned into what the
// command prints. No I/O: main writes `out` and `err`.
#pragma once

#include "conf/exchange_template.hpp"

#include <optional>
#include <string>
#include <vector>

namespace castellan::proxy {

struct TemplateCommand {
    bool help = false;  // --help: print template_usage_text
    conf::Exchange2010Options exchange2010;
};

// `arguments` are those after "template". Gives nullopt and sets `error` to one
// line naming the argument at fault for a wrong command line (exit code 2).
std::optional<TemplateCommand> parse_template_command(const std::vector<std::string>& arguments, std::string& error);

struct TemplateOutput {
    int exit_code = 0;  // 0, or 2 when the generator refuses the arguments
    std::string out;    // for stdout: the config (or the usage for --help)
    std::string err;    // for stderr: "castellan: ..." error lines, or with a config its "castellan: warning: ..." lines
};

// Builds the config, lays it out and parses it once more with castellan's own
// config parser: arguments that would give a config `--check` refuses are refused
// here, so what is printed always parses. Any thread.
TemplateOutput run_template_command(const TemplateCommand& command);

extern const char* const template_usage_text;

}  // namespace castellan::proxy
