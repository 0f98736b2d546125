// castellan's entry point: the command line of INTERFACE.md.
#include "conf/config_parser.hpp"
#include "proxy/balancer.hpp"
#include "proxy/command_line.hpp"
#include "proxy/config_checks.hpp"
#include "proxy/log.hpp"
#include "proxy/runtime.hpp"
#include "proxy/system_limits.hpp"

#include <csignal>
#include <filesystem>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace castellan;

int print_errors(const std::vector<conf::ConfigError>& errors) {
    for (const auto& error : errors) std::fprintf(stderr, "%s\n", error.to_string().c_str());
    return 1;
}

// The config file as the status API shows it: absolute, so an operator knows
// which file a reload reads whatever folder castellan was started from.
std::string absolute_path(const std::string& file) {
    std::error_code error;
    auto absolute = std::filesystem::absolute(file, error);
    return error ? file : absolute.lexically_normal().string();
}

int run(const std::string& config_file) {
    auto parsed = conf::load_config_file(config_file);
    if (!parsed.config) {
        for (const auto& error : parsed.errors) {
            proxy::log::Line(proxy::log::Level::error, "config_error").kv("file", config_file).kv("error", error.to_string());
        }
        return 1;
    }
    // The worker count is fixed for the process's life (a reload keeps it).
    const int configured = parsed.config->threads;
    const unsigned workers = configured > 0 ? static_cast<unsigned>(configured) : proxy::usable_cpu_count();
    auto built = proxy::build_runtime(std::move(*parsed.config), absolute_path(config_file), nullptr, workers);
    if (auto* errors = std::get_if<std::vector<conf::ConfigError>>(&built)) {
        for (const auto& error : *errors) {
            proxy::log::Line(proxy::log::Level::error, "config_error").kv("file", config_file).kv("error", error.to_string());
        }
        return 1;
    }
    proxy::log::start_writer();
    int code;
    {
        proxy::Balancer balancer(std::get<std::shared_ptr<const proxy::Runtime>>(std::move(built)), workers);
        code = balancer.run();
    }
    proxy::log::stop_writer();
    return code;
}

}  // namespace

int main(int argc, char** argv) {
    // A client that resets a connection while we write must give EPIPE, not kill us.
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> arguments(argv + 1, argv + argc);
    std::string error;
    auto command = proxy::parse_command_line(arguments, error);
    if (!command) {
        // A wrong template command gets its own options, not the general usage.
        const bool template_command = !arguments.empty() && arguments[0] == "template";
        std::fprintf(stderr, "castellan: %s\n%s", error.c_str(),
                     template_command ? "castellan template exchange2010 --help lists the options\n"
                                      : proxy::usage_text);
        return 2;
    }
    switch (command->action) {
        case proxy::CommandLine::Action::version:
            std::printf("castellan %s\n", CASTELLAN_VERSION);
            return 0;
        case proxy::CommandLine::Action::check: {
            auto parsed = conf::load_config_file(command->config_file);
            if (!parsed.config) return print_errors(parsed.errors);
            // What a start would refuse beyond the JSON: files, features. Host
            // names are not resolved here (INTERFACE.md: syntax only).
            if (auto errors = proxy::check_before_start(*parsed.config); !errors.empty()) return print_errors(errors);
            std::printf("%s: ok\n", command->config_file.c_str());
            return 0;
        }
        case proxy::CommandLine::Action::run:
            return run(command->config_file);
        case proxy::CommandLine::Action::print_template: {
            const auto output = proxy::run_template_command(command->template_command);
            std::fputs(output.out.c_str(), stdout);
            std::fputs(output.err.c_str(), stderr);
            // A config cut short by a full disk must not look printed.
            if (std::fflush(stdout) != 0) {
                std::fprintf(stderr, "castellan: cannot write the config to stdout\n");
                return 1;
            }
            return output.exit_code;
        }
    }
    return 2;
}
