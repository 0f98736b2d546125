#include "healthcheck/local_shortage.hpp"

#include <boost/asio/error.hpp>

#include <cerrno>

namespace castellan::healthcheck {

bool is_out_of_resources(const boost::system::error_code& error) {
    if (error.category() != boost::system::system_category()) return false;
    switch (error.value()) {
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            return true;
        default:
            return false;
    }
}

LocalShortage local_shortage_of(const boost::system::error_code& error, SocketStep step) {
    if (!error) return LocalShortage::none;
    if (is_out_of_resources(error)) return LocalShortage::resources;
    const bool system = error.category() == boost::system::system_category();
    switch (step) {
        case SocketStep::open:
            return LocalShortage::resources;
        case SocketStep::bind:
            // EADDRINUSE: the port the kernel would give is taken (without
            // IP_BIND_ADDRESS_NO_PORT, bind() picks the port). Anything else
            // (EADDRNOTAVAIL, EACCES...) is about the address.
            return system && error.value() == EADDRINUSE ? LocalShortage::ports : LocalShortage::source_address;
        case SocketStep::connect:
            if (system && (error.value() == EADDRNOTAVAIL || error.value() == EADDRINUSE)) return LocalShortage::ports;
            return LocalShortage::none;
    }
    return LocalShortage::none;
}

const char* to_string(LocalShortage shortage) {
    switch (shortage) {
        case LocalShortage::none: return "";
        case LocalShortage::ports: return "local_ports_exhausted";
        case LocalShortage::source_address: return "source_address_unavailable";
        case LocalShortage::resources: return "out_of_resources";
        case LocalShortage::transparent_source: return "transparent_bind_failed";
    }
    return "";
}

}  // namespace castellan::healthcheck
