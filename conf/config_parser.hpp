// JSON text -> validated conf::Config, or the list of everything wrong with it.
//
// Every error names the JSON Pointer of the value at fault and what was expected,
// e.g. `/virtual_services/2/real_servers/0/address: expected HOST:PORT, got "cas1"`.
// Parsing never throws and never stops at the first error: an operator fixing a
// file wants the whole list at once.
#pragma once

#include "conf/config.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace castellan::conf {

struct ConfigError {
    std::string path;     // JSON Pointer, "" for the document itself
    std::string message;  // what was expected / what is wrong
    std::string to_string() const;  // "<path>: <message>"
};

struct ParseResult {
    std::optional<Config> config;     // set exactly when errors is empty
    std::vector<ConfigError> errors;
};

// Parses and validates `json_text`. Relative paths in it (certificates, keys,
// token and secret files, CA files) are made absolute against `base_dir`.
// Hostnames in real-server addresses are checked for syntax only.
ParseResult parse_config(std::string_view json_text, const std::string& base_dir);

// Reads `file` and parses it with its own folder as base_dir. A missing or
// unreadable file is one error with an empty path.
ParseResult load_config_file(const std::string& file);

}  // namespace castellan::conf
