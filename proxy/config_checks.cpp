#include "proxy/config_checks.hpp"

#include "proxy/transparent_source.hpp"

#include "tls/server_tls.hpp"
#include "tls/upstream_tls.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iterator>

namespace castellan::proxy {

std::optional<std::string> read_secret_file(const std::string& file, std::string& error) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        error = fmt::format("cannot read \"{}\"", file);
        return std::nullopt;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) {
        error = fmt::format("\"{}\" is empty", file);
        return std::nullopt;
    }
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

std::vector<conf::ConfigError> check_named_files(const conf::Config& config) {
    std::vector<conf::ConfigError> errors;
    if (config.admin && config.admin->token_file) {
        std::string error;
        if (!read_secret_file(*config.admin->token_file, error)) errors.push_back({"/admin/token_file", error});
    }
    for (std::size_t s = 0; s < config.virtual_services.size(); ++s) {
        const auto& service = config.virtual_services[s];
        const std::string at = fmt::format("/virtual_services/{}", s);
        const auto& check = service.health_check;
        if (check.type == conf::HealthCheckKind::https && check.ca) {
            std::string error;
            if (!tls::UpstreamTls::make(check.verify, check.ca, error)) {
                errors.push_back({at + "/health_check/ca", error});
            }
        }
        if (service.tls && service.tls->mode != conf::TlsMode::passthrough) {
            // Loaded as a start loads them: a key that does not match its
            // certificate is found here, at --check, not at the first client.
            std::vector<tls::TlsConfigError> tls_errors;
            tls::ServerTls::make(*service.tls, nullptr, {}, tls_errors);
            for (auto& error : tls_errors) errors.push_back({at + "/tls" + error.path, std::move(error.message)});
        }
        if (service.tls && service.tls->mode == conf::TlsMode::reencrypt) {
            std::string error;
            if (!tls::UpstreamTls::make(service.tls->upstream.verify, service.tls->upstream.ca, error)) errors.push_back({at + "/tls/upstream/ca", error});
        }
        if (const auto& secret = service.persistence.cookie_secret_file) {
            std::string error;
            if (!read_secret_file(*secret, error)) errors.push_back({at + "/persistence/cookie_secret_file", error});
        }
    }
    return errors;
}

std::vector<conf::ConfigError> check_before_start(const conf::Config& config) {
    auto errors = check_named_files(config);
    auto capability = check_transparent_capability(config);
    errors.insert(errors.end(), capability.begin(), capability.end());
    return errors;
}

}  // namespace castellan::proxy
