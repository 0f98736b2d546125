#include "proxy/admin/metrics_text.hpp"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

using castellan::proxy::admin::metrics_text;

namespace {

const char* const status_document = R"({
  "version": "0.1.0",
  "config": {"generation": 3, "file": "/etc/castellan/castellan.json", "last_reload": null},
  "virtual_services": [
    {"name": "cas-rpc", "listen": "0.0.0.0:135", "mode": "tcp", "connections_active": 2,
     "connections_total": 10, "bytes_in": 2048, "bytes_out": 5,
     "real_servers": [
       {"name": "cas1", "address": "192.168.0.34:135", "state": "up", "weight": 1, "connections_active": 2,
        "connections_total": 9, "connect_failures": 0, "bytes_in": 1, "bytes_out": 2,
        "health": {"ok": true, "at": "2026-11-22T10:00:01Z", "latency_ms": 3, "detail": "connected"}},
       {"name": "cas2", "address": "192.168.0.35:135", "state": "draining", "weight": 1, "connections_active": 0,
        "connections_total": 1, "connect_failures": 4, "local_connect_failures": 7, "bytes_in": 0, "bytes_out": 0,
        "health": null}]}]})";

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream lines(text);
    for (std::string each; std::getline(lines, each);) {
        if (each == line) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("metrics: every counter of the status document, labelled by names", "[proxy]") {
    const std::string text = metrics_text(nlohmann::json::parse(status_document));
    CHECK(has_line(text, R"(castellan_build_info{version="0.1.0"} 1)"));
    CHECK(has_line(text, "castellan_config_generation 3"));
    CHECK(has_line(text, R"(castellan_virtual_service_connections_active{virtual_service="cas-rpc"} 2)"));
    CHECK(has_line(text, R"(castellan_virtual_service_connections_total{virtual_service="cas-rpc"} 10)"));
    CHECK(has_line(text, R"(castellan_virtual_service_bytes_in_total{virtual_service="cas-rpc"} 2048)"));
    CHECK(has_line(text, R"(castellan_real_server_connect_failures_total{virtual_service="cas-rpc",real_server="cas2"} 4)"));
    CHECK(has_line(text, R"(castellan_real_server_bytes_out_total{virtual_service="cas-rpc",real_server="cas1"} 2)"));
    // castellan's own failures (no local port...), apart from the server's.
    CHECK(has_line(text, "# TYPE castellan_real_server_local_connect_failures_total counter"));
    CHECK(has_line(text, R"(castellan_real_server_local_connect_failures_total{virtual_service="cas-rpc",real_server="cas2"} 7)"));
    CHECK(has_line(text, R"(castellan_real_server_local_connect_failures_total{virtual_service="cas-rpc",real_server="cas1"} 0)"));
    CHECK(has_line(text, "# TYPE castellan_real_server_connections_total counter"));
    CHECK(has_line(text, "# TYPE castellan_real_server_connections_active gauge"));
}

TEST_CASE("metrics: one state sample per state, 1 for the current one", "[proxy]") {
    const std::string text = metrics_text(nlohmann::json::parse(status_document));
    CHECK(has_line(text, R"(castellan_real_server_state{virtual_service="cas-rpc",real_server="cas1",state="up"} 1)"));
    CHECK(has_line(text, R"(castellan_real_server_state{virtual_service="cas-rpc",real_server="cas1",state="down"} 0)"));
    CHECK(has_line(text, R"(castellan_real_server_state{virtual_service="cas-rpc",real_server="cas2",state="draining"} 1)"));
    CHECK(has_line(text, R"(castellan_real_server_state{virtual_service="cas-rpc",real_server="cas2",state="up"} 0)"));
}

TEST_CASE("metrics: check results only for servers checked at least once", "[proxy]") {
    const std::string text = metrics_text(nlohmann::json::parse(status_document));
    CHECK(has_line(text, R"(castellan_real_server_check_ok{virtual_service="cas-rpc",real_server="cas1"} 1)"));
    CHECK(has_line(text, R"(castellan_real_server_check_latency_milliseconds{virtual_service="cas-rpc",real_server="cas1"} 3)"));
    CHECK(text.find(R"(castellan_real_server_check_ok{virtual_service="cas-rpc",real_server="cas2"})") == std::string::npos);
}

TEST_CASE("metrics: label values are escaped", "[proxy]") {
    auto status = nlohmann::json::parse(status_document);
    status["version"] = "0.1.0 \"test\"\\build";
    const std::string text = metrics_text(status);
    CHECK(has_line(text, R"(castellan_build_info{version="0.1.0 \"test\"\\build"} 1)"));
}
