#include "proxy/admin/status_page.hpp"

#include <fmt/format.h>

namespace castellan::proxy::admin {

namespace {

std::string text_of(const nlohmann::json& value) {
    if (value.is_string()) return html_escape(value.get<std::string>());
    if (value.is_null()) return "&ndash;";
    return html_escape(value.dump());
}

// Bytes as an operator reads them: 1.2 MiB rather than 1258291.
std::string bytes_text(const nlohmann::json& value) {
    if (!value.is_number_unsigned() && !value.is_number_integer()) return text_of(value);
    double bytes = value.get<double>();
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (bytes >= 1024 && unit < 4) {
        bytes /= 1024;
        ++unit;
    }
    return unit == 0 ? fmt::format("{} B", value.get<std::uint64_t>()) : fmt::format("{:.1f} {}", bytes, units[unit]);
}

std::string health_text(const nlohmann::json& server) {
    const auto& health = server.value("health", nlohmann::json());
    std::string text;
    if (health.is_null()) {
        text = "no check yet";
    } else {
        text = fmt::format("{} {} ({} ms) at {}", health.value("ok", false) ? "passed" : "failed",
                           html_escape(health.value("detail", "")), health.value("latency_ms", 0),
                           html_escape(health.value("at", "")));
    }
    if (server.contains("detail")) text += "<br>" + text_of(server["detail"]);
    return text;
}

}  // namespace

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string status_page_html(const nlohmann::json& status) {
    std::string page =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"refresh\" content=\"5\">\n<title>castellan status</title>\n<style>\n"
        "body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin-bottom:1.5em}\n"
        "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#eee}\n"
        ".up{background:#d8f5d8}.down{background:#f8d0d0}.draining{background:#fdf0c8}.disabled{background:#ddd}\n"
        "</style></head><body>\n";
    const auto& config = status.value("config", nlohmann::json::object());
    page += fmt::format("<h1>castellan {}</h1>\n<p>config {} (generation {})</p>\n",
                        text_of(status.value("version", nlohmann::json())), text_of(config.value("file", nlohmann::json())),
                        text_of(config.value("generation", nlohmann::json())));
    const auto& last_reload = config.value("last_reload", nlohmann::json());
    if (last_reload.is_object() && !last_reload.value("ok", true)) {
        page += "<p class=\"down\">last reload failed: ";
        for (const auto& error : last_reload.value("errors", nlohmann::json::array())) page += text_of(error) + "; ";
        page += "</p>\n";
    }
    for (const auto& service : status.value("virtual_services", nlohmann::json::array())) {
        page += fmt::format(
            "<h2>{} <small>{} {}</small></h2>\n<p>{} open, {} total, {} in, {} out</p>\n",
            text_of(service["name"]), text_of(service["listen"]), text_of(service["mode"]),
            text_of(service["connections_active"]), text_of(service["connections_total"]),
            bytes_text(service["bytes_in"]), bytes_text(service["bytes_out"]));
        page += "<table><tr><th>real server</th><th>address</th><th>state</th><th>weight</th><th>open</th>"
                "<th>total</th><th>connect failures</th><th>in</th><th>out</th><th>last check</th></tr>\n";
        for (const auto& server : service.value("real_servers", nlohmann::json::array())) {
            const std::string state = server.value("state", "");
            page += fmt::format(
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                "<td>{}</td><td>{}</td><td>{}</td></tr>\n",
                text_of(server["name"]), text_of(server["address"]), html_escape(state), html_escape(state),
                text_of(server["weight"]), text_of(server["connections_active"]), text_of(server["connections_total"]),
                text_of(server["connect_failures"]), bytes_text(server["bytes_in"]), bytes_text(server["bytes_out"]),
                health_text(server));
        }
        page += "</table>\n";
    }
    page += "<p><a href=\"/api/v1/status\">JSON</a></p>\n</body></html>\n";
    return page;
}

}  // namespace castellan::proxy::admin
