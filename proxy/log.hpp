// One line per event on stderr, `key=value` pairs after a UTC timestamp.
//
// Workers never block on logging: a finished line is handed to a bounded queue
// that one writer thread drains with one write(2) per line. If stderr is slow and
// the queue is full, the line is dropped and counted (and the count is logged
// once the writer catches up), never queued without bound.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace castellan::proxy::log {

enum class Level { info, warn, error };

// Builds one line; it is emitted when the builder goes out of scope.
//   log::Line(log::Level::info, "listen").kv("vs", name).kv("address", addr);
class Line {
public:
    Line(Level level, std::string_view event);
    ~Line();
    Line(const Line&) = delete;
    Line& operator=(const Line&) = delete;

    Line& kv(std::string_view key, std::string_view value);
    Line& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
    Line& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
    Line& kv(std::string_view key, std::int64_t value);
    Line& kv(std::string_view key, std::uint64_t value);
    Line& kv(std::string_view key, int value) { return kv(key, static_cast<std::int64_t>(value)); }
    Line& kv(std::string_view key, unsigned value) { return kv(key, static_cast<std::uint64_t>(value)); }

private:
    std::string text_;
};

// Starts the writer thread. Before start() (and after stop()) lines are written
// directly, which is what a short-lived `--check` run wants.
void start_writer();
// Writes what is queued, then joins the writer thread.
void stop_writer();

// `value` as it appears in a line: bare if it is a plain token, else in double
// quotes with `"` and `\` escaped and control characters as \xHH.
std::string format_value(std::string_view value);

}  // namespace castellan::proxy::log
