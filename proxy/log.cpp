#include "proxy/log.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

namespace castellan::proxy::log {
namespace {

// Enough for bursts of connection logs; beyond it stderr is not keeping up.
constexpr std::size_t max_queued_lines = 16384;

void write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // nowhere left to report a logging failure
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
}

class Sink {
public:
    void push(std::string line) {
        {
            std::lock_guard lock(mutex_);
            if (running_) {
                if (queue_.size() >= max_queued_lines) {
                    ++dropped_;
                    return;
                }
                queue_.push_back(std::move(line));
                wake_.notify_one();
                return;
            }
        }
        write_all(STDERR_FILENO, line);
    }

    void start() {
        std::lock_guard lock(mutex_);
        if (running_) return;
        running_ = true;
        stopping_ = false;
        thread_ = std::thread([this] { drain(); });
    }

    void stop() {
        {
            std::lock_guard lock(mutex_);
            if (!running_) return;
            stopping_ = true;
            wake_.notify_one();
        }
        thread_.join();
        std::lock_guard lock(mutex_);
        running_ = false;
    }

private:
    void drain() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty() && stopping_) return;
            std::deque<std::string> batch;
            batch.swap(queue_);
            std::uint64_t dropped = dropped_;
            dropped_ = 0;
            lock.unlock();
            if (dropped != 0) {
                Line(Level::warn, "log_dropped").kv("lines", dropped);
            }
            for (const auto& line : batch) write_all(STDERR_FILENO, line);
            lock.lock();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::string> queue_;
    std::uint64_t dropped_ = 0;
    bool running_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

Sink& sink() {
    static Sink instance;
    return instance;
}

const char* level_name(Level level) {
    switch (level) {
        case Level::info: return "info";
        case Level::warn: return "warn";
        case Level::error: return "error";
    }
    return "info";
}

bool is_plain(std::string_view value) {
    if (value.empty()) return false;
    for (unsigned char c : value) {
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=') return false;
    }
    return true;
}

}  // namespace

std::string format_value(std::string_view value) {
    if (is_plain(value)) return std::string(value);
    std::string out = "\"";
    for (unsigned char c : value) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < ' ' || c == 0x7f) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
    return out;
}

Line::Line(Level level, std::string_view event) {
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t seconds = system_clock::to_time_t(now);
    auto millis = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    text_.reserve(160);
    text_ = fmt::format("ts={:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z level={} event={}",
                        utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min,
                        utc.tm_sec, millis, level_name(level), format_value(event));
}

Line::~Line() {
    text_ += '\n';
    sink().push(std::move(text_));
}

Line& Line::kv(std::string_view key, std::string_view value) {
    text_ += ' ';
    text_ += key;
    text_ += '=';
    text_ += format_value(value);
    return *this;
}

Line& Line::kv(std::string_view key, std::int64_t value) {
    fmt::format_to(std::back_inserter(text_), " {}={}", key, value);
    return *this;
}

Line& Line::kv(std::string_view key, std::uint64_t value) {
    fmt::format_to(std::back_inserter(text_), " {}={}", key, value);
    return *this;
}

void start_writer() { sink().start(); }
void stop_writer() { sink().stop(); }

}  // namespace castellan::proxy::log
