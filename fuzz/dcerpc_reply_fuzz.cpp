// libFuzzer target for the dcerpc health check's reply scanner
// (healthcheck/dcerpc_bind.cpp; scripts/fuzz.sh builds and runs it): a real
// server's port answers whatever it likes, and the scan reads it before
// anything else. Besides crashes and out-of-bounds reads (ASan, UBSan), it
// checks the scan's promises; a broken property aborts with its name:
//   - a decided answer (accepted, refused, malformed) stays decided, the same,
//     when more bytes follow: the check reads no further once it has one;
//   - an undecided prefix never exceeds the largest reply the check reads;
//   - only a bind_ack is ever accepted.
#include "healthcheck/dcerpc_bind.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using castellan::healthcheck::DcerpcReplyScan;
using castellan::healthcheck::max_dcerpc_reply_bytes;
using castellan::healthcheck::scan_dcerpc_bind_reply;

void check(bool holds, const char* property) {
    if (holds) return;
    std::fprintf(stderr, "dcerpc_reply_fuzz: broken property: %s\n", property);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const DcerpcReplyScan whole = scan_dcerpc_bind_reply(input);
    if (whole.state == DcerpcReplyScan::State::accepted) {
        check(input.size() >= 16 && static_cast<std::uint8_t>(input[2]) == 12, "only a bind_ack is accepted");
    }
    // Every prefix: once one decides, the rest of the input changes nothing.
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        const DcerpcReplyScan prefix = scan_dcerpc_bind_reply(input.substr(0, cut));
        if (prefix.state == DcerpcReplyScan::State::incomplete) {
            check(cut <= max_dcerpc_reply_bytes, "an undecided reply stays within the read limit");
            continue;
        }
        check(prefix.state == whole.state, "a decided answer does not change when bytes follow");
        check(prefix.detail == whole.detail, "a decided answer's reason does not change when bytes follow");
        break;
    }
    return 0;
}
