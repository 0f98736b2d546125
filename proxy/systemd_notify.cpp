#include "proxy/systemd_notify.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <time.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace castellan::proxy {

std::optional<NotifyAddress> notify_socket_address(std::string_view value) noexcept {
    NotifyAddress result;
    result.address.sun_family = AF_UNIX;
    constexpr std::size_t capacity = sizeof(result.address.sun_path);
    constexpr std::size_t path_offset = offsetof(sockaddr_un, sun_path);

    if (value.size() >= 2 && value.front() == '@') {
        // Abstract namespace: sun_path is a NUL, then the name, no terminator;
        // the length passed to sendto says where the name ends.
        if (value.size() > capacity) return std::nullopt;
        result.address.sun_path[0] = '\0';
        std::memcpy(result.address.sun_path + 1, value.data() + 1, value.size() - 1);
        result.length = static_cast<socklen_t>(path_offset + value.size());
        return result;
    }
    // A filesystem path: absolute, as sd_notify(3) requires (a relative one would
    // depend on the working directory), with room for its terminating NUL.
    if (value.empty() || value.front() != '/') return std::nullopt;
    if (value.size() >= capacity) return std::nullopt;
    if (value.find('\0') != std::string_view::npos) return std::nullopt;
    std::memcpy(result.address.sun_path, value.data(), value.size());
    result.address.sun_path[value.size()] = '\0';
    result.length = static_cast<socklen_t>(path_offset + value.size() + 1);
    return result;
}

bool notify_systemd(std::string_view state) noexcept {
    const char* variable = std::getenv("NOTIFY_SOCKET");
    if (variable == nullptr || *variable == '\0') return false;
    if (state.empty() || state.size() > notify_message_max) return false;
    const auto target = notify_socket_address(variable);
    if (!target) return false;

    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return false;
    ssize_t sent = -1;
    // A non-blocking send does not sleep, so EINTR is unlikely; a few tries bound it.
    for (int attempt = 0; attempt < 3; ++attempt) {
        sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                        reinterpret_cast<const sockaddr*>(&target->address), target->length);
        if (sent >= 0 || errno != EINTR) break;
    }
    ::close(fd);
    return sent >= 0 && static_cast<std::size_t>(sent) == state.size();
}

std::string reloading_state() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto microseconds = static_cast<std::uint64_t>(now.tv_sec) * 1000000u +
                              static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
    return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(microseconds);
}

}  // namespace castellan::proxy
