// The HTML status page (`GET /` on the admin listener): the status document as
// tables an operator can read at a glance, refreshing itself every 5 s.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace castellan::proxy::admin {

// Renders the document of status_json(). Pure.
std::string status_page_html(const nlohmann::json& status);

// `text` with &, <, >, " and ' escaped for HTML.
std::string html_escape(std::string_view text);

}  // namespace castellan::proxy::admin
