// libFuzzer target for the Outlook Anywhere channel reader
// (persistence/rts_channel_start.cpp; scripts/fuzz.sh builds and runs it): the
// first body bytes of every RPC_IN_DATA / RPC_OUT_DATA request of an rpc_http
// service reach it from the client. Besides crashes and out-of-bounds reads
// (ASan, UBSan), it checks the reader's promises; a broken property aborts with
// its name:
//   - a decided answer (found, not a channel start) stays the same, cookie
//     included, whatever bytes follow: the session reads no further once it has one;
//   - `need_more` asks for more than it was given, and never past the limit;
//   - a found cookie is the 16 bytes of the PDU's second command, within the
//     PDU's own fragment length.
#include "persistence/rts_channel_start.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

namespace {

using castellan::persistence::read_rts_channel_start;
using castellan::persistence::rts_channel_start_limit;
using castellan::persistence::RtsChannelStart;

void check(bool holds, const char* property) {
    if (holds) return;
    std::fprintf(stderr, "rts_channel_start_fuzz: broken property: %s\n", property);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> input(data, size);
    const RtsChannelStart whole = read_rts_channel_start(input);
    if (whole.status == RtsChannelStart::Status::found) {
        check(size >= 48, "a found PDU holds a header, a Version and a Cookie command");
        const std::size_t frag_length = static_cast<std::size_t>(data[8] | (data[9] << 8));
        check(frag_length <= size && frag_length <= rts_channel_start_limit, "a found PDU is whole and bounded");
        check(std::equal(whole.cookie.begin(), whole.cookie.end(), data + 32), "the cookie is the second command's");
    }
    if (whole.status == RtsChannelStart::Status::need_more) {
        check(whole.need > size, "need_more asks for more than it had");
        check(whole.need <= rts_channel_start_limit, "need_more stays under the limit");
    }
    for (std::size_t cut = 0; cut <= size; ++cut) {
        const RtsChannelStart prefix = read_rts_channel_start(input.first(cut));
        if (prefix.status == RtsChannelStart::Status::need_more) {
            check(prefix.need > cut, "a prefix's need_more asks for more than it had");
            continue;
        }
        check(prefix.status == whole.status, "a decided prefix stays decided the same way");
        if (prefix.status == RtsChannelStart::Status::found) {
            check(prefix.pdu == whole.pdu && prefix.cookie == whole.cookie, "a found prefix finds the same cookie");
        }
    }
    return 0;
}
