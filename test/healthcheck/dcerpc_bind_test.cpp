#include "healthcheck/dcerpc_bind.hpp"

#include "../conf/config_test_util.hpp"

#include <catch2/catch.hpp>

#include <string>

using castellan::conf::RpcInterface;
using castellan::healthcheck::build_dcerpc_bind;
using castellan::healthcheck::DcerpcReplyScan;
using castellan::healthcheck::scan_dcerpc_bind_reply;
using namespace castellan::conf::test;
using namespace std::literals;

namespace {

std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int v : values) out.push_back(static_cast<char>(v));
    return out;
}

// A bind_ack as Windows sends it: secondary address "135", one result.
std::string bind_ack(int result, int reason, bool little_endian = true) {
    std::string pdu = bytes({5, 0, 12, 3, little_endian ? 0x10 : 0x00, 0, 0, 0});
    auto u16 = [&](int v) {
        if (little_endian) pdu += bytes({v & 0xff, v >> 8});
        else pdu += bytes({v >> 8, v & 0xff});
    };
    u16(68);  // frag_length, patched below
    u16(0);
    pdu += bytes({1, 0, 0, 0});  // call_id (either order: not read)
    u16(4280);
    u16(4280);
    pdu += bytes({0x34, 0x12, 0, 0});  // assoc_group_id
    u16(4);
    pdu += "135"s + '\0';        // 26 + 4 = 30 bytes
    pdu += bytes({0, 0});        // pad to 32
    pdu += bytes({1, 0, 0, 0});  // one result
    u16(result);
    u16(reason);
    pdu += std::string(20, '\x01');  // transfer syntax
    pdu[8] = static_cast<char>(little_endian ? pdu.size() & 0xff : pdu.size() >> 8);
    pdu[9] = static_cast<char>(little_endian ? pdu.size() >> 8 : pdu.size() & 0xff);
    return pdu;
}

}  // namespace

TEST_CASE("dcerpc: the bind for the endpoint mapper, byte for byte", "[dcerpc]") {
    const std::string bind = build_dcerpc_bind(castellan::conf::endpoint_mapper, 1);
    const std::string expected =
        bytes({5, 0, 11, 3, 0x10, 0, 0, 0, 72, 0, 0, 0, 1, 0, 0, 0,   // header: bind, first+last, LE, 72 bytes
               0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0,                    // 4280/4280, new association
               1, 0, 0, 0, 0, 0, 1, 0,                                // one context, id 0, one transfer syntax
               0x08, 0x83, 0xaf, 0xe1, 0x1f, 0x5d, 0xc9, 0x11,        // e1af8308-5d1f-11c9-
               0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa,        // 91a4-08002b14a0fa
               3, 0, 0, 0,                                            // version 3.0
               0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11,        // NDR 8a885d04-1ceb-11c9-
               0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60, 2, 0, 0, 0});  // 9fe8-08002b104860 2.0
    CHECK(bind == expected);
}

TEST_CASE("dcerpc: the interface version goes as major then minor", "[dcerpc]") {
    RpcInterface mailbox = castellan::conf::endpoint_mapper;
    mailbox.major = 0;
    mailbox.minor = 81;
    const std::string bind = build_dcerpc_bind(mailbox, 7);
    REQUIRE(bind.size() == 72);
    CHECK(bind.substr(48, 4) == bytes({0, 0, 81, 0}));
    CHECK(bind.substr(12, 4) == bytes({7, 0, 0, 0}));
}

TEST_CASE("dcerpc: replies", "[dcerpc]") {
    using State = DcerpcReplyScan::State;
    const std::string ack = bind_ack(0, 0);
    CHECK(scan_dcerpc_bind_reply(ack).state == State::accepted);
    CHECK(scan_dcerpc_bind_reply(ack + "trailing").state == State::accepted);
    CHECK(scan_dcerpc_bind_reply(bind_ack(0, 0, false)).state == State::accepted);  // big-endian server
    for (std::size_t cut : {0, 1, 10, 16, 40}) CHECK(scan_dcerpc_bind_reply(ack.substr(0, cut)).state == State::incomplete);

    const auto rejected = scan_dcerpc_bind_reply(bind_ack(2, 1));
    CHECK(rejected.state == State::refused);
    CHECK(rejected.detail == "bind_ack rejecting the interface (result 2, reason 1)");

    const std::string nak = bytes({5, 0, 13, 3, 0x10, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0});
    const auto refused = scan_dcerpc_bind_reply(nak);
    CHECK(refused.state == State::refused);
    CHECK(refused.detail == "bind_nak reason 4");

    CHECK(scan_dcerpc_bind_reply("HTTP/1.1 400 Bad Request\r\n").state == State::malformed);
    CHECK(scan_dcerpc_bind_reply("2").state == State::malformed);
    std::string fault = ack;
    fault[2] = 3;  // a fault PDU
    CHECK(scan_dcerpc_bind_reply(fault).state == State::malformed);
    std::string tiny = ack;
    tiny[8] = 8;  // a fragment shorter than its header
    CHECK(scan_dcerpc_bind_reply(tiny).state == State::malformed);
    // An address length pointing past the PDU: refused, never read past it.
    std::string lying = ack;
    lying[24] = static_cast<char>(0xff);
    CHECK(scan_dcerpc_bind_reply(lying).state == State::malformed);
}

TEST_CASE("dcerpc: the interface of a check in the config", "[dcerpc][config]") {
    const std::string hc = "/virtual_services/0/health_check";
    const auto config = valid({{hc + "/type", "dcerpc"},
                               {hc + "/interface", {{"uuid", "A4F1DB00-CA47-1067-B31F-00DD010662DA"}, {"version", "0.81"}}}});
    const auto& check = config.virtual_services[0].health_check;
    CHECK(check.type == castellan::conf::HealthCheckKind::dcerpc);
    CHECK(check.rpc_interface.uuid[0] == 0xa4);
    CHECK(check.rpc_interface.uuid[15] == 0xda);
    CHECK(check.rpc_interface.major == 0);
    CHECK(check.rpc_interface.minor == 81);
    CHECK(valid({{hc + "/type", "dcerpc"}}).virtual_services[0].health_check.rpc_interface ==
          castellan::conf::endpoint_mapper);

    CHECK(errors_of({{hc + "/type", "dcerpc"}, {hc + "/interface", {{"uuid", "e1af8308-5d1f-11c9-91a4"}, {"version", "3.0"}}}}) ==
          std::vector<std::string>{hc + "/interface/uuid: expected a UUID such as e1af8308-5d1f-11c9-91a4-08002b14a0fa, "
                                        "got \"e1af8308-5d1f-11c9-91a4\""});
    CHECK(errors_of({{hc + "/type", "dcerpc"},
                     {hc + "/interface", {{"uuid", "e1af8308-5d1f-11c9-91a4-08002b14a0fa"}, {"version", "3"}}}}) ==
          std::vector<std::string>{hc + "/interface/version: expected \"MAJOR.MINOR\" such as \"3.0\", got \"3\""});
    CHECK(errors_of({{hc + "/type", "tcp"}, {hc + "/interface", {{"uuid", "x"}, {"version", "1.0"}}}}) ==
          std::vector<std::string>{hc + "/interface: only allowed with type \"dcerpc\""});
}
