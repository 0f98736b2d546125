#include "conf/json_layout.hpp"

namespace castellan::conf {

namespace {

using Json = nlohmann::ordered_json;

std::string scalar_text(const Json& value) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool holds_containers(const Json& array) {
    for (const auto& element : array) {
        if (element.is_structured()) return true;
    }
    return false;
}

// The one-line form: `{ "a": 1, "b": [1, 2] }`, `{}`, `[]`.
std::string one_line(const Json& value) {
    if (value.is_object()) {
        if (value.empty()) return "{}";
        std::string text = "{ ";
        bool first = true;
        for (const auto& [key, member] : value.items()) {
            if (!first) text += ", ";
            first = false;
            text += scalar_text(Json(key)) + ": " + one_line(member);
        }
        return text + " }";
    }
    if (value.is_array()) {
        std::string text = "[";
        bool first = true;
        for (const auto& element : value) {
            if (!first) text += ", ";
            first = false;
            text += one_line(element);
        }
        return text + "]";
    }
    return scalar_text(value);
}

// Whether `value` may be written on one line at all (width aside).
bool may_be_one_line(const Json& value) {
    if (!value.is_structured()) return true;
    if (value.is_array()) return !holds_containers(value);
    for (const auto& member : value) {
        if (!may_be_one_line(member)) return false;
    }
    return true;
}

// Appends `value`, whose first character lands at column `column` on a line that
// starts with `indent` spaces. `spread`: one member per line even if it would fit
// (the document itself, so that its top-level keys stand out).
void write(const Json& value, std::size_t indent, std::size_t column, std::size_t width, std::string& out,
           bool spread = false) {
    if (may_be_one_line(value) && !(spread && !value.empty())) {
        std::string line = one_line(value);
        // The comma that may follow counts against the width too.
        if (!value.is_structured() || column + line.size() + 1 <= width) {
            out += line;
            return;
        }
    }
    const std::string inner(indent + 2, ' ');
    const bool object = value.is_object();
    out += object ? "{\n" : "[\n";
    std::size_t left = value.size();
    for (const auto& [key, member] : value.items()) {
        out += inner;
        std::size_t at = inner.size();
        if (object) {
            const std::string name = scalar_text(Json(key)) + ": ";
            out += name;
            at += name.size();
        }
        write(member, indent + 2, at, width, out);
        out += --left > 0 ? ",\n" : "\n";
    }
    out += std::string(indent, ' ') + (object ? "}" : "]");
}

}  // namespace

std::string layout_json(const nlohmann::ordered_json& document, std::size_t width) {
    std::string out;
    write(document, 0, 0, width, out, true);
    return out + "\n";
}

}  // namespace castellan::conf
