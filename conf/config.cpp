#include "conf/config.hpp"

#include "conf/address.hpp"

#include <algorithm>

namespace castellan::conf {

std::string HostPort::to_string() const {
    std::string text;
    if (kind == Kind::ipv6) {
        text.append("[").append(host).append("]");
    } else {
        text.append(host);
    }
    text.append(":").append(std::to_string(port));
    return text;
}

bool HostPort::is_wildcard() const {
    switch (kind) {
    case Kind::ipv4: {
        const auto bytes = parse_ipv4(host);
        return bytes && std::all_of(bytes->begin(), bytes->end(), [](std::uint8_t b) { return b == 0; });
    }
    case Kind::ipv6: {
        const auto bytes = parse_ipv6(host);
        return bytes && std::all_of(bytes->begin(), bytes->end(), [](std::uint8_t b) { return b == 0; });
    }
    case Kind::hostname:
        return false;
    }
    return false;
}

const char* to_string(Mode mode) {
    switch (mode) {
    case Mode::tcp: return "tcp";
    case Mode::http: return "http";
    }
    return "?";
}

const char* to_string(SchedulerKind kind) {
    switch (kind) {
    case SchedulerKind::round_robin: return "round_robin";
    case SchedulerKind::weighted_round_robin: return "weighted_round_robin";
    case SchedulerKind::least_connections: return "least_connections";
    case SchedulerKind::source_hash: return "source_hash";
    }
    return "?";
}

const char* to_string(PersistenceKind kind) {
    switch (kind) {
    case PersistenceKind::none: return "none";
    case PersistenceKind::source_ip: return "source_ip";
    case PersistenceKind::cookie: return "cookie";
    case PersistenceKind::rpc_http: return "rpc_http";
    }
    return "?";
}

const char* to_string(HealthCheckKind kind) {
    switch (kind) {
    case HealthCheckKind::tcp: return "tcp";
    case HealthCheckKind::http: return "http";
    case HealthCheckKind::https: return "https";
    case HealthCheckKind::smtp: return "smtp";
    case HealthCheckKind::dcerpc: return "dcerpc";
    case HealthCheckKind::none: return "none";
    }
    return "?";
}

const char* to_string(TlsMode mode) {
    switch (mode) {
    case TlsMode::terminate: return "terminate";
    case TlsMode::passthrough: return "passthrough";
    case TlsMode::reencrypt: return "reencrypt";
    }
    return "?";
}

const char* to_string(OnServerDown action) {
    switch (action) {
    case OnServerDown::keep: return "keep";
    case OnServerDown::close: return "close";
    }
    return "?";
}

const char* to_string(AccessLog choice) {
    switch (choice) {
    case AccessLog::all: return "all";
    case AccessLog::errors: return "errors";
    case AccessLog::off: return "off";
    }
    return "?";
}

bool uses_source_ip_table(const Persistence& persistence) {
    return persistence.type == PersistenceKind::source_ip ||
           (persistence.type == PersistenceKind::rpc_http && persistence.fallback == PersistenceKind::source_ip);
}

bool uses_cookie(const Persistence& persistence) {
    return persistence.type == PersistenceKind::cookie ||
           (persistence.type == PersistenceKind::rpc_http && persistence.fallback != PersistenceKind::none);
}

}  // namespace castellan::conf
