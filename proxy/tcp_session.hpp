// One client connection of a tcp-mode virtual service, from accept to close.
#pragma once

#include "proxy/pump.hpp"
#include "proxy/runtime.hpp"
#include "proxy/session_registry.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace castellan::proxy {

// What a worker lends to each of its sessions.
struct SessionEnvironment {
    std::size_t worker;                        // the worker's index: its slot in ByteCounters
    PumpTools pump_tools;                      // the worker's buffer and pipes
    SessionRegistry& registry;                 // the worker's open sessions
    std::atomic<std::int64_t>& live_sessions;  // all workers: for graceful stop
};

// TLS first when the service has it (terminate/reencrypt: castellan's own
// handshake; passthrough: the ClientHello read for its SNI), under
// handshake_ms; then chooses and connects a real server (with TLS for
// reencrypt) and moves bytes both ways until both sides have closed, an error,
// or `idle_s` without a byte in either direction.
// Logs one `close` line unless the config's access_log leaves it out (`errors`:
// only a reason other than `closed`; `off`: none). Keeps `runtime` alive for its
// whole life, so a reload never changes the settings of a running connection.
// Runs on one worker thread; `service` belongs to `runtime`.
boost::asio::awaitable<void> run_tcp_session(boost::asio::ip::tcp::socket client,
                                             boost::asio::ip::tcp::endpoint client_endpoint,
                                             std::shared_ptr<const Runtime> runtime, ServiceRuntime& service,
                                             SessionEnvironment environment);

}  // namespace castellan::proxy
