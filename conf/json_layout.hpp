// A config document as text laid out the way the shipped examples are: one key per
// line, and small objects (a real server, a health check) on one line of their own.
// Pure string work; used by `castellan template` so that what it prints reads like
// conf/examples/ and stays the same from run to run (keys in insertion order).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

namespace castellan::conf {

// `document` as JSON text ending in a newline, indented by two spaces, one
// top-level member per line. Below that, an object or an array of plain values is
// written on one line when that line fits in `width` columns; an array that holds
// objects or arrays gets one element per line. Invalid UTF-8 in a string is
// replaced (U+FFFD), never thrown on.
std::string layout_json(const nlohmann::ordered_json& document, std::size_t width = 100);

}  // namespace castellan::conf
