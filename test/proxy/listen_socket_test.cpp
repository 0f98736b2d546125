#include "proxy/listen_socket.hpp"

#include <catch2/catch.hpp>

#include <cstdio>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

int option(int fd, int level, int name) {
    int value = -1;
    socklen_t length = sizeof value;
    ::getsockopt(fd, level, name, &value, &length);
    return value;
}

}  // namespace

TEST_CASE("listen socket: accepted connections inherit nodelay and keep-alive", "[proxy]") {
    std::string error;
    castellan::conf::HostPort address{"127.0.0.1", 0, castellan::conf::HostPort::Kind::ipv4};
    int listener = castellan::proxy::open_listen_socket(address, error);
    REQUIRE(listener >= 0);
    sockaddr_in bound{};
    socklen_t length = sizeof bound;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &length) == 0);

    int client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&bound), sizeof bound) == 0);
    int accepted = -1;
    for (int attempt = 0; attempt < 100 && accepted < 0; ++attempt) {
        accepted = ::accept(listener, nullptr, nullptr);
        if (accepted < 0) ::usleep(10000);
    }
    REQUIRE(accepted >= 0);
    CHECK(option(accepted, IPPROTO_TCP, TCP_NODELAY) != 0);
    CHECK(option(accepted, SOL_SOCKET, SO_KEEPALIVE) != 0);
    CHECK(option(accepted, IPPROTO_TCP, TCP_KEEPIDLE) == 60);
    CHECK(option(accepted, IPPROTO_TCP, TCP_KEEPINTVL) == 10);
    CHECK(option(accepted, IPPROTO_TCP, TCP_KEEPCNT) == 6);
    ::close(accepted);
    ::close(client);
    ::close(listener);
}

TEST_CASE("listen socket: a taken address is refused", "[proxy]") {
    std::string error;
    castellan::conf::HostPort address{"127.0.0.1", 0, castellan::conf::HostPort::Kind::ipv4};
    int first = castellan::proxy::open_listen_socket(address, error);
    REQUIRE(first >= 0);
    sockaddr_in bound{};
    socklen_t length = sizeof bound;
    ::getsockname(first, reinterpret_cast<sockaddr*>(&bound), &length);
    address.port = ntohs(bound.sin_port);
    CHECK(castellan::proxy::open_listen_socket(address, error) == -1);
    CHECK(error.find("in use") != std::string::npos);
    ::close(first);
}

TEST_CASE("listen socket: an address not on this host says so, with the remedy", "[proxy]") {
    // 192.0.2.1 (TEST-NET-1) is on no interface; with net.ipv4.ip_nonlocal_bind
    // set on this host, the bind would succeed, and there is nothing to test.
    std::FILE* sysctl = std::fopen("/proc/sys/net/ipv4/ip_nonlocal_bind", "r");
    int nonlocal = 0;
    if (sysctl) {
        if (std::fscanf(sysctl, "%d", &nonlocal) != 1) nonlocal = 0;
        std::fclose(sysctl);
    }
    if (nonlocal != 0) {
        WARN("net.ipv4.ip_nonlocal_bind is set here: skipped");
        return;
    }
    std::string error;
    castellan::conf::HostPort address{"192.0.2.1", 0, castellan::conf::HostPort::Kind::ipv4};
    const int fd = castellan::proxy::open_listen_socket(address, error);
    if (fd >= 0) ::close(fd);
    REQUIRE(fd == -1);
    CHECK_THAT(error, Catch::StartsWith("Cannot assign requested address: 192.0.2.1 is not an address of this host"));
    CHECK_THAT(error, Catch::Contains("sysctl -w net.ipv4.ip_nonlocal_bind=1"));

    castellan::conf::HostPort v6{"2001:db8::1", 0, castellan::conf::HostPort::Kind::ipv6};
    CHECK_THAT(castellan::proxy::address_not_here(v6), Catch::Contains("net.ipv6.ip_nonlocal_bind=1"));
}
