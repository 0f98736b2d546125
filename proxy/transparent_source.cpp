#include "proxy/transparent_source.hpp"

#include <fmt/format.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

namespace castellan::proxy {

namespace {

const char* option_name(bool v6) { return v6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT"; }

// Why this process cannot make transparent sockets of the family, or nullopt
// when it can.
std::optional<std::string> probe(bool v6) {
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return fmt::format("cannot open an {} socket to try {}: {}", v6 ? "IPv6" : "IPv4", option_name(v6),
                           std::strerror(errno));
    }
    boost::system::error_code error;
    const bool set = set_transparent(fd, v6, error);
    ::close(fd);
    if (set) return std::nullopt;
    if (error.value() == EPERM) {
        return fmt::format(
            "castellan may not set {} ({}): transparent mode needs the capability CAP_NET_ADMIN; under systemd add "
            "it to both AmbientCapabilities= and CapabilityBoundingSet= (\"AmbientCapabilities=CAP_NET_BIND_SERVICE "
            "CAP_NET_ADMIN\", see contrib/castellan.service), or run castellan as root",
            option_name(v6), error.message());
    }
    return fmt::format("this host cannot set {}: {}", option_name(v6), error.message());
}

}  // namespace

bool set_transparent(int fd, bool v6, boost::system::error_code& error) {
    int on = 1;
    const int result = v6 ? ::setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &on, sizeof on)
                          : ::setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &on, sizeof on);
    if (result == 0) return true;
    error.assign(errno, boost::system::system_category());
    return false;
}

std::vector<conf::ConfigError> check_transparent_capability(const conf::Config& config) {
    std::vector<conf::ConfigError> errors;
    // Asked at most once per family: the answer is the process's, not the service's.
    std::optional<std::optional<std::string>> answers[2];
    for (std::size_t s = 0; s < config.virtual_services.size(); ++s) {
        const auto& service = config.virtual_services[s];
        if (!service.transparent) continue;
        // The client's family, which conf/ made every real server's.
        const bool v6 = service.listen.kind == conf::HostPort::Kind::ipv6;
        auto& answer = answers[v6 ? 1 : 0];
        if (!answer) answer = probe(v6);
        if (*answer) errors.push_back({fmt::format("/virtual_services/{}/transparent", s), **answer});
    }
    return errors;
}

}  // namespace castellan::proxy
