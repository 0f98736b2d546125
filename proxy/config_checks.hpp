// What a start needs beyond a valid JSON document: the files the config names. Shared by `--check`, the start and
// every reload, so that a config that passes `--check` starts and reloads.
#pragma once

#include "conf/config.hpp"
#include "conf/config_parser.hpp"

#include <optional>
#include <string>
#include <vector>

namespace castellan::proxy {

// Errors (JSON path and message) for every file the config names that cannot be
// used: the admin token file (missing, unreadable or empty), TLS certificates and
// keys, CA files (loaded as a start would load them), the cookie secret file.
// Reads files; no network, no DNS. Any thread.
std::vector<conf::ConfigError> check_named_files(const conf::Config& config);

// What a start checks beyond the JSON: the named files, and that this process
// may make the transparent sockets a `transparent` service needs
// (transparent_source.hpp). `--check` asks the same, so that a config that
// passes it starts: run it with the capabilities castellan runs with, as the
// unit's ExecStartPre does. Every reload asks again.
std::vector<conf::ConfigError> check_before_start(const conf::Config& config);

// A secret file's content without surrounding whitespace (INTERFACE.md), or
// nullopt with `error` set when it is missing, unreadable or empty.
std::optional<std::string> read_secret_file(const std::string& file, std::string& error);

}  // namespace castellan::proxy
