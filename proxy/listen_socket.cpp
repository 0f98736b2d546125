#include "proxy/listen_socket.hpp"

#include "proxy/socket_options.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace castellan::proxy {

std::string address_not_here(const conf::HostPort& address) {
    const bool v6 = address.kind == conf::HostPort::Kind::ipv6;
    return fmt::format("{}: {} is not an address of this host. If it is a virtual address that the other "
                       "node of an HA pair holds now (this is the standby), let castellan listen on it before it "
                       "arrives: sysctl -w {}=1 (and in /etc/sysctl.d/, see contrib/sysctl-castellan.conf)",
                       std::strerror(EADDRNOTAVAIL), address.host,
                       v6 ? "net.ipv6.ip_nonlocal_bind" : "net.ipv4.ip_nonlocal_bind");
}

int open_listen_socket(const conf::HostPort& address, std::string& error) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    int family = AF_INET;
    if (address.kind == conf::HostPort::Kind::ipv6) {
        family = AF_INET6;
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(address.port);
        if (::inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr) != 1) {
            error = "not an IPv6 address";
            return -1;
        }
        length = sizeof(sockaddr_in6);
    } else {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
        v4->sin_family = AF_INET;
        v4->sin_port = htons(address.port);
        if (::inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr) != 1) {
            error = "not an IPv4 address";
            return -1;
        }
        length = sizeof(sockaddr_in);
    }
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = std::strerror(errno);
        return -1;
    }
    int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    set_connection_options(fd);  // inherited by every accepted connection
    if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) {
        const int bind_errno = errno;
        error = bind_errno == EADDRNOTAVAIL ? address_not_here(address) : std::strerror(bind_errno);
        ::close(fd);
        return -1;
    }
    if (::listen(fd, SOMAXCONN) != 0) {
        error = std::strerror(errno);
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace castellan::proxy
