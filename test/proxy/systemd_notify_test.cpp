#include "proxy/systemd_notify.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <time.h>

using namespace castellan::proxy;

namespace {

// Sets (or unsets) NOTIFY_SOCKET for one test and puts back what was there.
class NotifySocketVariable {
public:
    explicit NotifySocketVariable(const std::optional<std::string>& value) {
        if (const char* old = std::getenv("NOTIFY_SOCKET")) saved_ = old;
        if (value) {
            ::setenv("NOTIFY_SOCKET", value->c_str(), 1);
        } else {
            ::unsetenv("NOTIFY_SOCKET");
        }
    }
    ~NotifySocketVariable() {
        if (saved_) {
            ::setenv("NOTIFY_SOCKET", saved_->c_str(), 1);
        } else {
            ::unsetenv("NOTIFY_SOCKET");
        }
    }
    NotifySocketVariable(const NotifySocketVariable&) = delete;
    NotifySocketVariable& operator=(const NotifySocketVariable&) = delete;

private:
    std::optional<std::string> saved_;
};

// A temporary folder, removed with what the test left in it (one socket file).
class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/castellan-notify-XXXXXX";
        if (::mkdtemp(pattern) != nullptr) path_ = pattern;
    }
    ~TempDir() {
        if (path_.empty()) return;
        ::unlink((path_ + "/notify").c_str());
        ::rmdir(path_.c_str());
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// A bound AF_UNIX datagram socket standing in for systemd's notification socket.
class Receiver {
public:
    explicit Receiver(const NotifyAddress& address) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<const sockaddr*>(&address.address), address.length) != 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~Receiver() {
        if (fd_ >= 0) ::close(fd_);
    }
    Receiver(const Receiver&) = delete;
    Receiver& operator=(const Receiver&) = delete;
    bool bound() const { return fd_ >= 0; }
    int fd() const { return fd_; }

    // The next datagram, or nullopt if none arrives within timeout_ms.
    std::optional<std::string> receive(int timeout_ms) {
        pollfd entry{fd_, POLLIN, 0};
        if (::poll(&entry, 1, timeout_ms) != 1) return std::nullopt;
        char buffer[8192];
        const ssize_t got = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
        if (got < 0) return std::nullopt;
        return std::string(buffer, static_cast<std::size_t>(got));
    }

private:
    int fd_ = -1;
};

// The address a receiver binds, written out here rather than taken from
// notify_socket_address(), so that a mistake there shows as a lost message.
NotifyAddress path_address(const std::string& path) {
    NotifyAddress result;
    result.address.sun_family = AF_UNIX;
    std::strncpy(result.address.sun_path, path.c_str(), sizeof(result.address.sun_path) - 1);
    result.length = sizeof(sockaddr_un);  // a path ends at its NUL, whatever the length
    return result;
}

NotifyAddress abstract_address(const std::string& name) {
    NotifyAddress result;
    result.address.sun_family = AF_UNIX;
    std::memcpy(result.address.sun_path + 1, name.data(), name.size());
    result.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    return result;
}

std::string unique_abstract_name() {
    std::random_device random;
    return "castellan-notify-test-" + std::to_string(::getpid()) + "-" + std::to_string(random());
}

}  // namespace

TEST_CASE("notify address: an absolute path, NUL-terminated inside sun_path", "[proxy][systemd]") {
    const auto address = notify_socket_address("/run/systemd/notify");
    REQUIRE(address);
    CHECK(address->address.sun_family == AF_UNIX);
    CHECK(std::string(address->address.sun_path) == "/run/systemd/notify");
    CHECK(address->length == offsetof(sockaddr_un, sun_path) + std::strlen("/run/systemd/notify") + 1);
}

TEST_CASE("notify address: '@' names an abstract socket, its length ends the name", "[proxy][systemd]") {
    const auto address = notify_socket_address("@org/systemd/notify");
    REQUIRE(address);
    CHECK(address->address.sun_family == AF_UNIX);
    CHECK(address->address.sun_path[0] == '\0');
    CHECK(std::string(address->address.sun_path + 1, std::strlen("org/systemd/notify")) == "org/systemd/notify");
    CHECK(address->length == offsetof(sockaddr_un, sun_path) + 1 + std::strlen("org/systemd/notify"));
}

TEST_CASE("notify address: names too long for sun_path are refused", "[proxy][systemd]") {
    constexpr std::size_t capacity = sizeof(sockaddr_un{}.sun_path);  // 108 on Linux
    // A path needs its terminating NUL inside sun_path.
    CHECK(notify_socket_address("/" + std::string(capacity - 2, 'p')));
    CHECK_FALSE(notify_socket_address("/" + std::string(capacity - 1, 'p')));
    CHECK_FALSE(notify_socket_address("/" + std::string(4 * capacity, 'p')));
    // An abstract name has no terminator: '@' (the leading NUL) plus capacity - 1 bytes fit.
    const auto longest = notify_socket_address("@" + std::string(capacity - 1, 'a'));
    REQUIRE(longest);
    CHECK(longest->length == sizeof(sockaddr_un));
    CHECK_FALSE(notify_socket_address("@" + std::string(capacity, 'a')));
}

TEST_CASE("notify address: empty, relative, bare '@' and embedded NUL are refused", "[proxy][systemd]") {
    CHECK_FALSE(notify_socket_address(""));
    CHECK_FALSE(notify_socket_address("@"));
    CHECK_FALSE(notify_socket_address("run/systemd/notify"));
    CHECK_FALSE(notify_socket_address("notify"));
    CHECK_FALSE(notify_socket_address(std::string_view("/run/a\0b", 8)));
}

TEST_CASE("notify: a socket at a path receives the exact message as one datagram", "[proxy][systemd]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    const std::string path = dir.path() + "/notify";
    const auto address = path_address(path);
    Receiver receiver(address);
    REQUIRE(receiver.bound());
    NotifySocketVariable variable(path);

    const std::string message = "READY=1\nSTATUS=serving 3 virtual services";
    CHECK(notify_systemd(message));
    CHECK(receiver.receive(1000) == message);
    CHECK(notify_systemd("STOPPING=1"));
    CHECK(receiver.receive(1000) == std::string("STOPPING=1"));
    CHECK_FALSE(receiver.receive(50));  // one datagram per call, nothing more
}

TEST_CASE("notify: an abstract socket ('@name') receives the message", "[proxy][systemd]") {
    const std::string name = unique_abstract_name();
    Receiver receiver(abstract_address(name));
    REQUIRE(receiver.bound());
    NotifySocketVariable variable("@" + name);

    CHECK(notify_systemd("RELOADING=1"));
    CHECK(receiver.receive(1000) == std::string("RELOADING=1"));
}

TEST_CASE("notify: unset or empty NOTIFY_SOCKET does nothing and gives false", "[proxy][systemd]") {
    {
        NotifySocketVariable variable(std::nullopt);
        CHECK_FALSE(notify_systemd("READY=1"));
    }
    {
        NotifySocketVariable variable{std::string()};
        CHECK_FALSE(notify_systemd("READY=1"));
    }
}

TEST_CASE("notify: a path too long for sun_path gives false", "[proxy][systemd]") {
    NotifySocketVariable variable("/tmp/" + std::string(200, 'x'));
    CHECK_FALSE(notify_systemd("READY=1"));
}

TEST_CASE("notify: nobody listening, a relative path, an empty or oversized message give false",
          "[proxy][systemd]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    {
        NotifySocketVariable variable(dir.path() + "/notify");  // nothing bound there
        CHECK_FALSE(notify_systemd("READY=1"));
    }
    {
        NotifySocketVariable variable(std::string("@").append(unique_abstract_name()));  // nor there
        CHECK_FALSE(notify_systemd("READY=1"));
    }
    {
        NotifySocketVariable variable("notify");
        CHECK_FALSE(notify_systemd("READY=1"));
    }

    const std::string path = dir.path() + "/notify";
    const auto address = path_address(path);
    Receiver receiver(address);
    REQUIRE(receiver.bound());
    NotifySocketVariable variable(path);
    CHECK_FALSE(notify_systemd(""));
    CHECK_FALSE(notify_systemd(std::string(notify_message_max + 1, 'x')));
    CHECK_FALSE(receiver.receive(50));
    const std::string largest = "STATUS=" + std::string(notify_message_max - 7, 's');
    CHECK(notify_systemd(largest));
    CHECK(receiver.receive(1000) == largest);
}

TEST_CASE("notify: a receiver that does not read makes it give false, not block", "[proxy][systemd]") {
    TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    const std::string path = dir.path() + "/notify";
    const auto address = path_address(path);
    Receiver receiver(address);
    REQUIRE(receiver.bound());
    NotifySocketVariable variable(path);

    // Fill the receiver's queue (net.unix.max_dgram_qlen datagrams, or the senders'
    // buffers): senders, each until it gets EAGAIN, until a fresh one gets it at once.
    bool full = false;
    for (int senders = 0; senders < 256 && !full; ++senders) {
        const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        REQUIRE(fd >= 0);
        for (int sent = 0; sent < 100000; ++sent) {
            if (::sendto(fd, "x", 1, 0, reinterpret_cast<const sockaddr*>(&address.address), address.length) < 0) {
                full = sent == 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
                break;
            }
        }
        ::close(fd);
    }
    REQUIRE(full);

    // Were notify_systemd to block, it would wait in the thread until the queue is
    // drained below; the test fails instead of hanging.
    std::atomic<bool> done{false};
    bool result = true;
    std::thread caller([&] {
        result = notify_systemd("READY=1");
        done = true;
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!done && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const bool returned_in_time = done;
    char buffer[64];
    for (int drained = 0; drained < 1000000 && !done; ++drained) {
        if (::recv(receiver.fd(), buffer, sizeof buffer, MSG_DONTWAIT) < 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    caller.join();
    CHECK(returned_in_time);
    CHECK_FALSE(result);
}

TEST_CASE("reloading state: RELOADING=1 with the monotonic time in microseconds", "[proxy][systemd]") {
    const auto monotonic_us = [] {
        timespec now{};
        ::clock_gettime(CLOCK_MONOTONIC, &now);
        return static_cast<std::uint64_t>(now.tv_sec) * 1000000u + static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
    };
    const auto before = monotonic_us();
    const std::string state = reloading_state();
    const auto after = monotonic_us();
    const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
    REQUIRE(state.rfind(prefix, 0) == 0);
    const std::string digits = state.substr(prefix.size());
    REQUIRE_FALSE(digits.empty());
    REQUIRE(digits.find_first_not_of("0123456789") == std::string::npos);
    const auto stamp = std::stoull(digits);
    CHECK(stamp >= before);
    CHECK(stamp <= after);
}
