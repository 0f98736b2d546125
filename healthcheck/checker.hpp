// One active check of one real server: the protocol hooks (tcp, http, https, smtp,
// none) under one deadline. The monitor (healthcheck/monitor.hpp) owns the timers,
// the jitter and the rise/fall thresholds and calls run_check once per interval.
#pragma once

#include "conf/config.hpp"
#include "healthcheck/check_result.hpp"
#include "tls/upstream_tls.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <optional>
#include <string>

namespace castellan::healthcheck {

// What a check needs besides its definition, made once per (real server, check).
struct CheckContext {
    std::string host;  // Host header: check.host, else the real server's address text "HOST:PORT" as configured
    // https: the client TLS of the check definition (shared with every server it
    // checks), and this server's resumable session.
    std::shared_ptr<const tls::UpstreamTls> tls;
    std::shared_ptr<tls::SessionSlot> tls_session = std::make_shared<tls::SessionSlot>();
    std::optional<std::string> sni;  // check.sni, else check.host when it is a DNS name
};

// Runs one check of `check` against `endpoint` (the check's port already applied)
// and gives its result; never throws. The whole check — connect, TLS handshake,
// request and answer — is bounded by check.timeout_ms: a server that accepts and
// never answers fails with "timeout after N ms". smtp sends QUIT after the banner
// (best effort, within the same deadline, without changing the result).
// https: SNI is context.sni; the certificate is verified only when check.verify
// (by context.tls's verify mode and CAs, and against context.sni when there is
// one). The TLS code is the one re-encrypted connections use (tls/).
// The check connects from the kernel's choice of local address, not from the
// service's source_addresses: it tests the server, and a source address
// missing on this host is castellan's problem, logged by the proxy, not a
// reason to mark every server down. A connect that fails for want of
// something here (no local port left, no descriptor) gives a result with
// `local` set, which the monitor does not count.
// Runs on the calling coroutine's executor (the control thread's loop); the
// arguments must stay alive until it completes.
boost::asio::awaitable<CheckResult> run_check(const conf::HealthCheck& check,
                                              const boost::asio::ip::tcp::endpoint& endpoint,
                                              const CheckContext& context);

}  // namespace castellan::healthcheck
