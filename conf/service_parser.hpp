// One entry of `virtual_services`: the service's own keys and its parts
// (persistence, real servers, health check, tls, http, timeouts), with the rules
// that join keys inside one service. Rules across services (unique names,
// overlapping listeners) are config_parser.cpp's. Internal to conf/.
#pragma once

#include "conf/field_readers.hpp"

#include <string>

namespace castellan::conf::detail {

struct ServiceResult {
    VirtualService service;
    bool name_ok = false;    // service.name was read and is valid
    bool listen_ok = false;  // service.listen was read and is valid
};

// Reads the service at `path`; ctx.groups must already hold the persistence groups.
ServiceResult parse_service(const Json& value, const std::string& path, Context& ctx);

}  // namespace castellan::conf::detail
