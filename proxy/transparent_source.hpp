// `transparent: true`: connections to real servers that carry the client's own
// address as their source, as a LoadMaster's transparent mode does (the CAS sees
// who the client is: SMTP receive connectors, anti-spam, IIS logs).
//
// The upstream socket gets IP_TRANSPARENT (IPV6_TRANSPARENT), which lets it bind
// an address that is not on this host, and is bound to the client's address
// before connect. The kernel allows the option only with CAP_NET_ADMIN (or
// CAP_NET_RAW): without it every connect would fail, so a start, a `--check` and
// a reload try it once on a throwaway socket and refuse the config with the
// remedy instead (check_transparent_capability). The replies of the real servers
// go to the client's address: they reach castellan only when it is their gateway
// and the policy routing of contrib/transparent-routing.sh hands them to the
// socket (README, "Network placement").
#pragma once

#include "conf/config.hpp"
#include "conf/config_parser.hpp"

#include <boost/system/error_code.hpp>

#include <vector>

namespace castellan::proxy {

// Sets IP_TRANSPARENT (IPV6_TRANSPARENT when `v6`) on `fd`; false with `error`
// (EPERM without the capability). Any thread.
bool set_transparent(int fd, bool v6, boost::system::error_code& error);

// One error per transparent service (at /virtual_services/N/transparent) when
// this process may not set the option for its family: the capability it lacks
// and the systemd lines that give it. Opens and closes a socket per family
// asked about, binds nothing, contacts nothing. Any thread.
std::vector<conf::ConfigError> check_transparent_capability(const conf::Config& config);

}  // namespace castellan::proxy
