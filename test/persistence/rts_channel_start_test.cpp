#include "persistence/rts_channel_start.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

using namespace castellan::persistence;

namespace {

using Bytes = std::vector<std::uint8_t>;

void put16(Bytes& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value));
    out.push_back(static_cast<std::uint8_t>(value >> 8));
}

void put32(Bytes& out, std::uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

// One RTS command: its type, then its body.
Bytes command(std::uint32_t type, const Bytes& body) {
    // Sized once and filled by index: g++ 12 warns falsely (stringop-overread)
    // on a push_back followed by an insert here.
    Bytes out(4 + body.size());
    for (std::size_t i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(type >> (8 * i));
    std::copy(body.begin(), body.end(), out.begin() + 4);
    return out;
}

Bytes word(std::uint32_t value) {
    Bytes out;
    put32(out, value);
    return out;
}

Bytes cookie_bytes(std::uint8_t first) {
    Bytes out;
    for (std::uint8_t i = 0; i < 16; ++i) out.push_back(static_cast<std::uint8_t>(first + i));
    return out;
}

// An RTS PDU as MS-RPCH 2.2.3.6 lays it out: the 16-byte common header (v5.0,
// PTYPE 20, first+last fragment, little-endian NDR), Flags, NumberOfCommands,
// the commands.
Bytes rts_pdu(std::uint16_t flags, const std::vector<Bytes>& commands) {
    Bytes body;
    for (const auto& one : commands) body.insert(body.end(), one.begin(), one.end());
    Bytes out{5, 0, 20, 3, 0x10, 0, 0, 0};
    put16(out, static_cast<std::uint16_t>(20 + body.size()));
    put16(out, 0);  // auth_length
    put32(out, 0);  // call_id
    put16(out, flags);
    put16(out, static_cast<std::uint16_t>(commands.size()));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

const Bytes virtual_connection = cookie_bytes(0x10);
const Bytes version = command(6, word(1));
const Bytes vc_cookie = command(3, virtual_connection);
const Bytes channel_cookie = command(3, cookie_bytes(0x40));
const Bytes successor_cookie = command(3, cookie_bytes(0x70));
const Bytes window = command(0, word(262144));

Bytes conn_a1() { return rts_pdu(0, {version, vc_cookie, channel_cookie, window}); }
Bytes conn_b1() {
    return rts_pdu(0, {version, vc_cookie, channel_cookie, command(4, word(1073741824)), command(5, word(300000)),
                       command(12, cookie_bytes(0xA0))});
}
Bytes in_r1_a1() { return rts_pdu(4, {version, vc_cookie, channel_cookie, successor_cookie}); }
Bytes out_r1_a3() { return rts_pdu(4, {version, vc_cookie, channel_cookie, successor_cookie, window}); }

RtsChannelStart read(const Bytes& bytes) { return read_rts_channel_start(bytes); }

bool is_not_one(const Bytes& bytes) {
    return read(bytes).status == RtsChannelStart::Status::not_channel_start;
}

VirtualConnectionCookie expected_cookie() {
    VirtualConnectionCookie out{};
    std::copy(virtual_connection.begin(), virtual_connection.end(), out.begin());
    return out;
}

}  // namespace

TEST_CASE("the four channel-opening PDUs give their virtual connection cookie", "[rts]") {
    struct Case {
        Bytes bytes;
        RtsChannelPdu pdu;
        std::size_t size;
    };
    const std::vector<Case> cases{{conn_a1(), RtsChannelPdu::conn_a1, 76},
                                  {conn_b1(), RtsChannelPdu::conn_b1, 104},
                                  {in_r1_a1(), RtsChannelPdu::in_r1_a1, 88},
                                  {out_r1_a3(), RtsChannelPdu::out_r1_a3, 96}};
    for (const auto& one : cases) {
        INFO(to_string(one.pdu));
        REQUIRE(one.bytes.size() == one.size);  // MS-RPCH's sizes
        const auto result = read(one.bytes);
        REQUIRE(result.status == RtsChannelStart::Status::found);
        CHECK(result.pdu == one.pdu);
        CHECK(result.cookie == expected_cookie());
    }
}

TEST_CASE("the body after the PDU (the RPC bind that follows) changes nothing", "[rts]") {
    Bytes bytes = conn_b1();
    const Bytes bind{5, 0, 11, 3, 0x10, 0, 0, 0, 72, 0, 0, 0, 1, 0, 0, 0};
    bytes.insert(bytes.end(), bind.begin(), bind.end());
    const auto result = read(bytes);
    REQUIRE(result.status == RtsChannelStart::Status::found);
    CHECK(result.pdu == RtsChannelPdu::conn_b1);
}

TEST_CASE("a PDU cut short asks for the bytes a decision takes", "[rts]") {
    const Bytes whole = conn_a1();
    CHECK(read({}).status == RtsChannelStart::Status::need_more);
    CHECK(read({}).need == 20);
    const auto header_only = read(Bytes(whole.begin(), whole.begin() + 20));
    CHECK(header_only.status == RtsChannelStart::Status::need_more);
    CHECK(header_only.need == 76);
    for (std::size_t cut = 0; cut < whole.size(); ++cut) {
        INFO("cut at " << cut);
        const auto result = read(Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut)));
        CHECK(result.status == RtsChannelStart::Status::need_more);
        CHECK(result.need > cut);
    }
}

TEST_CASE("what is not an RTS PDU is told from its first bytes, without waiting for more", "[rts]") {
    CHECK(is_not_one(Bytes{'G'}));                     // an HTTP body, a form post
    CHECK(is_not_one(Bytes{4}));                       // DCE/RPC v4 (connectionless)
    CHECK(is_not_one(Bytes{5, 1}));                    // minor version 1
    CHECK(is_not_one(Bytes{5, 0, 11}));                // a bind, not RTS
    CHECK(is_not_one(Bytes{5, 0, 20, 3, 0x00}));       // big-endian NDR: left to the fallback
}

TEST_CASE("hostile or malformed PDUs are not channel starts", "[rts]") {
    SECTION("an RTS PDU that opens no channel (a Ping, flags 1, no command)") {
        CHECK(is_not_one(rts_pdu(1, {})));
    }
    SECTION("flags and command count of no channel-opening PDU") {
        CHECK(is_not_one(rts_pdu(0, {version, vc_cookie, channel_cookie})));
        CHECK(is_not_one(rts_pdu(2, {version, vc_cookie, channel_cookie, window})));
    }
    SECTION("the commands in another order") {
        CHECK(is_not_one(rts_pdu(0, {vc_cookie, version, channel_cookie, window})));
        CHECK(is_not_one(rts_pdu(0, {version, channel_cookie, window, vc_cookie})));
    }
    SECTION("a fragment length that does not match the commands") {
        Bytes bytes = conn_a1();
        bytes[8] = 80;  // four bytes past the last command
        bytes.resize(80, 0);
        CHECK(is_not_one(bytes));
        Bytes shorter = conn_a1();
        shorter[8] = 70;  // the last command runs past the fragment
        CHECK(is_not_one(shorter));
    }
    SECTION("fragment lengths below the header or over the limit") {
        Bytes tiny = conn_a1();
        tiny[8] = 19;
        CHECK(is_not_one(tiny));
        Bytes huge = conn_a1();
        huge[8] = 0xff;
        huge[9] = 0xff;
        CHECK(is_not_one(huge));
    }
    SECTION("an authentication trailer, which no RTS PDU carries") {
        Bytes bytes = conn_a1();
        bytes[10] = 16;
        CHECK(is_not_one(bytes));
    }
    SECTION("a command type castellan does not expect where the cookie should be") {
        CHECK(is_not_one(rts_pdu(0, {version, command(8, word(12)), channel_cookie, window})));
    }
}

TEST_CASE("the cookie's hash is stable and tells sessions apart", "[rts]") {
    const auto first = read(conn_a1());
    const auto second = read(conn_b1());
    REQUIRE(first.status == RtsChannelStart::Status::found);
    REQUIRE(second.status == RtsChannelStart::Status::found);
    // Both channels of one session hash alike: that is the whole point.
    CHECK(hash_virtual_connection(first.cookie) == hash_virtual_connection(second.cookie));
    VirtualConnectionCookie other = first.cookie;
    other[15] ^= 1;
    CHECK(hash_virtual_connection(other) != hash_virtual_connection(first.cookie));
    // A value fixed by the contract: two balancers (or two builds) agree.
    VirtualConnectionCookie zero{};
    CHECK(hash_virtual_connection(zero) == hash_virtual_connection(VirtualConnectionCookie{}));
}
