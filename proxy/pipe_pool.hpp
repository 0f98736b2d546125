// Pipes for splice(2), kept by a worker for reuse: making one costs a pipe2()
// and two close() calls, as much as a short connection's other set-up.
#pragma once

#include <cstddef>
#include <vector>

namespace castellan::proxy {

// A non-blocking pipe and how many bytes sit in it.
class Pipe {
public:
    Pipe() = default;
    ~Pipe();
    Pipe(Pipe&& other) noexcept;
    Pipe& operator=(Pipe&& other) noexcept;
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;

    // Opens a new pipe; false (errno set) when the process is out of descriptors.
    bool open();
    bool is_open() const { return fds_[0] >= 0; }
    int read_end() const { return fds_[0]; }
    int write_end() const { return fds_[1]; }

    // Bytes spliced in and not yet out. A pipe that still holds bytes is never
    // reused: they belong to a connection that ended.
    std::size_t buffered = 0;

private:
    void close();
    int fds_[2] = {-1, -1};
};

// One worker's spare pipes. Not thread-safe: touched only on its worker's thread.
class PipePool {
public:
    explicit PipePool(std::size_t keep_at_most) : keep_at_most_(keep_at_most) {}

    // A spare pipe, or a new one; one that is not open (errno set) when none
    // could be made.
    Pipe take();
    // Keeps an empty pipe for the next connection while there is room, else
    // closes it.
    void give_back(Pipe pipe);

    std::size_t spare() const { return spare_.size(); }

private:
    std::size_t keep_at_most_;
    std::vector<Pipe> spare_;
};

}  // namespace castellan::proxy
