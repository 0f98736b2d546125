// Typed reading of a JSON document with a JSON Pointer attached to every error.
//
// The schema code in config_parser.cpp asks an ObjectReader for each key it knows;
// whatever it never asked for is reported as an unknown key at the end. Every
// reader reports what it expected and what it got, keeps the caller's default
// when the key is absent, and never throws: the parser collects all errors.
// Internal to conf/ (namespace detail); the rest of castellan uses parse_config.
#pragma once

#include "conf/config_parser.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace castellan::conf::detail {

// Insertion-ordered, so that errors come in the order of the file.
using Json = nlohmann::ordered_json;
using Errors = std::vector<ConfigError>;

inline constexpr std::int64_t no_upper_limit = std::numeric_limits<std::int64_t>::max();

// `base` + `/token`, with `~` and `/` escaped as RFC 6901 says.
std::string pointer_join(const std::string& base, std::string_view key);
std::string pointer_join(const std::string& base, std::size_t index);

// A JSON string literal of `text`, shortened with "..." when long; for messages.
std::string quote(std::string_view text);
// A short rendering of a value for the "got ..." part of a message:
// `5`, `2.5`, `true`, `"text"`, `an object`, `an array`.
std::string describe(const Json& value);

// Parses `text` as strict JSON (no comments). A syntax error becomes one error
// with an empty path and the result is nullopt. A key given twice in one object
// is reported at its path; the document is still returned so that the rest of it
// can be checked.
std::optional<Json> parse_json(std::string_view text, Errors& errors);

// Readers of one value at `path`. Each reports a wrong type or an out-of-range
// value to `errors` and returns nullopt for it.
std::optional<std::int64_t> read_integer(const Json& value, const std::string& path, std::int64_t low,
                                         std::int64_t high, Errors& errors);
std::optional<bool> read_bool(const Json& value, const std::string& path, Errors& errors);
std::optional<std::string> read_string(const Json& value, const std::string& path, Errors& errors);

// Reads the members of one JSON object. Construct it on any value: a value that
// is not an object is reported once and ok() is false (every take then answers
// "absent"). Call finish() once all known keys were read.
class ObjectReader {
public:
    ObjectReader(const Json& value, std::string path, Errors& errors);

    bool ok() const { return object_ != nullptr; }
    const std::string& path() const { return path_; }
    std::string path_of(std::string_view key) const { return pointer_join(path_, key); }
    Errors& errors() const { return *errors_; }
    void error(std::string_view key, std::string message) const;

    // Whether `key` is present; does not mark it as read.
    bool has(std::string_view key);
    // Marks `key` as read and returns its value, or nullptr when absent.
    const Json* take(std::string_view key);
    // Reports "required key is missing" when `key` is absent; returns presence.
    bool require(std::string_view key);
    // Marks `key` as read and, when present, reports `message` at its path (a
    // known key that does not belong with the rest). Returns presence.
    bool reject(std::string_view key, std::string message);

    // Typed members: when present and valid, `out` is set and the answer is true;
    // when absent or invalid, `out` keeps its value (the default).
    template <class T>
    bool integer(std::string_view key, T& out, std::int64_t low, std::int64_t high);
    template <class T>
    bool integer(std::string_view key, std::optional<T>& out, std::int64_t low, std::int64_t high);
    bool boolean(std::string_view key, bool& out);
    bool string(std::string_view key, std::string& out);
    bool string(std::string_view key, std::optional<std::string>& out);
    // One of `values`, spelled as conf::to_string spells them.
    template <class E, std::size_t N>
    bool enumeration(std::string_view key, E& out, const std::array<E, N>& values);

    // Reports every member that was never taken as an unknown key, with a
    // suggestion when a known key is spelled closely.
    void finish();

private:
    void learn(std::string_view key);

    const Json* object_ = nullptr;
    std::string path_;
    Errors* errors_;
    std::vector<std::string> vocabulary_;  // every key asked about
    std::vector<std::string> taken_;       // keys read (known here)
};

template <class T>
bool ObjectReader::integer(std::string_view key, T& out, std::int64_t low, std::int64_t high) {
    const Json* value = take(key);
    if (!value) return false;
    const auto number = read_integer(*value, path_of(key), low, high, *errors_);
    if (!number) return false;
    out = static_cast<T>(*number);
    return true;
}

template <class T>
bool ObjectReader::integer(std::string_view key, std::optional<T>& out, std::int64_t low, std::int64_t high) {
    T number{};
    if (!integer(key, number, low, high)) return false;
    out = number;
    return true;
}

template <class E, std::size_t N>
bool ObjectReader::enumeration(std::string_view key, E& out, const std::array<E, N>& values) {
    const Json* value = take(key);
    if (!value) return false;
    if (value->is_string()) {
        const auto& text = value->template get_ref<const std::string&>();
        for (E candidate : values) {
            if (text == to_string(candidate)) {
                out = candidate;
                return true;
            }
        }
    }
    std::string expected = "expected one of ";
    for (std::size_t i = 0; i < N; ++i) {
        if (i) expected += ", ";
        expected += quote(to_string(values[i]));
    }
    error(key, expected + ", got " + describe(*value));
    return false;
}

}  // namespace castellan::conf::detail
