// The HTML status page (`GET /` on the admin listener): an operator's console.
// Uptime, config generation and the last reload's result; per service and per
// real server the figures of the status document, the current rates and a small
// graph of the last minutes (inline SVG, no external assets); drain / disable /
// enable buttons that call the admin API. An inline script refreshes the figures
// every 5 s and sends the state calls, asking for the bearer token once.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace castellan::proxy::admin {

// Renders the document of status_json(). Pure; any thread. Tolerates a document
// of an older shape or a partial one: a missing or mistyped field is shown as a
// dash, never an exception.
std::string status_page_html(const nlohmann::json& status);

// `text` with &, <, >, " and ' escaped for HTML (text and attribute values).
std::string html_escape(std::string_view text);

}  // namespace castellan::proxy::admin
