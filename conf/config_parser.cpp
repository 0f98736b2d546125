// The top of the config document (INTERFACE.md, "Config file (JSON)"): threads,
// admin, persistence groups, the list of virtual services, and the rules across
// services (unique names, overlapping listeners). Each service is read by
// service_parser.cpp; shared value readers live in field_readers.cpp.
#include "conf/config_parser.hpp"

#include "conf/address.hpp"
#include "conf/service_parser.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace castellan::conf {

std::string ConfigError::to_string() const {
    // The document itself has the empty pointer; "": ... would only confuse.
    return path.empty() ? message : path + ": " + message;
}

namespace {

using namespace detail;

std::optional<Admin> parse_admin(const Json& value, const std::string& path, Context& ctx, bool& listen_ok) {
    ObjectReader r(value, path, ctx.errors);
    if (!r.ok()) return std::nullopt;
    Admin admin;
    listen_ok = r.require("listen") && read_address(r, "listen", admin.listen, true);
    read_path(r, "token_file", admin.token_file, ctx);
    r.finish();
    return admin;
}

void parse_groups(const Json& value, const std::string& path, Context& ctx) {
    if (!value.is_object()) {
        ctx.errors.push_back({path, fmt::format("expected an object of NAME: group, got {}", describe(value))});
        ctx.groups_readable = false;
        return;
    }
    for (const auto& [name, body] : value.items()) {
        const std::string group_path = detail::pointer_join(path, name);
        if (!is_name(name)) {
            ctx.errors.push_back({group_path, fmt::format("expected a group name of {}", name_rule)});
        }
        PersistenceGroup group;
        ObjectReader r(body, group_path, ctx.errors);
        r.integer("timeout_s", group.timeout_s, 1, one_week_s);
        r.integer("max_entries", group.max_entries, 1, no_upper_limit);
        r.finish();
        // Defined even when its body has errors: those are reported already, and a
        // second "not defined" error at each user of the group would mislead.
        ctx.groups[name] = group;
    }
}

// "<mine> overlaps <theirs> of virtual service "web" (/virtual_services/0): <why>".
std::string overlap_message(const HostPort& mine, const ServiceResult& theirs, std::size_t index) {
    const HostPort& other = theirs.service.listen;
    std::string why = "the same address";  // also when spelled differently, as [::1] and [0::1]
    if (mine != other && other.is_wildcard()) {
        why = fmt::format("{} takes port {} on every address", other.to_string(), other.port);
    } else if (mine != other && mine.is_wildcard()) {
        why = fmt::format("{} takes port {} on every address", mine.to_string(), mine.port);
    }
    const std::string where = fmt::format("/virtual_services/{}", index);
    const std::string service =
        theirs.name_ok ? fmt::format("virtual service {} ({})", quote(theirs.service.name), where) : where;
    return fmt::format("{} overlaps {} of {}: {}", mine.to_string(), other.to_string(), service, why);
}

Config parse_root(const Json& root, Context& ctx) {
    Config config;
    ObjectReader r(root, "", ctx.errors);
    if (!r.ok()) return config;
    r.integer("threads", config.threads, 0, 256);
    r.integer("shutdown_grace_s", config.shutdown_grace_s, 0, 86400);
    constexpr std::array access_logs{AccessLog::all, AccessLog::errors, AccessLog::off};
    r.enumeration("access_log", config.access_log, access_logs);
    bool admin_listen_ok = false;
    if (const Json* admin = r.take("admin")) config.admin = parse_admin(*admin, "/admin", ctx, admin_listen_ok);
    if (const Json* groups = r.take("persistence_groups")) parse_groups(*groups, "/persistence_groups", ctx);
    config.persistence_groups = ctx.groups;

    std::vector<ServiceResult> services;
    if (r.require("virtual_services")) {
        const Json& list = *r.take("virtual_services");
        if (!list.is_array()) {
            ctx.errors.push_back({"/virtual_services",
                                  fmt::format("expected an array of virtual services, got {}", describe(list))});
        } else if (list.empty()) {
            ctx.errors.push_back({"/virtual_services", "expected at least one virtual service"});
        }
        for (std::size_t i = 0; list.is_array() && i < list.size(); ++i) {
            services.push_back(parse_service(list[i], detail::pointer_join("/virtual_services", i), ctx));
        }
    }
    r.finish();

    for (std::size_t j = 0; j < services.size(); ++j) {
        const std::string path = detail::pointer_join("/virtual_services", j);
        const VirtualService& mine = services[j].service;
        for (std::size_t i = 0; i < j; ++i) {
            const VirtualService& theirs = services[i].service;
            if (services[i].name_ok && services[j].name_ok && mine.name == theirs.name) {
                ctx.errors.push_back({path + "/name", fmt::format("name {} is already used by /virtual_services/{}",
                                                                  quote(mine.name), i)});
            }
            if (services[i].listen_ok && services[j].listen_ok && listens_overlap(mine.listen, theirs.listen)) {
                ctx.errors.push_back({path + "/listen", overlap_message(mine.listen, services[i], i)});
            }
        }
    }
    if (config.admin && admin_listen_ok) {
        for (std::size_t i = 0; i < services.size(); ++i) {
            if (services[i].listen_ok && listens_overlap(config.admin->listen, services[i].service.listen)) {
                ctx.errors.push_back({"/admin/listen", overlap_message(config.admin->listen, services[i], i)});
            }
        }
    }
    for (auto& service : services) config.virtual_services.push_back(std::move(service.service));
    return config;
}

}  // namespace

ParseResult parse_config(std::string_view json_text, const std::string& base_dir) {
    ParseResult result;
    try {
        std::error_code ignored;
        std::filesystem::path base = std::filesystem::absolute(base_dir.empty() ? "." : base_dir, ignored);
        if (base.empty()) base = base_dir;
        Context ctx{result.errors, base.lexically_normal(), {}, true};
        const auto document = detail::parse_json(json_text, result.errors);
        if (!document) return result;
        Config config = parse_root(*document, ctx);
        if (result.errors.empty()) result.config = std::move(config);
    } catch (const std::exception& e) {
        // Nothing above should throw; if it does, the caller still gets an error list.
        result.config.reset();
        result.errors.push_back({"", fmt::format("internal error while reading the config: {}", e.what())});
    }
    return result;
}

ParseResult load_config_file(const std::string& file) {
    std::FILE* stream = std::fopen(file.c_str(), "rb");
    if (!stream) {
        const int error = errno;
        return {std::nullopt, {{"", fmt::format("cannot read config file {}: {}", quote(file), std::strerror(error))}}};
    }
    std::string text;
    std::array<char, 65536> buffer{};
    std::size_t count = 0;
    while ((count = std::fread(buffer.data(), 1, buffer.size(), stream)) > 0) text.append(buffer.data(), count);
    const int error = std::ferror(stream) ? errno : 0;
    std::fclose(stream);
    if (error != 0) {
        return {std::nullopt, {{"", fmt::format("cannot read config file {}: {}", quote(file), std::strerror(error))}}};
    }
    std::error_code ignored;
    auto absolute = std::filesystem::absolute(file, ignored);
    if (absolute.empty()) absolute = file;
    return parse_config(text, absolute.parent_path().string());
}

}  // namespace castellan::conf
