#include "proxy/reactor_ops.hpp"

#include "proxy/listen_socket.hpp"

#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <vector>

namespace net = boost::asio;
using tcp = net::ip::tcp;
using castellan::proxy::AcceptingSocket;
using castellan::proxy::adopt_descriptor;
using castellan::proxy::async_wait_after_would_block;

namespace {

// A listening socket on 127.0.0.1 and its port, as the workers get theirs.
struct Listening {
    int fd = -1;
    std::uint16_t port = 0;
    Listening() {
        std::string error;
        fd = castellan::proxy::open_listen_socket({"127.0.0.1", 0, castellan::conf::HostPort::Kind::ipv4}, error);
        REQUIRE(fd >= 0);
        sockaddr_in bound{};
        socklen_t length = sizeof bound;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0);
        port = ntohs(bound.sin_port);
    }
};

// A blocking client connected to `port`.
int connect_client(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
    return fd;
}

std::uint16_t local_port(int fd) {
    sockaddr_in local{};
    socklen_t length = sizeof local;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length);
    return ntohs(local.sin_port);
}

// Runs `io` until `done` or two seconds have passed.
template <typename Done>
void run_until(net::io_context& io, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_for(std::chrono::milliseconds(10));
    }
}

// A connected pair: `ours` in `io` (as castellan holds a real server's socket),
// `peer` a plain blocking descriptor.
struct ConnectedPair {
    tcp::socket ours;
    int peer = -1;
    explicit ConnectedPair(net::io_context& io) : ours(io) {
        Listening listening;
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(listening.port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const int connected = ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
        REQUIRE((connected == 0 || errno == EINPROGRESS));
        for (int attempt = 0; attempt < 200 && peer < 0; ++attempt) {
            peer = ::accept(listening.fd, nullptr, nullptr);
            if (peer < 0) ::usleep(5000);
        }
        REQUIRE(peer >= 0);
        ::close(listening.fd);
        boost::system::error_code error;
        adopt_descriptor(ours, tcp::v4(), fd, error);
        REQUIRE_FALSE(error);
    }
    ~ConnectedPair() {
        if (peer >= 0) ::close(peer);
    }
    // True when a read on `ours` finds nothing (the precondition of the wait).
    bool drained() {
        char byte;
        return ::recv(ours.native_handle(), &byte, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
    }
};

// One wait after would-block on `socket`; `ended` gets its outcome.
struct Wait {
    std::optional<boost::system::error_code> ended;
    Wait(tcp::socket& socket, tcp::socket::wait_type wait) {
        async_wait_after_would_block(socket, wait, [this](const boost::system::error_code& error) { ended = error; });
    }
    // Runs `io` until the wait has ended (two seconds at most); gives how.
    boost::system::error_code finish(net::io_context& io) {
        run_until(io, [this] { return ended.has_value(); });
        REQUIRE(ended);
        return *ended;
    }
};

}  // namespace

TEST_CASE("accepting socket: a client arrives non-blocking, close-on-exec, with its address", "[proxy]") {
    net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    Listening listening;
    AcceptingSocket acceptor(io);
    boost::system::error_code error;
    acceptor.assign(tcp::v4(), listening.fd, error);
    REQUIRE_FALSE(error);

    std::vector<int> clients;
    std::vector<std::uint16_t> peer_ports;
    // Two clients, the second while the first accept is being handled: both
    // come through, whether the reactor finds them waiting or not.
    clients.push_back(connect_client(listening.port));
    tcp::endpoint peer;
    std::function<void()> accept_next = [&] {
        acceptor.async_accept(peer, [&](const boost::system::error_code& accept_error, tcp::socket socket) {
            REQUIRE_FALSE(accept_error);
            REQUIRE(socket.is_open());
            const int flags = ::fcntl(socket.native_handle(), F_GETFL);
            CHECK((flags & O_NONBLOCK) != 0);
            CHECK((::fcntl(socket.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
            CHECK(peer.address() == net::ip::make_address("127.0.0.1"));
            peer_ports.push_back(peer.port());
            if (peer_ports.size() == 1) {
                clients.push_back(connect_client(listening.port));
                accept_next();
            }
        });
    };
    accept_next();
    run_until(io, [&] { return peer_ports.size() == 2; });
    REQUIRE(peer_ports.size() == 2);
    CHECK(peer_ports[0] == local_port(clients[0]));
    CHECK(peer_ports[1] == local_port(clients[1]));
    for (int client : clients) ::close(client);
}

TEST_CASE("accepting socket: closing the listener ends a waiting accept with operation_aborted", "[proxy]") {
    net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    Listening listening;
    AcceptingSocket acceptor(io);
    boost::system::error_code error;
    acceptor.assign(tcp::v4(), listening.fd, error);
    REQUIRE_FALSE(error);
    tcp::endpoint peer;
    std::optional<boost::system::error_code> ended;
    acceptor.async_accept(peer, [&](const boost::system::error_code& accept_error, tcp::socket socket) {
        ended = accept_error;
        CHECK_FALSE(socket.is_open());
    });
    io.run_for(std::chrono::milliseconds(20));
    CHECK_FALSE(ended);
    acceptor.close(error);
    run_until(io, [&] { return ended.has_value(); });
    REQUIRE(ended);
    CHECK(*ended == net::error::operation_aborted);
}

TEST_CASE("wait after would-block: bytes that come later end the wait", "[proxy]") {
    net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    ConnectedPair pair(io);
    REQUIRE(pair.drained());
    Wait first(pair.ours, tcp::socket::wait_read);
    io.run_for(std::chrono::milliseconds(30));
    CHECK_FALSE(first.ended);  // nothing to read yet: the wait is queued, not done at once

    REQUIRE(::send(pair.peer, "x", 1, 0) == 1);
    CHECK_FALSE(first.finish(io));
    char byte = 0;
    CHECK(::recv(pair.ours.native_handle(), &byte, 1, MSG_DONTWAIT) == 1);

    // And again: after this read's EAGAIN the next wait sees the next byte.
    REQUIRE(pair.drained());
    Wait second(pair.ours, tcp::socket::wait_read);
    REQUIRE(::send(pair.peer, "y", 1, 0) == 1);
    CHECK_FALSE(second.finish(io));
}

TEST_CASE("wait after would-block: the peer's FIN ends the wait", "[proxy]") {
    net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    ConnectedPair pair(io);
    REQUIRE(pair.drained());
    Wait wait(pair.ours, tcp::socket::wait_read);
    ::shutdown(pair.peer, SHUT_WR);
    wait.finish(io);
    char byte = 0;
    CHECK(::recv(pair.ours.native_handle(), &byte, 1, MSG_DONTWAIT) == 0);
}

TEST_CASE("wait after would-block: cancel ends the wait with operation_aborted", "[proxy]") {
    net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    ConnectedPair pair(io);
    REQUIRE(pair.drained());
    Wait wait(pair.ours, tcp::socket::wait_read);
    io.run_for(std::chrono::milliseconds(20));
    REQUIRE_FALSE(wait.ended);
    boost::system::error_code ignored;
    pair.ours.cancel(ignored);
    CHECK(wait.finish(io) == net::error::operation_aborted);
}

TEST_CASE("wait after would-block: a full socket's wait ends when the peer makes room", "[proxy]") {
    net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO);
    ConnectedPair pair(io);
    const std::vector<char> chunk(64 * 1024, 'z');
    std::size_t sent_total = 0;
    for (int round = 0; round < 10000; ++round) {
        const ssize_t sent = ::send(pair.ours.native_handle(), chunk.data(), chunk.size(), MSG_DONTWAIT);
        if (sent < 0) break;
        sent_total += static_cast<std::size_t>(sent);
    }
    REQUIRE(errno == EAGAIN);
    Wait wait(pair.ours, tcp::socket::wait_write);
    io.run_for(std::chrono::milliseconds(30));
    CHECK_FALSE(wait.ended);

    std::vector<char> sink(256 * 1024);
    std::size_t read_total = 0;
    while (read_total < sent_total && !wait.ended) {
        const ssize_t got = ::recv(pair.peer, sink.data(), sink.size(), MSG_DONTWAIT);
        if (got > 0) read_total += static_cast<std::size_t>(got);
        io.restart();
        io.run_for(std::chrono::milliseconds(5));
    }
    CHECK_FALSE(wait.finish(io));
}
