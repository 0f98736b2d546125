#include "healthcheck/dcerpc_bind.hpp"

#include <array>

namespace castellan::healthcheck {

namespace {

constexpr std::uint8_t ptype_bind = 11;
constexpr std::uint8_t ptype_bind_ack = 12;
constexpr std::uint8_t ptype_bind_nak = 13;
constexpr std::uint8_t first_and_last_fragment = 0x03;
constexpr std::size_t header_bytes = 16;
// What castellan offers to send and take per fragment: the usual Windows value.
constexpr std::uint16_t max_fragment = 4280;

// The NDR transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 version 2.0, as
// it goes on the wire (little-endian fields first).
constexpr std::array<std::uint8_t, 20> ndr_syntax{0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8,
                                                  0x08, 0x00, 0x2b, 0x10, 0x48, 0x60, 0x02, 0x00, 0x00, 0x00};

void put16(std::string& out, std::uint16_t value) {
    out.push_back(static_cast<char>(value & 0xff));
    out.push_back(static_cast<char>(value >> 8));
}

void put32(std::string& out, std::uint32_t value) {
    put16(out, static_cast<std::uint16_t>(value & 0xffff));
    put16(out, static_cast<std::uint16_t>(value >> 16));
}

// Reads integers of the PDU in the byte order its header declares.
class Reader {
public:
    Reader(std::string_view bytes, bool little_endian) : bytes_(bytes), little_(little_endian) {}
    bool has(std::size_t at, std::size_t size) const { return at <= bytes_.size() && size <= bytes_.size() - at; }
    std::uint8_t u8(std::size_t at) const { return static_cast<std::uint8_t>(bytes_[at]); }
    std::uint16_t u16(std::size_t at) const {
        const auto a = u8(at), b = u8(at + 1);
        return static_cast<std::uint16_t>(little_ ? (a | b << 8) : (a << 8 | b));
    }

private:
    std::string_view bytes_;
    bool little_;
};

}  // namespace

std::string build_dcerpc_bind(const conf::RpcInterface& interface, std::uint32_t call_id) {
    std::string out;
    out.reserve(72);
    out.push_back(5);  // rpc_vers
    out.push_back(0);  // rpc_vers_minor
    out.push_back(static_cast<char>(ptype_bind));
    out.push_back(static_cast<char>(first_and_last_fragment));
    out.append({'\x10', '\0', '\0', '\0'});  // little-endian integers, ASCII, IEEE floats
    put16(out, 72);                            // frag_length
    put16(out, 0);                             // auth_length
    put32(out, call_id);
    put16(out, max_fragment);  // max_xmit_frag
    put16(out, max_fragment);  // max_recv_frag
    put32(out, 0);             // assoc_group_id: a new association
    out.push_back(1);          // one presentation context
    out.append(3, '\0');
    put16(out, 0);     // its id
    out.push_back(1);  // one transfer syntax
    out.push_back(0);
    // The interface's UUID in NDR: the first three fields little-endian, the
    // last eight bytes as written.
    const auto& id = interface.uuid;
    out.append({static_cast<char>(id[3]), static_cast<char>(id[2]), static_cast<char>(id[1]), static_cast<char>(id[0]),
                static_cast<char>(id[5]), static_cast<char>(id[4]), static_cast<char>(id[7]), static_cast<char>(id[6])});
    for (std::size_t i = 8; i < 16; ++i) out.push_back(static_cast<char>(id[i]));
    put16(out, interface.major);
    put16(out, interface.minor);
    out.append(reinterpret_cast<const char*>(ndr_syntax.data()), ndr_syntax.size());
    return out;
}

DcerpcReplyScan scan_dcerpc_bind_reply(std::string_view received) {
    using State = DcerpcReplyScan::State;
    if (received.size() < header_bytes) {
        // Decide early on bytes that cannot begin a reply (an HTTP or SMTP banner).
        if (!received.empty() && received[0] != 5) return {State::malformed, "not a DCE/RPC reply"};
        return {};
    }
    if (received[0] != 5 || received[1] != 0) return {State::malformed, "not a DCE/RPC reply"};
    const Reader header(received, (static_cast<std::uint8_t>(received[4]) & 0x10) != 0);
    const std::uint16_t fragment = header.u16(8);
    if (fragment < header_bytes || fragment > max_dcerpc_reply_bytes) return {State::malformed, "bad DCE/RPC fragment length"};
    if (received.size() < fragment) return {};
    const std::string_view pdu = received.substr(0, fragment);
    const Reader r(pdu, (static_cast<std::uint8_t>(pdu[4]) & 0x10) != 0);
    const std::uint8_t type = r.u8(2);
    if (type == ptype_bind_nak) {
        if (!r.has(16, 2)) return {State::refused, "bind_nak"};
        return {State::refused, "bind_nak reason " + std::to_string(r.u16(16))};
    }
    if (type != ptype_bind_ack) return {State::malformed, "DCE/RPC reply of type " + std::to_string(type)};
    // bind_ack: max_xmit_frag, max_recv_frag, assoc_group_id, then the
    // secondary address (length-prefixed), padding to 4, then the results.
    if (!r.has(24, 2)) return {State::malformed, "short bind_ack"};
    const std::size_t address_length = r.u16(24);
    std::size_t at = 26 + address_length;
    at = (at + 3) & ~std::size_t{3};
    if (!r.has(at, 4)) return {State::malformed, "short bind_ack"};
    if (r.u8(at) < 1) return {State::malformed, "bind_ack without results"};
    if (!r.has(at + 4, 4)) return {State::malformed, "short bind_ack"};
    const std::uint16_t result = r.u16(at + 4);
    const std::uint16_t reason = r.u16(at + 6);
    if (result == 0) return {State::accepted, "bind_ack"};
    return {State::refused, "bind_ack rejecting the interface (result " + std::to_string(result) + ", reason " +
                                std::to_string(reason) + ")"};
}

}  // namespace castellan::healthcheck
