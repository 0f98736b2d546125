#include "proxy/pipe_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace castellan::proxy {

Pipe::~Pipe() { close(); }

Pipe::Pipe(Pipe&& other) noexcept : buffered(std::exchange(other.buffered, 0)) {
    fds_[0] = std::exchange(other.fds_[0], -1);
    fds_[1] = std::exchange(other.fds_[1], -1);
}

Pipe& Pipe::operator=(Pipe&& other) noexcept {
    if (this != &other) {
        close();
        fds_[0] = std::exchange(other.fds_[0], -1);
        fds_[1] = std::exchange(other.fds_[1], -1);
        buffered = std::exchange(other.buffered, 0);
    }
    return *this;
}

bool Pipe::open() {
    if (is_open()) return true;
    buffered = 0;
    return ::pipe2(fds_, O_NONBLOCK | O_CLOEXEC) == 0;
}

void Pipe::close() {
    for (int& fd : fds_) {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
}

Pipe PipePool::take() {
    if (!spare_.empty()) {
        Pipe pipe = std::move(spare_.back());
        spare_.pop_back();
        return pipe;
    }
    Pipe pipe;
    pipe.open();
    return pipe;
}

void PipePool::give_back(Pipe pipe) {
    if (pipe.is_open() && pipe.buffered == 0 && spare_.size() < keep_at_most_) spare_.push_back(std::move(pipe));
}

}  // namespace castellan::proxy
