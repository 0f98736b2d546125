#include "proxy/admin/status_page.hpp"

#include <catch2/catch.hpp>

using castellan::proxy::admin::html_escape;
using castellan::proxy::admin::status_page_html;

TEST_CASE("status page: every service and server with its state, escaped", "[proxy]") {
    auto status = nlohmann::json::parse(R"({
      "version": "0.1.0",
      "config": {"generation": 1, "file": "/etc/castellan/castellan.json", "last_reload": null},
      "virtual_services": [
        {"name": "cas-rpc", "listen": "0.0.0.0:135", "mode": "tcp", "connections_active": 2,
         "connections_total": 10, "bytes_in": 2048, "bytes_out": 5,
         "real_servers": [
           {"name": "cas1", "address": "192.168.0.34:135", "state": "up", "weight": 1, "connections_active": 2,
            "connections_total": 9, "connect_failures": 0, "bytes_in": 1, "bytes_out": 2,
            "health": {"ok": true, "at": "2026-11-22T10:00:01Z", "latency_ms": 3, "detail": "connected"}},
           {"name": "cas<2>", "address": "192.168.0.35:135", "state": "down", "weight": 1, "connections_active": 0,
            "connections_total": 1, "connect_failures": 4, "bytes_in": 0, "bytes_out": 0, "health": null,
            "detail": "down in cas-rpc-mailbox"}]}]})");
    const std::string page = status_page_html(status);
    CHECK(page.find("http-equiv=\"refresh\"") != std::string::npos);
    CHECK(page.find("cas-rpc") != std::string::npos);
    CHECK(page.find("<td class=\"up\">up</td>") != std::string::npos);
    CHECK(page.find("<td class=\"down\">down</td>") != std::string::npos);
    CHECK(page.find("cas&lt;2&gt;") != std::string::npos);
    CHECK(page.find("cas<2>") == std::string::npos);
    CHECK(page.find("down in cas-rpc-mailbox") != std::string::npos);
    CHECK(page.find("2.0 KiB") != std::string::npos);
}

TEST_CASE("html escape", "[proxy]") {
    CHECK(html_escape("a<b>&\"'") == "a&lt;b&gt;&amp;&quot;&#39;");
}
