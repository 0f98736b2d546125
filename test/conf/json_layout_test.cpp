// layout_json: the same document back when parsed, laid out like conf/examples/
// (small objects on one line, arrays of objects one element per line), within the
// width wherever a value allows it.
#include "conf/json_layout.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using castellan::conf::layout_json;
using Json = nlohmann::ordered_json;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

TEST_CASE("json layout: small objects on one line, lists of objects one per line", "[conf]") {
    const Json document = Json::parse(R"({
        "threads": 0,
        "admin": {"listen": "127.0.0.1:9090", "token_file": "admin.token"},
        "virtual_services": [{
            "name": "cas-smtp",
            "real_servers": [{"name": "cas1", "address": "192.168.0.34:25"}, {"name": "cas2", "address": "192.168.0.35:25"}],
            "health_check": {"type": "https", "path": "/owa/auth/logon.aspx", "expect_status": [200], "interval_ms": 5000, "timeout_ms": 3000},
            "empty": {}, "none": []
        }]
    })");
    const std::string text = layout_json(document);
    CHECK(text ==
          "{\n"
          "  \"threads\": 0,\n"
          "  \"admin\": { \"listen\": \"127.0.0.1:9090\", \"token_file\": \"admin.token\" },\n"
          "  \"virtual_services\": [\n"
          "    {\n"
          "      \"name\": \"cas-smtp\",\n"
          "      \"real_servers\": [\n"
          "        { \"name\": \"cas1\", \"address\": \"192.168.0.34:25\" },\n"
          "        { \"name\": \"cas2\", \"address\": \"192.168.0.35:25\" }\n"
          "      ],\n"
          "      \"health_check\": {\n"
          "        \"type\": \"https\",\n"
          "        \"path\": \"/owa/auth/logon.aspx\",\n"
          "        \"expect_status\": [200],\n"
          "        \"interval_ms\": 5000,\n"
          "        \"timeout_ms\": 3000\n"
          "      },\n"
          "      \"empty\": {},\n"
          "      \"none\": []\n"
          "    }\n"
          "  ]\n"
          "}\n");
    CHECK(Json::parse(text) == document);
    for (const auto& line : lines_of(text)) CHECK(line.size() <= 100);
}

TEST_CASE("json layout: a narrower width breaks more, strings are escaped, bad UTF-8 replaced", "[conf]") {
    const Json document = {{"a", {{"quote", "say \"hi\"\n"}, {"n", 1}}}, {"b", std::string("\xff" "x")}};
    const std::string wide = layout_json(document);
    CHECK(wide == "{\n  \"a\": { \"quote\": \"say \\\"hi\\\"\\n\", \"n\": 1 },\n  \"b\": \"\xef\xbf\xbdx\"\n}\n");
    const std::string narrow = layout_json(document, 20);
    CHECK(lines_of(narrow).size() == 7);
    CHECK(Json::parse(narrow) == Json::parse(wide));
    CHECK(layout_json(Json::object()) == "{}\n");
}
