#include "proxy/admin/persistence_call.hpp"

#include "proxy/session_common.hpp"
#include "proxy/time_format.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <vector>

namespace castellan::proxy::admin {

namespace {

// A source-IP table and what the API calls it: a persistence group by its
// name, a service's own table by the service's name.
struct NamedTable {
    std::string name;
    const char* kind;  // "group" or "service"
    std::vector<std::string> members;  // the services that use it, in config order
    persistence::SourceIpTable* table;
};

// Every source-IP table of the snapshot, groups first. A service is matched to
// its group by the table it holds, not by its config, so that whatever gives a
// service a table (a fallback of another persistence type) is listed too.
std::vector<NamedTable> source_ip_tables(const Runtime& runtime) {
    std::vector<NamedTable> tables;
    for (const auto& [name, table] : runtime.persistence_groups) {
        if (table) tables.push_back({name, "group", {}, table.get()});
    }
    for (const auto& service : runtime.services) {
        auto* table = service->source_ip_table.get();
        if (!table) continue;
        auto shared = std::find_if(tables.begin(), tables.end(), [&](const NamedTable& t) { return t.table == table; });
        if (shared != tables.end()) {
            shared->members.push_back(service->config.name);
        } else {
            tables.push_back({service->config.name, "service", {service->config.name}, table});
        }
    }
    return tables;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> percent_decoded(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out += ' ';
        } else if (text[i] != '%') {
            out += text[i];
        } else {
            if (i + 2 >= text.size()) return std::nullopt;  // a % without two digits
            const int high = hex_value(text[i + 1]);
            const int low = hex_value(text[i + 2]);
            if (high < 0 || low < 0) return std::nullopt;
            out += static_cast<char>(high * 16 + low);
            i += 2;
        }
    }
    return out;
}

}  // namespace

std::optional<std::string> query_parameter(std::string_view target, std::string_view name) {
    const auto question = target.find('?');
    if (question == std::string_view::npos) return std::nullopt;
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        const auto equals = pair.find('=');
        const auto key = percent_decoded(pair.substr(0, equals));
        if (!key || *key != name) continue;
        return percent_decoded(equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1));
    }
    return std::nullopt;
}

std::optional<persistence::ClientKey> client_key_of_text(std::string_view address) {
    if (address.size() >= 2 && address.front() == '[' && address.back() == ']') {
        address = address.substr(1, address.size() - 2);
    }
    if (address.empty() || address.size() > 64) return std::nullopt;
    boost::system::error_code error;
    const auto parsed = boost::asio::ip::make_address(std::string(address), error);
    if (error) return std::nullopt;
    return client_key_of(boost::asio::ip::tcp::endpoint(parsed, 0));
}

nlohmann::json persistence_entries(const Runtime& runtime, const persistence::ClientKey& client,
                                   std::chrono::steady_clock::time_point now,
                                   std::chrono::system_clock::time_point wall_now) {
    auto entries = nlohmann::json::array();
    for (const auto& named : source_ip_tables(runtime)) {
        const auto binding = named.table->lookup(client, now);
        if (!binding) continue;
        nlohmann::json expires;  // null while connections are open
        if (binding->expires) {
            expires = rfc3339_utc(wall_now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                 *binding->expires - now));
        }
        entries.push_back({{"table", named.name},
                           {"kind", named.kind},
                           {"virtual_services", named.members},
                           {"real_server", binding->server},
                           {"open_connections", binding->open_connections},
                           {"expires", std::move(expires)}});
    }
    return entries;
}

std::size_t forget_persistence(const Runtime& runtime, const persistence::ClientKey& client,
                               std::chrono::steady_clock::time_point now) {
    std::size_t removed = 0;
    for (const auto& named : source_ip_tables(runtime)) removed += named.table->forget(client, now) ? 1 : 0;
    return removed;
}

}  // namespace castellan::proxy::admin
