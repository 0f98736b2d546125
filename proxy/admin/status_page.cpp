#include "proxy/admin/status_page.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

namespace castellan::proxy::admin {

namespace {

using nlohmann::json;

// How many points a graph spans at most (the status document keeps 120, 10
// minutes at 5 s); a shorter series is drawn against the right edge, so the
// time axis keeps its scale while the history fills up.
constexpr std::size_t graph_points = 120;
constexpr double graph_width = 160;
constexpr double graph_height = 40;

// Colours of the graphs' lines, also used by the legend in the table headers.
constexpr const char* connections_colour = "#2b6cb0";
constexpr const char* bytes_in_colour = "#2f855a";
constexpr const char* bytes_out_colour = "#c05621";

// `object[key]`, or null when `object` is no object or lacks the key: the page
// must render from a document of an older (or newer) shape.
const json& field(const json& object, const char* key) {
    static const json null_value;
    if (!object.is_object()) return null_value;
    auto it = object.find(key);
    return it == object.end() ? null_value : *it;
}

const json& array_field(const json& object, const char* key) {
    static const json empty_array = json::array();
    const json& value = field(object, key);
    return value.is_array() ? value : empty_array;
}

std::string string_field(const json& object, const char* key) {
    const json& value = field(object, key);
    return value.is_string() ? value.get<std::string>() : std::string();
}

// A count (signed or unsigned in the document, depending on the C++ type it
// came from), or nothing when `value` is no non-negative integer.
std::optional<std::uint64_t> count_of(const json& value) {
    if (value.is_number_unsigned()) return value.get<std::uint64_t>();
    if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
        return static_cast<std::uint64_t>(value.get<std::int64_t>());
    }
    return std::nullopt;
}

std::string text_of(const json& value) {
    if (value.is_string()) return html_escape(value.get<std::string>());
    if (value.is_null()) return "&ndash;";
    return html_escape(value.dump());
}

// Bytes as an operator reads them: 1.2 MiB rather than 1258291.
std::string bytes_text(const json& value) {
    const auto count = count_of(value);
    if (!count) return text_of(value);
    double bytes = static_cast<double>(*count);
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (bytes >= 1024 && unit < 4) {
        bytes /= 1024;
        ++unit;
    }
    return unit == 0 ? fmt::format("{} B", *count) : fmt::format("{:.1f} {}", bytes, units[unit]);
}

// A real server's connect failures; those that were castellan's own (no
// local port, no descriptor) beside them when there are any, so that an
// operator does not blame the server for them.
std::string connect_failures_text(const json& server) {
    std::string text = text_of(field(server, "connect_failures"));
    const auto local = count_of(field(server, "local_connect_failures"));
    if (local && *local > 0) {
        text += fmt::format(" <span class=\"local\" title=\"connects that failed for want of a local port, source "
                            "address or descriptor on this host (see the log), not the server's fault\">+ {} here</span>",
                            *local);
    }
    return text;
}

std::string bytes_rate_text(double per_second) {
    const char* units[] = {"B/s", "KiB/s", "MiB/s", "GiB/s"};
    int unit = 0;
    while (per_second >= 1024 && unit < 3) {
        per_second /= 1024;
        ++unit;
    }
    return unit == 0 ? fmt::format("{:.0f} B/s", per_second) : fmt::format("{:.1f} {}", per_second, units[unit]);
}

std::string connections_rate_text(double per_second) {
    return per_second < 10 ? fmt::format("{:.2f}/s", per_second) : fmt::format("{:.1f}/s", per_second);
}

// 3 d 4 h 5 min, 4 h 5 min 6 s, 5 min 6 s, 6 s.
std::string duration_text(std::uint64_t seconds) {
    const auto days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60, rest = seconds % 60;
    if (days > 0) return fmt::format("{} d {} h {} min", days, hours, minutes);
    if (hours > 0) return fmt::format("{} h {} min {} s", hours, minutes, rest);
    if (minutes > 0) return fmt::format("{} min {} s", minutes, rest);
    return fmt::format("{} s", rest);
}

// The last `graph_points` numbers of rates[name]; anything that is not a
// non-negative number counts as 0.
std::vector<double> series_of(const json& rates, const char* name) {
    const json& values = array_field(rates, name);
    std::vector<double> out;
    const std::size_t skip = values.size() > graph_points ? values.size() - graph_points : 0;
    for (std::size_t i = skip; i < values.size(); ++i) {
        const json& value = values[i];
        out.push_back(value.is_number() && value.get<double>() > 0 ? value.get<double>() : 0.0);
    }
    return out;
}

struct Line {
    std::vector<double> values;
    const char* colour;
};

struct Point {
    double x, y;
};

// Where `values` lie in the graph: newest at the right edge, one step apart,
// scaled so that `peak` touches the top (2 px margins so a line at 0 or at the
// peak stays visible). One value gives a short flat segment, as a single point
// would draw nothing.
std::vector<Point> graph_points_of(const std::vector<double>& values, double peak) {
    const double dx = graph_width / static_cast<double>(graph_points - 1);
    auto y_of = [&](double value) {
        return peak > 0 ? graph_height - 2 - value / peak * (graph_height - 4) : graph_height - 2;
    };
    std::vector<Point> points;
    if (values.size() == 1) points.push_back({graph_width - dx, y_of(values[0])});
    for (std::size_t i = 0; i < values.size(); ++i) {
        points.push_back({graph_width - static_cast<double>(values.size() - 1 - i) * dx, y_of(values[i])});
    }
    return points;
}

std::string points_text(const std::vector<Point>& points) {
    std::string text;
    for (const auto& point : points) {
        if (!text.empty()) text += ' ';
        text += fmt::format("{:.1f},{:.1f}", point.x, point.y);
    }
    return text;
}

// A small inline SVG of `lines` on one scale (from 0 to their common peak):
// each a line over a light area, with a dot on its newest value so that a
// short history is visible too. `title` is the tooltip. "collecting" while
// there are no values yet.
std::string graph_svg(const std::vector<Line>& lines, const std::string& title) {
    double peak = 0;
    bool any = false;
    for (const auto& line : lines) {
        for (double value : line.values) peak = std::max(peak, value);
        any = any || !line.values.empty();
    }
    if (!any) return "<span class=\"muted\">collecting</span>";
    std::string svg = fmt::format(
        "<svg class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
        "viewBox=\"0 0 {0} {1}\" role=\"img\"><title>{2}</title>"
        "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"#fafafa\" stroke=\"#ddd\"/>",
        graph_width, graph_height, html_escape(title));
    for (const auto& line : lines) {
        if (line.values.empty()) continue;
        auto points = graph_points_of(line.values, peak);
        const Point newest = points.back();
        const std::string outline = points_text(points);
        points.push_back({newest.x, graph_height});
        points.push_back({points.front().x, graph_height});
        svg += fmt::format(
            "<polygon fill=\"{0}\" fill-opacity=\"0.15\" stroke=\"none\" points=\"{1}\"/>"
            "<polyline fill=\"none\" stroke=\"{0}\" stroke-width=\"1.5\" points=\"{2}\"/>"
            "<circle cx=\"{3:.1f}\" cy=\"{4:.1f}\" r=\"2\" fill=\"{0}\"/>",
            line.colour, points_text(points), outline, newest.x, newest.y);
    }
    svg += "</svg>";
    return svg;
}

// "last 10 min" for rates kept every step_s over graph_points steps.
std::string window_text(const json& rates) {
    const auto step = count_of(field(rates, "step_s"));
    if (!step || *step == 0) return "last minutes";
    const auto seconds = *step * graph_points;
    return seconds % 60 == 0 ? fmt::format("last {} min", seconds / 60) : fmt::format("last {} s", seconds);
}

// The table cells of one thing's rates: connections/s, bytes in/s, bytes
// out/s (each the latest value), then the two graphs.
std::string rate_cells(const json& rates) {
    const auto connections = series_of(rates, "connections_per_s");
    const auto bytes_in = series_of(rates, "bytes_in_per_s");
    const auto bytes_out = series_of(rates, "bytes_out_per_s");
    auto latest = [](const std::vector<double>& values, auto format) {
        return values.empty() ? std::string("&ndash;") : format(values.back());
    };
    double peak_connections = 0, peak_bytes = 0;
    for (double value : connections) peak_connections = std::max(peak_connections, value);
    for (double value : bytes_in) peak_bytes = std::max(peak_bytes, value);
    for (double value : bytes_out) peak_bytes = std::max(peak_bytes, value);
    const std::string window = window_text(rates);
    return fmt::format(
        "<td class=\"rate connections-rate\">{}</td><td class=\"rate bytes-in-rate\">{}</td>"
        "<td class=\"rate bytes-out-rate\">{}</td><td class=\"graph-cell\">{}</td><td class=\"graph-cell\">{}</td>",
        latest(connections, connections_rate_text), latest(bytes_in, bytes_rate_text),
        latest(bytes_out, bytes_rate_text),
        graph_svg({{connections, connections_colour}},
                  fmt::format("connections/s, {}, peak {}", window, connections_rate_text(peak_connections))),
        graph_svg({{bytes_in, bytes_in_colour}, {bytes_out, bytes_out_colour}},
                  fmt::format("bytes/s in and out, {}, peak {}", window, bytes_rate_text(peak_bytes))));
}

std::string health_text(const json& server) {
    const json& health = field(server, "health");
    std::string text;
    if (!health.is_object()) {
        text = "no check yet";
    } else {
        const json& ok = field(health, "ok");
        text = fmt::format("{} {} ({} ms)<br>at {}", ok.is_boolean() && ok.get<bool>() ? "passed" : "failed",
                           html_escape(string_field(health, "detail")), text_of(field(health, "latency_ms")),
                           html_escape(string_field(health, "at")));
    }
    if (!field(server, "detail").is_null()) text += "<br>" + text_of(field(server, "detail"));
    return text;
}

// The admin state a shown state implies: disabled and draining win over down
// and up (INTERFACE.md), so up or down means "enabled".
std::string admin_state_of(const std::string& shown) {
    if (shown == "draining") return "drain";
    if (shown == "disabled") return "disabled";
    return "enabled";
}

// The buttons carry the names in data- attributes (HTML-escaped) which the
// script reads back: no name is ever spliced into script source.
std::string action_buttons(const std::string& service, const std::string& server, const std::string& shown_state) {
    const std::string current = admin_state_of(shown_state);
    std::string cell = "<td class=\"actions\">";
    struct Action {
        const char* state;  // the API's word
        const char* label;
    };
    for (const Action& action : {Action{"drain", "drain"}, Action{"disabled", "disable"}, Action{"enabled", "enable"}}) {
        cell += fmt::format(
            "<button type=\"button\" class=\"state-{}\" data-vs=\"{}\" data-rs=\"{}\" data-state=\"{}\"{}>{}</button>",
            action.state, html_escape(service), html_escape(server), action.state,
            current == action.state ? " disabled" : "", action.label);
    }
    return cell + "</td>";
}

std::string summary_html(const json& status) {
    const json& config = field(status, "config");
    const auto uptime = count_of(field(status, "uptime_s"));
    std::string html = "<table class=\"summary\">\n";
    html += fmt::format("<tr><th>uptime</th><td id=\"uptime\">{}</td><th>started</th><td>{}</td></tr>\n",
                        uptime ? duration_text(*uptime) : "&ndash;",
                        text_of(field(status, "started_at")));
    html += fmt::format("<tr><th>config file</th><td>{}</td><th>generation</th><td id=\"generation\">{}</td></tr>\n",
                        text_of(field(config, "file")), text_of(field(config, "generation")));

    const json& last_reload = field(config, "last_reload");
    html += "<tr><th>last reload</th><td colspan=\"3\" id=\"last-reload\"";
    if (!last_reload.is_object()) {
        html += ">none since the start";
    } else {
        const json& ok = field(last_reload, "ok");
        const bool applied = ok.is_boolean() && ok.get<bool>();
        html += fmt::format(" class=\"{}\">{} at {}", applied ? "up" : "down", applied ? "applied" : "failed",
                            text_of(field(last_reload, "at")));
        const json& errors = array_field(last_reload, "errors");
        if (!errors.empty()) {
            html += "<ul class=\"errors\">";
            for (const auto& error : errors) html += "<li>" + text_of(error) + "</li>";
            html += "</ul>";
        }
    }
    html += "</td></tr>\n";

    const json& token_required = field(field(status, "admin"), "token_required");
    html += fmt::format("<tr><th>admin API</th><td colspan=\"3\">{}</td></tr>\n",
                        !token_required.is_boolean() ? "&ndash;"
                        : token_required.get<bool>() ? "state changes need the bearer token"
                                                     : "no token set");
    return html + "</table>\n";
}

std::string service_html(const json& service, const std::string& window) {
    const std::string name = string_field(service, "name");
    const json& servers = array_field(service, "real_servers");
    std::size_t up = 0;
    for (const auto& server : servers) up += string_field(server, "state") == "up" ? 1 : 0;
    const char* service_class = up == servers.size() ? "up" : up == 0 ? "down" : "partial";

    std::string html = fmt::format("<section class=\"service\" data-vs=\"{}\">\n<h2>{} <small>{} {}</small></h2>\n",
                                   html_escape(name), html_escape(name), text_of(field(service, "listen")),
                                   text_of(field(service, "mode")));
    html += fmt::format(
        "<table>\n<tr><th>real server</th><th>address</th><th>state</th><th>weight</th><th>open</th><th>total</th>"
        "<th>connect failures</th><th>in</th><th>out</th><th>conn/s</th><th>in/s</th><th>out/s</th>"
        "<th>connections/s, {0}</th><th>bytes/s <span style=\"color:{1}\">in</span> "
        "<span style=\"color:{2}\">out</span>, {0}</th><th>last check</th><th>actions</th></tr>\n",
        html_escape(window), bytes_in_colour, bytes_out_colour);
    html += fmt::format(
        "<tr class=\"service-row\"><td>all servers</td><td class=\"num\">{}</td><td class=\"{}\">{} of {} up</td><td></td>"
        "<td>{}</td><td>{}</td><td></td><td class=\"num\">{}</td><td class=\"num\">{}</td>{}<td></td><td></td></tr>\n",
        text_of(field(service, "listen")), service_class, up, servers.size(),
        text_of(field(service, "connections_active")), text_of(field(service, "connections_total")),
        bytes_text(field(service, "bytes_in")), bytes_text(field(service, "bytes_out")),
        rate_cells(field(service, "rates")));
    for (const auto& server : servers) {
        const std::string server_name = string_field(server, "name");
        const std::string state = string_field(server, "state");
        html += fmt::format(
            "<tr class=\"server-row\" data-rs=\"{0}\"><td>{0}</td><td class=\"num\">{1}</td><td class=\"state {2}\">{2}</td>"
            "<td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td><td class=\"num\">{7}</td><td class=\"num\">{8}</td>{9}"
            "<td class=\"check\">{10}</td>{11}</tr>\n",
            html_escape(server_name), text_of(field(server, "address")), html_escape(state),
            text_of(field(server, "weight")), text_of(field(server, "connections_active")),
            text_of(field(server, "connections_total")), connect_failures_text(server),
            bytes_text(field(server, "bytes_in")), bytes_text(field(server, "bytes_out")),
            rate_cells(field(server, "rates")), health_text(server), action_buttons(name, server_name, state));
    }
    return html + "</table>\n</section>\n";
}

// The script: every 5 s it fetches the page again and swaps the console in
// place (keeping the scroll position and the message line; skipped while a
// state call or its token prompt is under way, so no refresh interrupts a
// click); the buttons POST the state call. The persistence box (outside the
// swapped part) looks a client up and its button DELETEs the client's entries.
// The token is asked for once, kept in
// sessionStorage (gone with the tab), and asked again after a 401: a server
// that does not say whether it wants one (older status document) is asked
// without, and its 401 prompts. Nothing of the status is spliced into this
// source: names come from the buttons' data- attributes.
constexpr const char* page_script = R"js(
(function () {
  "use strict";
  var TOKEN_KEY = "castellan.admin_token";
  var busy = false;
  var refreshing = false;
  var message = document.getElementById("message");
  var updated = document.getElementById("updated");

  function show(text, failed) {
    message.textContent = text;
    message.className = failed ? "failed" : "done";
  }
  function stamp() {
    updated.textContent = "updated " + new Date().toLocaleTimeString();
    updated.className = "";
  }
  function tokenRequired() {
    var console_ = document.getElementById("console");
    return console_ !== null && console_.getAttribute("data-token-required") === "true";
  }
  function askToken(refused) {
    var answer = window.prompt(refused ? "The admin API refused this token. Bearer token:"
                                       : "Bearer token for the admin API:", "");
    if (answer === null) {
      return null;
    }
    answer = answer.trim();
    sessionStorage.setItem(TOKEN_KEY, answer);
    return answer;
  }
  // One admin call with the bearer token: asks for it first when the status
  // says one is required and none is kept, and again after a 401 (at most 3
  // times). Resolves to {status, ok, body} (body: the parsed JSON or null).
  function send(method, url, body, token) {
    var headers = {};
    if (body !== null) {
      headers["Content-Type"] = "application/json";
    }
    if (token) {
      headers["Authorization"] = "Bearer " + token;
    }
    var init = { method: method, headers: headers, cache: "no-store" };
    if (body !== null) {
      init.body = JSON.stringify(body);
    }
    return fetch(url, init)
      .then(function (response) {
        return response.text().then(function (text) {
          var parsed = null;
          try { parsed = JSON.parse(text); } catch (ignored) { parsed = null; }
          return { status: response.status, ok: response.ok, body: parsed };
        });
      });
  }
  function errorOf(answer) {
    return answer.body && typeof answer.body.error === "string" ? answer.body.error : "HTTP " + answer.status;
  }
  function authorized(method, url, body) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token === null && tokenRequired()) {
      token = askToken(false);
      if (token === null) {
        return Promise.reject(new Error("no token given"));
      }
    }
    function attempt(token, promptsLeft) {
      return send(method, url, body, token).then(function (answer) {
        if (answer.status === 401 && promptsLeft > 0) {
          sessionStorage.removeItem(TOKEN_KEY);
          var again = askToken(Boolean(token));
          if (again === null) {
            throw new Error("the admin API needs a bearer token");
          }
          return attempt(again, promptsLeft - 1);
        }
        if (!answer.ok) {
          throw new Error(errorOf(answer));
        }
        return answer;
      });
    }
    return attempt(token, 3);
  }
  function changeState(vs, rs, state) {
    var url = "/api/v1/virtual-services/" + encodeURIComponent(vs) + "/real-servers/" +
              encodeURIComponent(rs) + "/state";
    return authorized("POST", url, { state: state }).then(function (answer) {
      return answer.body && typeof answer.body.state === "string" ? answer.body.state : state;
    });
  }

  // The persistence search box. It lives outside #console, so the refresh
  // never replaces it or its result; the result is built with textContent
  // only (no address or name becomes markup).
  var searchForm = document.getElementById("persistence-form");
  var searchInput = document.getElementById("persistence-client");
  var searchResult = document.getElementById("persistence-result");
  function persistenceUrl(client) {
    return "/api/v1/persistence?client=" + encodeURIComponent(client);
  }
  function cell(row, tag, text, className) {
    var element = document.createElement(tag);
    element.textContent = text;
    if (className) {
      element.className = className;
    }
    row.appendChild(element);
    return element;
  }
  function showEntries(client, entries) {
    searchResult.textContent = "";
    if (entries.length === 0) {
      var none = document.createElement("p");
      none.className = "muted";
      none.id = "persistence-none";
      none.textContent = "No persistence entry for " + client +
        ": its next connection is scheduled afresh (only source_ip persistence keeps entries).";
      searchResult.appendChild(none);
      return;
    }
    var table = document.createElement("table");
    table.id = "persistence-entries";
    var head = document.createElement("tr");
    ["table", "services", "real server", "open", "expires"].forEach(function (title) {
      cell(head, "th", title);
    });
    table.appendChild(head);
    entries.forEach(function (entry) {
      var row = document.createElement("tr");
      row.className = "persistence-entry";
      cell(row, "td", String(entry.table) + (entry.kind === "group" ? " (group)" : ""), "table-name");
      cell(row, "td", Array.isArray(entry.virtual_services) ? entry.virtual_services.join(", ") : "");
      cell(row, "td", String(entry.real_server), "real-server");
      cell(row, "td", String(entry.open_connections), "num");
      cell(row, "td", entry.expires === null ? "while connected" : String(entry.expires), "expires");
      table.appendChild(row);
    });
    searchResult.appendChild(table);
    var forget = document.createElement("button");
    forget.type = "button";
    forget.id = "persistence-forget";
    forget.textContent = "forget " + client;
    forget.title = "its next connection is scheduled afresh; open connections stay where they are";
    forget.setAttribute("data-client", client);
    searchResult.appendChild(forget);
  }
  function lookUp(client) {
    searchResult.textContent = "looking up " + client + "...";
    return send("GET", persistenceUrl(client), null, null).then(function (answer) {
      if (!answer.ok || !Array.isArray(answer.body)) {
        throw new Error(errorOf(answer));
      }
      showEntries(client, answer.body);
    }).catch(function (error) {
      searchResult.textContent = "";
      cell(searchResult, "p", client + ": " + error.message, "failed");
    });
  }
  searchForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var client = searchInput.value.trim();
    if (client !== "") {
      lookUp(client);
    }
  });
  searchResult.addEventListener("click", function (event) {
    var button = event.target.closest("#persistence-forget");
    if (button === null || busy) {
      return;
    }
    var client = button.getAttribute("data-client");
    busy = true;
    button.disabled = true;
    show(client + ": forgetting...", false);
    authorized("DELETE", persistenceUrl(client), null)
      .then(function (answer) {
        var removed = answer.body && typeof answer.body.removed === "number" ? answer.body.removed : 0;
        show(client + ": forgot " + removed + (removed === 1 ? " entry" : " entries") +
             "; its next connection is scheduled afresh", false);
      }, function (error) { show(client + ": forget failed: " + error.message, true); })
      .then(function () {
        busy = false;
        return lookUp(client);
      });
  });
  function refresh() {
    if (busy || refreshing) {
      return Promise.resolve();
    }
    refreshing = true;
    return fetch(window.location.pathname, { cache: "no-store" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("console");
        if (fresh === null) {
          throw new Error("not a castellan status page");
        }
        if (!busy) {
          document.getElementById("console").replaceWith(document.adoptNode(fresh));
          stamp();
        }
      })
      .catch(function (error) {
        updated.textContent = "castellan not reachable (" + error.message + "), figures are stale";
        updated.className = "failed";
      })
      .finally(function () {
        refreshing = false;
      });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-state]");
    if (button === null || busy) {
      return;
    }
    var vs = button.getAttribute("data-vs");
    var rs = button.getAttribute("data-rs");
    var state = button.getAttribute("data-state");
    busy = true;
    button.disabled = true;
    show(vs + "/" + rs + ": asking for " + state + "...", false);
    changeState(vs, rs, state)
      .then(function (shown) { show(vs + "/" + rs + ": " + shown, false); },
            function (error) { show(vs + "/" + rs + ": " + state + " failed: " + error.message, true); })
      .then(function () {
        busy = false;
        return refresh();
      });
  });
  stamp();
  window.setInterval(refresh, 5000);
})();
)js";

constexpr const char* page_style = R"css(
body{font-family:sans-serif;margin:1.2em;color:#222;font-size:14px}
header{display:flex;align-items:baseline;gap:1.5em}h1{font-size:1.5em;margin:.2em 0}
h2{font-size:1.15em;margin:1.2em 0 .4em}small{color:#666;font-weight:normal}
table{border-collapse:collapse;margin-bottom:1em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:middle}th{background:#eee}
table.summary th{width:8em}.rate{text-align:right;white-space:nowrap}
.service-row{background:#f4f6f8}.service-row td{font-weight:bold}.graph{display:block}
.num,.rate{white-space:nowrap}.check{font-size:.85em;max-width:16em}
.up{background:#d8f5d8}.down{background:#f8d0d0}.draining,.partial{background:#fdf0c8}.disabled{background:#ddd}
.muted{color:#888}.errors{margin:.3em 0;padding-left:1.2em}
.actions{white-space:nowrap}.actions button{margin-right:.3em;font-size:.9em}
#message{min-height:1.2em;margin:.3em 0}.failed{color:#b00020}.done{color:#2f855a}
#persistence{margin:.3em 0 .8em}#persistence h2{margin-top:.4em}#persistence form{margin-bottom:.4em}
#persistence-forget{font-size:.9em}
)css";

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
    // Without scripts the page cannot act anyway; a <noscript> refresh keeps
    // its figures current there, and is ignored where the script runs.
    // The empty icon spares every browser a request for /favicon.ico (a 404).
    std::string page =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>\n"
        "<title>castellan status</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>";
    page += page_style;
    page += "</style></head><body>\n";
    page += fmt::format(
        "<header><h1>castellan {}</h1><span id=\"updated\"></span>"
        "<a href=\"/api/v1/status\">JSON</a><a href=\"/metrics\">metrics</a></header>\n"
        "<p id=\"message\" role=\"status\"></p>\n",
        text_of(field(status, "version")));
    // Outside #console, which the refresh replaces: a search result stays put.
    // Without the script the form still works, answering the API's JSON.
    page +=
        "<section id=\"persistence\"><h2>Persistence <small>which real server holds a client "
        "(source_ip tables)</small></h2>\n"
        "<form id=\"persistence-form\" action=\"/api/v1/persistence\" method=\"get\">"
        "<label>client address <input id=\"persistence-client\" name=\"client\" type=\"text\" size=\"30\" "
        "placeholder=\"192.0.2.7 or 2001:db8::7\" autocomplete=\"off\" spellcheck=\"false\"></label> "
        "<button type=\"submit\">look up</button></form>\n"
        "<div id=\"persistence-result\"></div></section>\n";

    const json& token_required = field(field(status, "admin"), "token_required");
    page += fmt::format("<main id=\"console\" data-token-required=\"{}\">\n",
                        !token_required.is_boolean() ? "unknown" : token_required.get<bool>() ? "true" : "false");
    page += summary_html(status);
    const json& services = array_field(status, "virtual_services");
    // One window label for every table: all rates share the step of the history.
    std::string window = "last minutes";
    for (const auto& service : services) {
        if (field(service, "rates").is_object()) {
            window = window_text(field(service, "rates"));
            break;
        }
    }
    for (const auto& service : services) page += service_html(service, window);
    page += "</main>\n<script>";
    page += page_script;
    page += "</script>\n</body></html>\n";
    return page;
}

}  // namespace castellan::proxy::admin
