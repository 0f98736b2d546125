// The DCE/RPC exchange of a dcerpc health check (C706 chapter 12, MS-RPCE 2.2.2):
// the bind PDU castellan sends for one interface, and what a real server's answer
// says. Port 135 and Exchange's static RPC ports accept TCP connections even when
// the RPC service behind them is wedged; a bind_ack for the interface is the
// real sign of life. Pure functions; untrusted input is refused, never asserted on.
#pragma once

#include "conf/config.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace castellan::healthcheck {

// The bind PDU (72 bytes, little-endian data representation) asking for
// `interface` with the NDR transfer syntax, one presentation context.
std::string build_dcerpc_bind(const conf::RpcInterface& interface, std::uint32_t call_id);

// Where a server's answer stands after `received` (all the bytes read so far).
struct DcerpcReplyScan {
    enum class State {
        incomplete,  // not a whole PDU yet
        accepted,    // bind_ack accepting the presentation context
        refused,     // bind_nak, or a bind_ack rejecting the interface
        malformed,   // not a DCE/RPC connection-oriented reply to a bind
    };
    State state = State::incomplete;
    std::string detail;  // for the status page: "bind_ack", "bind_nak reason 4", ...
};
DcerpcReplyScan scan_dcerpc_bind_reply(std::string_view received);

// The largest reply PDU read: a bind_ack for one context is about 60 bytes plus
// the secondary address.
inline constexpr std::size_t max_dcerpc_reply_bytes = 4096;

}  // namespace castellan::healthcheck
