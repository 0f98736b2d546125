// The first RTS PDU of an Outlook Anywhere channel (MS-RPCH, RPC over HTTP v2):
// which virtual connection the channel belongs to.
//
// Outlook opens two HTTP requests per session, RPC_IN_DATA and RPC_OUT_DATA,
// usually on two TCP connections. The first bytes of each body are an RTS PDU
// naming the session's 16-byte virtual connection cookie: CONN/B1 on the IN
// channel, CONN/A1 on the OUT channel, and when a channel is recycled
// IN_R1/A1 (or IN_R2/A1) and OUT_R1/A3 (or OUT_R2/A3) on its successor. The
// RPC proxy of the CAS joins the channels by that cookie, so a balancer that
// hashes it sends both to the same CAS with no state of its own.
//
// Pure: bytes in, a verdict out. Anything that is not one of those four PDUs,
// exactly as MS-RPCH 2.2.4 lays them out, is `not_channel_start`; the caller
// then places the request some other way (a PDU never fails a request).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace castellan::persistence {

using VirtualConnectionCookie = std::array<std::uint8_t, 16>;

enum class RtsChannelPdu {
    conn_a1,    // OUT channel, new virtual connection (MS-RPCH 2.2.4.2)
    conn_b1,    // IN channel, new virtual connection (2.2.4.5)
    in_r1_a1,   // successor IN channel (2.2.4.10; IN_R2/A1, 2.2.4.18, is laid out alike)
    out_r1_a3,  // successor OUT channel (2.2.4.25; OUT_R2/A3 alike)
};

const char* to_string(RtsChannelPdu);

struct RtsChannelStart {
    enum class Status {
        need_more,          // give at least `need` bytes (the body may be shorter: then it is not one)
        found,              // `pdu` and `cookie` hold the answer
        not_channel_start,  // not one of the four PDUs, or malformed
    };
    Status status = Status::not_channel_start;
    std::size_t need = 0;
    RtsChannelPdu pdu = RtsChannelPdu::conn_a1;
    VirtualConnectionCookie cookie{};
};

// The largest first PDU this reads: the four PDUs are 76 to 104 bytes; a
// fragment longer than this is not one of them.
inline constexpr std::size_t rts_channel_start_limit = 256;

// Reads the start of a channel's body. `bytes` may be shorter than the PDU:
// then `need_more` says how many bytes a decision takes (never more than
// rts_channel_start_limit).
RtsChannelStart read_rts_channel_start(std::span<const std::uint8_t> bytes);

// The stable hash of a virtual connection cookie, the key of the weighted
// consistent hash that places both channels (the same on every build and
// machine, so two balancers agree).
std::uint64_t hash_virtual_connection(const VirtualConnectionCookie& cookie);

}  // namespace castellan::persistence
