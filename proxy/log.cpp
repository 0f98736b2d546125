#include "proxy/log.hpp"

#include "proxy/time_format.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace castellan::proxy::log {
namespace {

// Enough for bursts of connection logs; beyond it stderr is not keeping up.
constexpr std::size_t max_queued_lines = 16384;
constexpr auto batch_delay = std::chrono::milliseconds(20);

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
                // Only the first line of a batch wakes the writer (see drain()).
                if (queue_.size() == 1) wake_.notify_one();
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
    // One write(2) per 64 KiB of lines rather than one per line: the writer
    // shares the CPUs with the workers.
    void write_batch(const std::deque<std::string>& batch) {
        constexpr std::size_t chunk_bytes = 64 * 1024;
        std::string chunk;
        chunk.reserve(chunk_bytes);
        for (const auto& line : batch) {
            if (!chunk.empty() && chunk.size() + line.size() > chunk_bytes) {
                write_all(STDERR_FILENO, chunk);
                chunk.clear();
            }
            chunk += line;
        }
        write_all(STDERR_FILENO, chunk);
    }

    void drain() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty() && stopping_) return;
            if (!stopping_) {
                // Let a batch gather: a wake-up per line would cost a worker a
                // context switch per connection; a line is at most this late.
                lock.unlock();
                std::this_thread::sleep_for(batch_delay);
                lock.lock();
            }
            std::deque<std::string> batch;
            batch.swap(queue_);
            std::uint64_t dropped = dropped_;
            dropped_ = 0;
            lock.unlock();
            if (dropped != 0) {
                Line(Level::warn, "log_dropped").kv("lines", dropped);
            }
            write_batch(batch);
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
    text_.reserve(160);
    text_ = fmt::format("ts={} level={} event={}", rfc3339_utc(std::chrono::system_clock::now(), true),
                        level_name(level), format_value(event));
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
