#include "proxy/admin/status_page.hpp"

#include <catch2/catch.hpp>

using castellan::proxy::admin::html_escape;
using castellan::proxy::admin::status_page_html;

namespace {

bool has(const std::string& page, const std::string& text) { return page.find(text) != std::string::npos; }

std::size_t count(const std::string& page, const std::string& text) {
    std::size_t n = 0;
    for (auto at = page.find(text); at != std::string::npos; at = page.find(text, at + text.size())) ++n;
    return n;
}

// The shape of status_json() of the reload build (INTERFACE.md), one service
// with two servers; `rates` of cas1 given by the test.
nlohmann::json document(const nlohmann::json& cas1_rates = nullptr) {
    auto status = nlohmann::json::parse(R"({
      "version": "0.1.0",
      "started_at": "2026-11-22T08:00:00Z",
      "uptime_s": 93784,
      "admin": {"token_required": true},
      "config": {"generation": 7, "file": "/etc/castellan/castellan.json", "last_reload": null},
      "virtual_services": [
        {"name": "cas-rpc", "listen": "0.0.0.0:135", "mode": "tcp", "connections_active": 2,
         "connections_total": 10, "bytes_in": 2048, "bytes_out": 5,
         "rates": {"step_s": 5, "connections_per_s": [], "bytes_in_per_s": [], "bytes_out_per_s": []},
         "real_servers": [
           {"name": "cas1", "address": "192.168.0.34:135", "state": "up", "weight": 1, "connections_active": 2,
            "connections_total": 9, "connect_failures": 0, "bytes_in": 1, "bytes_out": 2,
            "health": {"ok": true, "at": "2026-11-22T10:00:01Z", "latency_ms": 3, "detail": "connected"}},
           {"name": "cas<2>", "address": "192.168.0.35:135", "state": "down", "weight": 1, "connections_active": 0,
            "connections_total": 1, "connect_failures": 4, "local_connect_failures": 7, "bytes_in": 0, "bytes_out": 0,
            "health": null,
            "detail": "down in cas-rpc-mailbox"}]}]})");
    if (!cas1_rates.is_null()) status["virtual_services"][0]["real_servers"][0]["rates"] = cas1_rates;
    return status;
}

}  // namespace

TEST_CASE("status page: every service and server with its state, escaped", "[proxy][status_page]") {
    const std::string page = status_page_html(document());
    CHECK(has(page, "cas-rpc"));
    CHECK(has(page, "<td class=\"state up\">up</td>"));
    CHECK(has(page, "<td class=\"state down\">down</td>"));
    CHECK(has(page, "cas&lt;2&gt;"));
    CHECK_FALSE(has(page, "cas<2>"));
    CHECK(has(page, "down in cas-rpc-mailbox"));
    CHECK(has(page, "passed connected (3 ms)<br>at 2026-11-22T10:00:01Z"));
    CHECK(has(page, "no check yet"));
    CHECK(has(page, "2.0 KiB"));
    CHECK(has(page, "1 of 2 up"));
}

TEST_CASE("status page: castellan's own connect failures beside the server's", "[proxy][status_page]") {
    const std::string page = status_page_html(document());
    CHECK(has(page, "<td>4 <span class=\"local\""));
    CHECK(has(page, "+ 7 here</span></td>"));
    // None for cas1: its cell is the bare count.
    CHECK(has(page, "<td>0</td>"));
}

TEST_CASE("status page: uptime, start, config file and generation", "[proxy][status_page]") {
    const std::string page = status_page_html(document());
    CHECK(has(page, "<td id=\"uptime\">1 d 2 h 3 min</td>"));  // 93784 s
    CHECK(has(page, "2026-11-22T08:00:00Z"));
    CHECK(has(page, "/etc/castellan/castellan.json"));
    CHECK(has(page, "<td id=\"generation\">7</td>"));
    CHECK(has(page, "none since the start"));
    CHECK(has(page, "data-token-required=\"true\""));
    CHECK(has(page, "state changes need the bearer token"));

    auto status = document();
    status["uptime_s"] = 65;
    status["admin"]["token_required"] = false;
    const std::string other = status_page_html(status);
    CHECK(has(other, "<td id=\"uptime\">1 min 5 s</td>"));
    CHECK(has(other, "data-token-required=\"false\""));
}

TEST_CASE("status page: the script refreshes it, no meta refresh interrupts a click", "[proxy][status_page]") {
    const std::string page = status_page_html(document());
    CHECK(has(page, "setInterval(refresh, 5000)"));
    // The only meta refresh is for browsers without scripts, where there are no clicks.
    CHECK(count(page, "http-equiv=\"refresh\"") == 1);
    CHECK(has(page, "<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>"));
    // Self-contained: nothing loaded from elsewhere (the icon is an empty data: URL).
    CHECK_FALSE(has(page, "src="));
    CHECK(count(page, "<link") == 1);
    CHECK(has(page, "<link rel=\"icon\" href=\"data:,\">"));
    CHECK_FALSE(has(page, "https://"));
    CHECK(count(page, "http://") == count(page, "xmlns=\"http://www.w3.org/2000/svg\""));
}

TEST_CASE("status page: the persistence search box sits outside what the refresh replaces", "[proxy][status_page]") {
    const std::string page = status_page_html(document());
    const auto box = page.find("<form id=\"persistence-form\" action=\"/api/v1/persistence\" method=\"get\">");
    const auto input = page.find("<input id=\"persistence-client\" name=\"client\"");
    const auto result = page.find("<div id=\"persistence-result\"></div>");
    const auto console = page.find("<main id=\"console\"");
    REQUIRE(box != std::string::npos);
    REQUIRE(input != std::string::npos);
    REQUIRE(result != std::string::npos);
    REQUIRE(console != std::string::npos);
    CHECK(box < console);
    CHECK(result < console);
    // The script looks up with GET and forgets with DELETE, through the token logic.
    CHECK(has(page, "\"/api/v1/persistence?client=\" + encodeURIComponent(client)"));
    CHECK(has(page, "authorized(\"DELETE\", persistenceUrl(client), null)"));
    CHECK(has(page, "authorized(\"POST\", url, { state: state })"));
}

TEST_CASE("status page: a failed reload shows its time and escaped errors", "[proxy][status_page]") {
    auto status = document();
    status["config"]["last_reload"] = {
        {"ok", false},
        {"at", "2026-11-22T10:05:00Z"},
        {"errors", {"/virtual_services/0/bogus: unknown key", "/x: <script>alert('x')</script>"}}};
    const std::string page = status_page_html(status);
    CHECK(has(page, "<td colspan=\"3\" id=\"last-reload\" class=\"down\">failed at 2026-11-22T10:05:00Z"));
    CHECK(has(page, "<li>/virtual_services/0/bogus: unknown key</li>"));
    CHECK(has(page, "<li>/x: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</li>"));
    CHECK_FALSE(has(page, "<script>alert"));
    CHECK(count(page, "<script>") == 1);  // the page's own

    status["config"]["last_reload"] = {{"ok", true}, {"at", "2026-11-22T10:06:00Z"}, {"errors", nlohmann::json::array()}};
    const std::string applied = status_page_html(status);
    CHECK(has(applied, "class=\"up\">applied at 2026-11-22T10:06:00Z"));
    CHECK_FALSE(has(applied, "<ul class=\"errors\">"));
}

TEST_CASE("status page: current rates and an SVG graph drawn from the series", "[proxy][status_page]") {
    const std::string page = status_page_html(document(
        {{"step_s", 5}, {"connections_per_s", {0, 1, 2}}, {"bytes_in_per_s", {0, 0, 1536}}, {"bytes_out_per_s", {0, 0, 0}}}));
    // The current rates are the last values, in human units.
    CHECK(has(page, "<td class=\"rate connections-rate\">2.00/s</td>"));
    CHECK(has(page, "<td class=\"rate bytes-in-rate\">1.5 KiB/s</td>"));
    CHECK(has(page, "<td class=\"rate bytes-out-rate\">0 B/s</td>"));
    // 120 points span 160 px; the newest at the right edge; the peak (2) at the
    // top (y 2), 0 at the bottom (y 38), 1 half-way.
    CHECK(has(page, "points=\"157.3,38.0 158.7,20.0 160.0,2.0\""));
    // Bytes in and out on one scale: in peaks at the top, out stays at 0.
    CHECK(has(page, "points=\"157.3,38.0 158.7,38.0 160.0,2.0\""));
    CHECK(has(page, "points=\"157.3,38.0 158.7,38.0 160.0,38.0\""));
    // Under the line a light area down to the bottom edge; a dot on the newest value.
    CHECK(has(page, "<polygon fill=\"#2b6cb0\" fill-opacity=\"0.15\" stroke=\"none\" "
                    "points=\"157.3,38.0 158.7,20.0 160.0,2.0 160.0,40.0 157.3,40.0\"/>"));
    CHECK(has(page, "<circle cx=\"160.0\" cy=\"2.0\" r=\"2\" fill=\"#2b6cb0\"/>"));
    CHECK(has(page, "<title>connections/s, last 10 min, peak 2.00/s</title>"));
    CHECK(has(page, "connections/s, last 10 min</th>"));
    // The service's series are still empty: its cells say so.
    CHECK(has(page, "<td class=\"rate connections-rate\">&ndash;</td>"));
    CHECK(has(page, "collecting"));
    CHECK(count(page, "<svg") == 2);  // cas1's two graphs
}

TEST_CASE("status page: a long series shows its last 120 points, one point a short line", "[proxy][status_page]") {
    std::vector<double> long_series(130, 1.0);
    long_series[0] = 1000;  // beyond the window: must not set the scale
    auto page = status_page_html(document({{"step_s", 5},
                                           {"connections_per_s", long_series},
                                           {"bytes_in_per_s", {7}},
                                           {"bytes_out_per_s", {7}}}));
    CHECK(has(page, "points=\"0.0,2.0 1.3,2.0 2.7,2.0"));  // 120 points from x 0, all at the peak 1
    CHECK(has(page, "peak 1.00/s"));
    CHECK(has(page, "points=\"158.7,2.0 160.0,2.0\""));
}

TEST_CASE("status page: drain, disable and enable buttons carry escaped names", "[proxy][status_page]") {
    const std::string page = status_page_html(document());
    CHECK(has(page,
              "<button type=\"button\" class=\"state-drain\" data-vs=\"cas-rpc\" data-rs=\"cas1\" "
              "data-state=\"drain\">drain</button>"));
    CHECK(has(page, "data-rs=\"cas1\" data-state=\"disabled\">disable</button>"));
    // cas1 is enabled (shown up): its enable button is the current state.
    CHECK(has(page, "data-rs=\"cas1\" data-state=\"enabled\" disabled>enable</button>"));
    CHECK(has(page, "data-vs=\"cas-rpc\" data-rs=\"cas&lt;2&gt;\" data-state=\"drain\">drain</button>"));
    // The script builds the URL from the attributes, encoded.
    CHECK(has(page, "encodeURIComponent(vs)"));
    CHECK(has(page, "encodeURIComponent(rs)"));

    auto status = document();
    status["virtual_services"][0]["real_servers"][0]["state"] = "draining";
    status["virtual_services"][0]["real_servers"][1]["state"] = "disabled";
    status["virtual_services"][0]["real_servers"][1]["name"] = "x\"onclick=\"alert(1)</script>";
    const std::string other = status_page_html(status);
    CHECK(has(other, "data-rs=\"cas1\" data-state=\"drain\" disabled>drain</button>"));
    CHECK(has(other, "data-state=\"disabled\" disabled>disable</button>"));
    CHECK(has(other, "data-rs=\"x&quot;onclick=&quot;alert(1)&lt;/script&gt;\""));
    CHECK_FALSE(has(other, "\"onclick="));
    CHECK(count(other, "</script>") == 1);
    CHECK(has(other, "0 of 2 up"));
}

TEST_CASE("status page: an older or partial document still renders", "[proxy][status_page]") {
    // The shape of the build before reload: no uptime, rates or admin.
    auto old = document();
    old.erase("uptime_s");
    old.erase("started_at");
    old.erase("admin");
    old["virtual_services"][0].erase("rates");
    const std::string page = status_page_html(old);
    CHECK(has(page, "<td id=\"uptime\">&ndash;</td>"));
    CHECK(has(page, "data-token-required=\"unknown\""));
    CHECK(has(page, "<td id=\"generation\">7</td>"));
    CHECK(has(page, "data-rs=\"cas1\" data-state=\"drain\">drain</button>"));
    CHECK(has(page, "last minutes"));
    CHECK(count(page, "<svg") == 0);

    for (const char* text : {"{}", "null", "[]", "\"x\"", R"({"config": 3, "virtual_services": {"a": 1}})",
                             R"({"config": {"last_reload": {"ok": "yes", "errors": "x"}}, "uptime_s": -5,
                                 "virtual_services": [3, {"real_servers": [null, {"name": 4, "rates": [1]}],
                                 "rates": {"step_s": "5", "connections_per_s": ["a", null, -3]}}]})"}) {
        INFO(text);
        std::string rendered;
        CHECK_NOTHROW(rendered = status_page_html(nlohmann::json::parse(text)));
        CHECK(has(rendered, "</html>"));
    }
}

TEST_CASE("html escape", "[proxy][status_page]") {
    CHECK(html_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
    CHECK(html_escape("cas-rpc/cas1") == "cas-rpc/cas1");
}
