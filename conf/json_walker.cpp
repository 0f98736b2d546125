#include "conf/json_walker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace castellan::conf::detail {

namespace {

// Optimal string alignment distance: insertions, deletions, substitutions and
// swaps of neighbours each cost one ("schedular" is one from "scheduler").
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.size()][b.size()];
}

// The position of one container being parsed, for the paths of its members.
struct Frame {
    std::string path;
    bool is_object = false;
    std::string key;         // object: the member being read
    std::size_t index = 0;   // array: the element being read
    std::set<std::string> keys;

    std::string child_path() const { return is_object ? pointer_join(path, key) : pointer_join(path, index); }
};

}  // namespace

std::string pointer_join(const std::string& base, std::string_view key) {
    std::string path = base;
    path.push_back('/');
    for (char c : key) {
        if (c == '~') {
            path += "~0";
        } else if (c == '/') {
            path += "~1";
        } else {
            path.push_back(c);
        }
    }
    return path;
}

std::string pointer_join(const std::string& base, std::size_t index) {
    return fmt::format("{}/{}", base, index);
}

std::string quote(std::string_view text) {
    constexpr std::size_t longest = 80;
    std::string shown(text.substr(0, longest));
    // A cut inside a UTF-8 sequence is rendered as U+FFFD by the replace handler.
    std::string literal = Json(shown).dump(-1, ' ', false, Json::error_handler_t::replace);
    if (text.size() > longest) literal.insert(literal.size() - 1, "...");
    return literal;
}

std::string describe(const Json& value) {
    switch (value.type()) {
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return quote(value.get_ref<const std::string&>());
    default: return value.dump(-1, ' ', false, Json::error_handler_t::replace);
    }
}

std::optional<Json> parse_json(std::string_view text, Errors& errors) {
    std::vector<Frame> stack;
    Errors duplicates;
    auto track = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
        switch (event) {
        case Json::parse_event_t::object_start:
        case Json::parse_event_t::array_start: {
            Frame frame;
            frame.path = stack.empty() ? std::string() : stack.back().child_path();
            frame.is_object = event == Json::parse_event_t::object_start;
            stack.push_back(std::move(frame));
            break;
        }
        case Json::parse_event_t::key: {
            Frame& frame = stack.back();
            frame.key = parsed.get<std::string>();
            if (!frame.keys.insert(frame.key).second) {
                duplicates.push_back({frame.child_path(), "key given twice in one object"});
            }
            break;
        }
        case Json::parse_event_t::value:
            if (!stack.empty() && !stack.back().is_object) ++stack.back().index;
            break;
        case Json::parse_event_t::object_end:
        case Json::parse_event_t::array_end:
            stack.pop_back();
            if (!stack.empty() && !stack.back().is_object) ++stack.back().index;
            break;
        }
        return true;
    };
    try {
        Json document = Json::parse(text.begin(), text.end(), track, /*allow_exceptions=*/true,
                                    /*ignore_comments=*/false);
        errors.insert(errors.end(), duplicates.begin(), duplicates.end());
        return document;
    } catch (const Json::exception& e) {
        // what() is "[json.exception.parse_error.101] parse error at line 3, column 5: ...";
        // the bracketed id means nothing to an operator.
        std::string_view message = e.what();
        if (!message.empty() && message.front() == '[') {
            const std::size_t close = message.find("] ");
            if (close != std::string_view::npos) message.remove_prefix(close + 2);
        }
        errors.push_back({"", std::string(message)});
        return std::nullopt;
    }
}

std::optional<std::int64_t> read_integer(const Json& value, const std::string& path, std::int64_t low,
                                         std::int64_t high, Errors& errors) {
    const std::string range = high == no_upper_limit ? fmt::format(">= {}", low)
                                                      : fmt::format("from {} to {}", low, high);
    if (!value.is_number_integer()) {
        errors.push_back({path, fmt::format("expected an integer {}, got {}", range, describe(value))});
        return std::nullopt;
    }
    bool in_range = false;
    std::int64_t number = 0;
    if (value.is_number_unsigned()) {
        const auto unsigned_number = value.get<std::uint64_t>();
        if (unsigned_number <= static_cast<std::uint64_t>(no_upper_limit)) {
            number = static_cast<std::int64_t>(unsigned_number);
            in_range = number >= low && number <= high;
        }
    } else {
        number = value.get<std::int64_t>();
        in_range = number >= low && number <= high;
    }
    if (!in_range) {
        errors.push_back({path, fmt::format("expected an integer {}, got {}", range, describe(value))});
        return std::nullopt;
    }
    return number;
}

std::optional<bool> read_bool(const Json& value, const std::string& path, Errors& errors) {
    if (!value.is_boolean()) {
        errors.push_back({path, fmt::format("expected true or false, got {}", describe(value))});
        return std::nullopt;
    }
    return value.get<bool>();
}

std::optional<std::string> read_string(const Json& value, const std::string& path, Errors& errors) {
    if (!value.is_string()) {
        errors.push_back({path, fmt::format("expected a string, got {}", describe(value))});
        return std::nullopt;
    }
    return value.get<std::string>();
}

ObjectReader::ObjectReader(const Json& value, std::string path, Errors& errors)
    : path_(std::move(path)), errors_(&errors) {
    if (value.is_object()) {
        object_ = &value;
    } else {
        errors.push_back({path_, fmt::format("expected an object, got {}", describe(value))});
    }
}

void ObjectReader::error(std::string_view key, std::string message) const {
    errors_->push_back({path_of(key), std::move(message)});
}

void ObjectReader::learn(std::string_view key) {
    if (std::find(vocabulary_.begin(), vocabulary_.end(), key) == vocabulary_.end()) {
        vocabulary_.emplace_back(key);
    }
}

bool ObjectReader::has(std::string_view key) {
    learn(key);
    return object_ && object_->contains(key);
}

const Json* ObjectReader::take(std::string_view key) {
    learn(key);
    if (!object_) return nullptr;
    const auto found = object_->find(key);
    if (found == object_->end()) return nullptr;
    if (std::find(taken_.begin(), taken_.end(), key) == taken_.end()) taken_.emplace_back(key);
    return &*found;
}

bool ObjectReader::require(std::string_view key) {
    learn(key);
    if (!object_) return false;
    if (object_->contains(key)) return true;
    error(key, "required key is missing");
    return false;
}

bool ObjectReader::reject(std::string_view key, std::string message) {
    if (!take(key)) return false;
    error(key, std::move(message));
    return true;
}

bool ObjectReader::boolean(std::string_view key, bool& out) {
    const Json* value = take(key);
    if (!value) return false;
    const auto flag = read_bool(*value, path_of(key), *errors_);
    if (!flag) return false;
    out = *flag;
    return true;
}

bool ObjectReader::string(std::string_view key, std::string& out) {
    const Json* value = take(key);
    if (!value) return false;
    auto text = read_string(*value, path_of(key), *errors_);
    if (!text) return false;
    out = std::move(*text);
    return true;
}

bool ObjectReader::string(std::string_view key, std::optional<std::string>& out) {
    std::string text;
    if (!string(key, text)) return false;
    out = std::move(text);
    return true;
}

void ObjectReader::finish() {
    if (!object_) return;
    for (const auto& [key, value] : object_->items()) {
        if (std::find(taken_.begin(), taken_.end(), key) != taken_.end()) continue;
        std::string message = "unknown key";
        const std::string* best = nullptr;
        std::size_t best_distance = 3;  // suggest only close spellings
        for (const auto& known : vocabulary_) {
            std::size_t distance = edit_distance(key, known);
            // A unit suffix left out, as "interval" for "interval_ms", is close too.
            if (key.size() >= 4 && known.size() > key.size() + 1 && known.compare(0, key.size(), key) == 0 &&
                known[key.size()] == '_') {
                distance = 2;
            }
            if (distance < best_distance && distance < known.size() / 2 + 1) {
                best = &known;
                best_distance = distance;
            }
        }
        if (best) message += fmt::format(" (did you mean {}?)", quote(*best));
        error(key, std::move(message));
    }
}

}  // namespace castellan::conf::detail
