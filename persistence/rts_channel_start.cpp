#include "persistence/rts_channel_start.hpp"

#include "persistence/stable_hash.hpp"

#include <algorithm>

namespace castellan::persistence {

namespace {

// C706 12.6.3.1: the 16-byte common header of a connection-oriented PDU;
// MS-RPCH 2.2.3.6.1 adds the RTS Flags and NumberOfCommands.
constexpr std::size_t rts_header_size = 20;
constexpr std::uint8_t rpc_version = 5;
constexpr std::uint8_t rpc_version_minor = 0;
constexpr std::uint8_t ptype_rts = 20;
// packed_drep[0]: little-endian integers, ASCII characters. Every RTS PDU
// Windows or impacket sends is so; a big-endian one is left to the fallback.
constexpr std::uint8_t drep_little_endian = 0x10;

constexpr std::uint16_t rts_flag_none = 0x0000;
constexpr std::uint16_t rts_flag_recycle_channel = 0x0004;

// MS-RPCH 2.2.3.5: the RTS commands a channel's first PDU may hold.
enum Command : std::uint32_t {
    receive_window_size = 0x0,
    cookie = 0x3,
    channel_lifetime = 0x4,
    client_keepalive = 0x5,
    version = 0x6,
    association_group_id = 0xC,
};

std::uint16_t read16(std::span<const std::uint8_t> bytes, std::size_t at) {
    return static_cast<std::uint16_t>(bytes[at] | (bytes[at + 1] << 8));
}

std::uint32_t read32(std::span<const std::uint8_t> bytes, std::size_t at) {
    return static_cast<std::uint32_t>(bytes[at]) | (static_cast<std::uint32_t>(bytes[at + 1]) << 8) |
           (static_cast<std::uint32_t>(bytes[at + 2]) << 16) | (static_cast<std::uint32_t>(bytes[at + 3]) << 24);
}

// The body size of each command after its 4-byte type.
std::size_t command_body_size(std::uint32_t type) {
    switch (type) {
        case cookie:
        case association_group_id: return 16;
        default: return 4;
    }
}

struct Layout {
    RtsChannelPdu pdu;
    std::uint16_t flags;
    std::size_t count;
    std::array<std::uint32_t, 6> commands;
};

// MS-RPCH 2.2.4: the commands of each PDU, in order. The virtual connection
// cookie is the second command of all four.
constexpr std::array layouts{
    Layout{RtsChannelPdu::conn_a1, rts_flag_none, 4, {version, cookie, cookie, receive_window_size}},
    Layout{RtsChannelPdu::conn_b1,
           rts_flag_none,
           6,
           {version, cookie, cookie, channel_lifetime, client_keepalive, association_group_id}},
    Layout{RtsChannelPdu::in_r1_a1, rts_flag_recycle_channel, 4, {version, cookie, cookie, cookie}},
    Layout{RtsChannelPdu::out_r1_a3, rts_flag_recycle_channel, 5, {version, cookie, cookie, cookie, receive_window_size}},
};

RtsChannelStart not_one() { return {}; }

RtsChannelStart need(std::size_t bytes) {
    RtsChannelStart out;
    out.status = RtsChannelStart::Status::need_more;
    out.need = bytes;
    return out;
}

}  // namespace

const char* to_string(RtsChannelPdu pdu) {
    switch (pdu) {
        case RtsChannelPdu::conn_a1: return "CONN/A1";
        case RtsChannelPdu::conn_b1: return "CONN/B1";
        case RtsChannelPdu::in_r1_a1: return "IN_R1/A1";
        case RtsChannelPdu::out_r1_a3: return "OUT_R1/A3";
    }
    return "?";
}

RtsChannelStart read_rts_channel_start(std::span<const std::uint8_t> bytes) {
    // Refuse what the bytes at hand already rule out before asking for more,
    // so that a body of something else is never waited on.
    const std::size_t have = bytes.size();
    if (have >= 1 && bytes[0] != rpc_version) return not_one();
    if (have >= 2 && bytes[1] != rpc_version_minor) return not_one();
    if (have >= 3 && bytes[2] != ptype_rts) return not_one();
    if (have >= 5 && bytes[4] != drep_little_endian) return not_one();
    if (have < rts_header_size) return need(rts_header_size);

    const std::size_t frag_length = read16(bytes, 8);
    const std::uint16_t auth_length = read16(bytes, 10);
    if (frag_length < rts_header_size || frag_length > rts_channel_start_limit || auth_length != 0) return not_one();
    const std::uint16_t flags = read16(bytes, 16);
    const std::size_t count = read16(bytes, 18);
    const auto layout = std::find_if(layouts.begin(), layouts.end(), [&](const Layout& candidate) {
        return candidate.flags == flags && candidate.count == count;
    });
    if (layout == layouts.end()) return not_one();
    if (have < frag_length) return need(frag_length);

    // Walk the commands: each of the layout's type, each whole within the
    // fragment, and nothing after the last.
    std::size_t at = rts_header_size;
    std::size_t cookie_at = 0;
    for (std::size_t i = 0; i < layout->count; ++i) {
        if (frag_length - at < 4) return not_one();
        const std::uint32_t type = read32(bytes, at);
        if (type != layout->commands[i]) return not_one();
        const std::size_t size = command_body_size(type);
        if (frag_length - at - 4 < size) return not_one();
        if (i == 1) cookie_at = at + 4;
        at += 4 + size;
    }
    if (at != frag_length) return not_one();

    RtsChannelStart out;
    out.status = RtsChannelStart::Status::found;
    out.pdu = layout->pdu;
    std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(cookie_at), out.cookie.size(), out.cookie.begin());
    return out;
}

std::uint64_t hash_virtual_connection(const VirtualConnectionCookie& cookie) {
    return stable_hash(std::span<const std::uint8_t>(cookie));
}

}  // namespace castellan::persistence
