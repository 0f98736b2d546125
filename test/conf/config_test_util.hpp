// Helpers shared by the conf/ tests: a minimal valid config to edit by JSON
// Pointer, and the errors of a parse as "<path>: <message>" lines.
#pragma once

#include "conf/config_parser.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace castellan::conf::test {

using Json = nlohmann::ordered_json;

inline constexpr const char* base_dir = "/etc/castellan";

// One service with two real servers: every other key left to its default.
inline Json minimal_config() {
    return Json::parse(R"({
        "virtual_services": [ {
            "name": "web",
            "listen": "127.0.0.1:8080",
            "real_servers": [
                { "name": "a", "address": "127.0.0.1:9001" },
                { "name": "b", "address": "127.0.0.1:9002" }
            ]
        } ]
    })");
}

// A value that, as an edit, removes the key instead of setting it.
inline Json removed() { return Json(Json::value_t::discarded); }

struct Edit {
    std::string pointer;
    Json value;
};

// minimal_config() with each edit applied in order (intermediate objects are
// created as needed).
inline Json edited(const std::vector<Edit>& edits) {
    Json document = minimal_config();
    for (const auto& edit : edits) {
        const Json::json_pointer pointer(edit.pointer);
        if (edit.value.is_discarded()) {
            document.at(pointer.parent_pointer()).erase(pointer.back());
        } else {
            document[pointer] = edit.value;
        }
    }
    return document;
}

inline std::vector<std::string> error_lines(const ParseResult& result) {
    std::vector<std::string> lines;
    for (const auto& error : result.errors) lines.push_back(error.to_string());
    return lines;
}

inline std::vector<std::string> errors_of(const std::string& text) {
    return error_lines(parse_config(text, base_dir));
}

inline std::vector<std::string> errors_of(const std::vector<Edit>& edits) { return errors_of(edited(edits).dump()); }

// Parses a config that must be valid.
inline Config valid(const std::vector<Edit>& edits) {
    auto result = parse_config(edited(edits).dump(), base_dir);
    INFO(edited(edits).dump(2));
    for (const auto& line : error_lines(result)) UNSCOPED_INFO(line);
    REQUIRE(result.errors.empty());
    REQUIRE(result.config);
    return *result.config;
}

}  // namespace castellan::conf::test
