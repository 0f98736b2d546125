#include "proxy/pipe_pool.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

using castellan::proxy::Pipe;
using castellan::proxy::PipePool;

namespace {

bool is_open_fd(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST_CASE("pipe pool: a taken pipe is open, non-blocking and works", "[proxy]") {
    PipePool pool(4);
    Pipe pipe = pool.take();
    REQUIRE(pipe.is_open());
    CHECK((::fcntl(pipe.read_end(), F_GETFL) & O_NONBLOCK) != 0);
    CHECK((::fcntl(pipe.write_end(), F_GETFL) & O_NONBLOCK) != 0);
    CHECK(::write(pipe.write_end(), "x", 1) == 1);
    char byte = 0;
    CHECK(::read(pipe.read_end(), &byte, 1) == 1);
    CHECK(byte == 'x');
    char more = 0;
    CHECK(::read(pipe.read_end(), &more, 1) == -1);  // empty: EAGAIN, not a block
}

TEST_CASE("pipe pool: an empty pipe given back is reused", "[proxy]") {
    PipePool pool(4);
    Pipe first = pool.take();
    const int read_end = first.read_end();
    pool.give_back(std::move(first));
    CHECK(pool.spare() == 1);
    Pipe again = pool.take();
    CHECK(again.read_end() == read_end);
    CHECK(pool.spare() == 0);
}

TEST_CASE("pipe pool: a pipe that still holds bytes is closed, not reused", "[proxy]") {
    PipePool pool(4);
    Pipe pipe = pool.take();
    const int read_end = pipe.read_end();
    REQUIRE(::write(pipe.write_end(), "left over", 9) == 9);
    pipe.buffered = 9;
    pool.give_back(std::move(pipe));
    CHECK(pool.spare() == 0);
    CHECK_FALSE(is_open_fd(read_end));
}

TEST_CASE("pipe pool: keeps at most its bound and closes the rest", "[proxy]") {
    PipePool pool(2);
    Pipe a = pool.take(), b = pool.take(), c = pool.take();
    const int third = c.write_end();
    pool.give_back(std::move(a));
    pool.give_back(std::move(b));
    pool.give_back(std::move(c));
    CHECK(pool.spare() == 2);
    CHECK_FALSE(is_open_fd(third));
}

TEST_CASE("pipe: moving hands the descriptors over", "[proxy]") {
    Pipe pipe;
    REQUIRE(pipe.open());
    const int fd = pipe.read_end();
    Pipe moved(std::move(pipe));
    CHECK_FALSE(pipe.is_open());
    CHECK(moved.read_end() == fd);
    Pipe assigned;
    assigned = std::move(moved);
    CHECK(assigned.read_end() == fd);
    CHECK(is_open_fd(fd));
}
