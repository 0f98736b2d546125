#include "proxy/log.hpp"

#include <catch2/catch.hpp>

using castellan::proxy::log::format_value;

TEST_CASE("log values: tokens bare, everything else quoted and escaped", "[proxy]") {
    CHECK(format_value("cas1") == "cas1");
    CHECK(format_value("192.168.0.34:135") == "192.168.0.34:135");
    CHECK(format_value("") == "\"\"");
    CHECK(format_value("connection refused") == "\"connection refused\"");
    CHECK(format_value("a=b") == "\"a=b\"");
    CHECK(format_value("say \"hi\"\\") == "\"say \\\"hi\\\"\\\\\"");
    // A client-controlled value can never start a second log line.
    CHECK(format_value("x\ny") == "\"x\\x0ay\"");
}
