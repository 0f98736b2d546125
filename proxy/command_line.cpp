#include "proxy/command_line.hpp"

namespace castellan::proxy {

const char* const usage_text =
    "usage: castellan --config FILE            run in the foreground, logging to stderr\n"
    "       castellan --config FILE --check    validate the config only\n"
    "       castellan --version\n"
    "       castellan template exchange2010 --cas NAME=ADDRESS ... [options]   print a config\n"
    "                                          (castellan template exchange2010 --help: the options)\n";

std::optional<CommandLine> parse_command_line(const std::vector<std::string>& arguments, std::string& error) {
    CommandLine result;
    if (!arguments.empty() && arguments[0] == "template") {
        auto command = parse_template_command(std::vector<std::string>(arguments.begin() + 1, arguments.end()), error);
        if (!command) return std::nullopt;
        result.action = CommandLine::Action::print_template;
        result.template_command = std::move(*command);
        return result;
    }
    bool check = false, version = false, have_config = false;
    for (std::size_t i = 0; i < arguments.size(); ++i) {
        const std::string& argument = arguments[i];
        if (argument == "--version") {
            version = true;
        } else if (argument == "--check") {
            check = true;
        } else if (argument == "--config" || argument == "-c") {
            if (i + 1 >= arguments.size()) {
                error = "--config needs a file";
                return std::nullopt;
            }
            if (have_config) {
                error = "--config given twice";
                return std::nullopt;
            }
            result.config_file = arguments[++i];
            have_config = true;
        } else if (argument.rfind("--config=", 0) == 0 && !have_config) {
            result.config_file = argument.substr(9);
            have_config = true;
        } else {
            error = "unknown argument: " + argument;
            return std::nullopt;
        }
    }
    if (version) {
        if (check || have_config) {
            error = "--version takes no other argument";
            return std::nullopt;
        }
        result.action = CommandLine::Action::version;
        return result;
    }
    if (!have_config || result.config_file.empty()) {
        error = "--config FILE is required";
        return std::nullopt;
    }
    result.action = check ? CommandLine::Action::check : CommandLine::Action::run;
    return result;
}

}  // namespace castellan::proxy
