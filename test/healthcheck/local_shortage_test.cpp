// Which socket errors are this host's shortage, not the peer's failure.
#include "healthcheck/local_shortage.hpp"

#include <boost/asio/error.hpp>

#include <catch2/catch.hpp>

#include <cerrno>

using namespace castellan::healthcheck;

namespace {

boost::system::error_code errno_code(int value) { return {value, boost::system::system_category()}; }

}  // namespace

TEST_CASE("local shortage: connect errors", "[healthcheck]") {
    const auto step = SocketStep::connect;
    CHECK(local_shortage_of({}, step) == LocalShortage::none);
    // No ephemeral port left for this destination: ours.
    CHECK(local_shortage_of(errno_code(EADDRNOTAVAIL), step) == LocalShortage::ports);
    CHECK(local_shortage_of(errno_code(EADDRINUSE), step) == LocalShortage::ports);
    // Descriptors and memory: ours (async_connect opens the socket too).
    for (int value : {EMFILE, ENFILE, ENOBUFS, ENOMEM}) {
        INFO(value);
        CHECK(local_shortage_of(errno_code(value), step) == LocalShortage::resources);
    }
    // The server's (or the network's) answer.
    CHECK(local_shortage_of(boost::asio::error::connection_refused, step) == LocalShortage::none);
    CHECK(local_shortage_of(boost::asio::error::timed_out, step) == LocalShortage::none);
    CHECK(local_shortage_of(boost::asio::error::operation_aborted, step) == LocalShortage::none);
    CHECK(local_shortage_of(errno_code(ENETUNREACH), step) == LocalShortage::none);
    CHECK(local_shortage_of(errno_code(EHOSTUNREACH), step) == LocalShortage::none);
}

TEST_CASE("local shortage: bind and open errors are always ours", "[healthcheck]") {
    // An address this host does not have (or no longer has).
    CHECK(local_shortage_of(errno_code(EADDRNOTAVAIL), SocketStep::bind) == LocalShortage::source_address);
    CHECK(local_shortage_of(errno_code(EACCES), SocketStep::bind) == LocalShortage::source_address);
    CHECK(local_shortage_of(errno_code(EADDRINUSE), SocketStep::bind) == LocalShortage::ports);
    CHECK(local_shortage_of(errno_code(EMFILE), SocketStep::bind) == LocalShortage::resources);
    CHECK(local_shortage_of(errno_code(EMFILE), SocketStep::open) == LocalShortage::resources);
    CHECK(local_shortage_of(errno_code(EAFNOSUPPORT), SocketStep::open) == LocalShortage::resources);
    CHECK(local_shortage_of({}, SocketStep::bind) == LocalShortage::none);
}

TEST_CASE("local shortage: out of resources, and the words the log uses", "[healthcheck]") {
    CHECK(is_out_of_resources(boost::asio::error::no_descriptors));
    CHECK(is_out_of_resources(boost::asio::error::no_buffer_space));
    CHECK(is_out_of_resources(boost::asio::error::no_memory));
    CHECK(is_out_of_resources(errno_code(ENFILE)));
    CHECK_FALSE(is_out_of_resources(errno_code(EADDRNOTAVAIL)));
    CHECK_FALSE(is_out_of_resources({}));
    CHECK_FALSE(is_out_of_resources(boost::asio::error::eof));  // another category
    CHECK(std::string(to_string(LocalShortage::ports)) == "local_ports_exhausted");
    CHECK(std::string(to_string(LocalShortage::source_address)) == "source_address_unavailable");
    CHECK(std::string(to_string(LocalShortage::resources)) == "out_of_resources");
    CHECK(std::string(to_string(LocalShortage::none)).empty());
}
