#include "proxy/config_checks.hpp"

#include "tls/client_context.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iterator>

namespace castellan::proxy {

namespace {

// A file a start would open: readable, and not empty.
void check_readable(const std::string& file, const std::string& path, std::vector<conf::ConfigError>& errors) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        errors.push_back({path, fmt::format("cannot read \"{}\"", file)});
        return;
    }
    if (in.peek() == std::ifstream::traits_type::eof()) errors.push_back({path, fmt::format("\"{}\" is empty", file)});
}

}  // namespace

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
            if (!tls::make_client_tls_context(check.verify, check.ca, error)) {
                errors.push_back({at + "/health_check/ca", error});
            }
        }
        if (service.tls) {
            for (std::size_t c = 0; c < service.tls->certificates.size(); ++c) {
                const auto& certificate = service.tls->certificates[c];
                const std::string entry = fmt::format("{}/tls/certificates/{}", at, c);
                check_readable(certificate.cert, entry + "/cert", errors);
                check_readable(certificate.key, entry + "/key", errors);
            }
            if (service.tls->upstream.ca) check_readable(*service.tls->upstream.ca, at + "/tls/upstream/ca", errors);
        }
        if (const auto& secret = service.persistence.cookie_secret_file) {
            std::string error;
            if (!read_secret_file(*secret, error)) errors.push_back({at + "/persistence/cookie_secret_file", error});
        }
    }
    return errors;
}

std::vector<conf::ConfigError> check_supported(const conf::Config& config) {
    std::vector<conf::ConfigError> errors;
    for (std::size_t s = 0; s < config.virtual_services.size(); ++s) {
        const auto& service = config.virtual_services[s];
        const std::string at = fmt::format("/virtual_services/{}", s);
        // Passthrough needs no TLS of castellan's own: the bytes go on untouched.
        if (service.tls && service.tls->mode != conf::TlsMode::passthrough) {
            errors.push_back({at + "/tls/mode", fmt::format("TLS {} is not available in this build yet; use "
                                                            "\"passthrough\" (the CAS servers keep the certificate)",
                                                            conf::to_string(service.tls->mode))});
        }
        if (service.mode == conf::Mode::http) {
            errors.push_back({at + "/mode", "http mode is not available in this build yet; use \"tcp\""});
        }
        if (service.persistence.type == conf::PersistenceKind::cookie) {
            errors.push_back({at + "/persistence/type", "cookie persistence is not available in this build yet"});
        }
    }
    return errors;
}

std::vector<conf::ConfigError> check_before_start(const conf::Config& config) {
    auto errors = check_supported(config);
    auto file_errors = check_named_files(config);
    errors.insert(errors.end(), file_errors.begin(), file_errors.end());
    return errors;
}

}  // namespace castellan::proxy
