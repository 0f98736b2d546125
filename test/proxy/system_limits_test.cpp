#include "proxy/system_limits.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

using namespace castellan::proxy;

TEST_CASE("session capacity: two descriptors a connection after what is reserved", "[proxy]") {
    // The systemd unit's limit: room for about half a million connections.
    const auto large = session_capacity(1048576, 20, 2);
    CHECK(large > 450000);
    CHECK(large < 1048576 / 2);
    // A 20000 limit, 2 workers: 20 open, 2 x 64 spare pipes x 2, headroom 16 + 1250.
    CHECK(session_capacity(20000, 20, 2) == (20000 - 20 - 256 - 1266) / 2);
    // Debian's soft default of 1024 if it could not be raised.
    CHECK(session_capacity(1024, 20, 2) == (1024 - 20 - 2 * 2 * 16 - 80) / 2);
}

TEST_CASE("session capacity: never below one, even when the limit is all reserved", "[proxy]") {
    CHECK(session_capacity(64, 60, 1) == 1);
    CHECK(session_capacity(0, 0, 1) == 1);
}

TEST_CASE("spare pipes: 64 a worker, fewer when descriptors are scarce", "[proxy]") {
    CHECK(spare_pipes_per_worker(1048576, 4) == 64);
    CHECK(spare_pipes_per_worker(1024, 2) == 16);
    CHECK(spare_pipes_per_worker(64, 1) == 2);
    CHECK(spare_pipes_per_worker(16, 1) == 0);
}

TEST_CASE("open descriptors: counts a descriptor opened and closed", "[proxy]") {
    const auto before = open_descriptor_count();
    REQUIRE(before >= 3);
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(open_descriptor_count() == before + 1);
    ::close(fd);
    CHECK(open_descriptor_count() == before);
}
