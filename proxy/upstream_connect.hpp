// Choosing a real server for a new client and connecting to it, with failover.
#pragma once

#include "persistence/client_key.hpp"
#include "proxy/runtime.hpp"
#include "tls/openssl_handles.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

namespace castellan::proxy {

// One connection counted in a real server's `active` (what least_connections
// reads, and the status shows) from the moment its connect starts until it is
// released: a burst of connects (every Outlook after a failover) sees the ones
// still in flight instead of piling onto the server that looked idle.
class ActiveClaim {
public:
    ActiveClaim() = default;
    explicit ActiveClaim(std::atomic<std::uint32_t>& counter) : counter_(&counter) {
        counter_->fetch_add(1, std::memory_order_relaxed);
    }
    ActiveClaim(ActiveClaim&& other) noexcept : counter_(std::exchange(other.counter_, nullptr)) {}
    ActiveClaim& operator=(ActiveClaim&& other) noexcept {
        if (this != &other) {
            release();
            counter_ = std::exchange(other.counter_, nullptr);
        }
        return *this;
    }
    ActiveClaim(const ActiveClaim&) = delete;
    ActiveClaim& operator=(const ActiveClaim&) = delete;
    ~ActiveClaim() { release(); }
    void release() {
        if (counter_) counter_->fetch_sub(1, std::memory_order_relaxed);
        counter_ = nullptr;
    }

private:
    std::atomic<std::uint32_t>* counter_ = nullptr;
};

struct UpstreamConnection {
    boost::asio::ip::tcp::socket socket;
    tls::SslPtr tls;  // re-encrypting services: the session on `socket` (declared after it: freed first)
    RealServerRuntime* server;
    bool persisted;      // counted in the source-IP table: release it at close
    ActiveClaim active;  // counted in server->state->traffic.active while this lives
};

// Connects to a real server of `service` for the client `client`:
// 1. `preferred` (the server its persistence cookie names), else its
//    source-IP persistent server, if it has one and that server is eligible;
// 2. otherwise (and after each failure) the scheduler's pick among the eligible
//    servers not yet tried by this connection; with `pairing_key` (the hash of
//    an Outlook Anywhere channel's virtual connection cookie, rpc_http) the
//    service's channel_pairing hash picks instead, and the source-IP table is
//    neither read nor bound: both channels of a session fail over alike, each
//    to the next server of the same rendezvous order.
// Eligible = enabled and not skipped by passive health. Each attempt has
// `connect_ms`, the TLS handshake of a re-encrypting service included; a
// refused or timed-out attempt, or a failed handshake, counts as a connect
// failure of that server and the next candidate is tried, before the client has
// seen any byte.
// With source_addresses, the socket is bound to the server's turn of the
// addresses of its family (IP_BIND_ADDRESS_NO_PORT), the next ones tried while
// this host has no port left on one, or lacks the address. A transparent
// service binds it to `client_address` instead (transparent_source.hpp).
// Gives null when no candidate is left, with `failure` saying why
// ("no_server_available"), or when this host lacks what the connect needs:
// "local_ports_exhausted" (no ephemeral port left for this server from any
// source address), "source_address_unavailable" (no source address of the
// server's family is on this host), "out_of_resources" (descriptors, memory),
// "transparent_bind_failed" (the socket could not take the client's address).
// Those are castellan's failures, not the real server's: counted in its
// local_connect_failures, never in connect_failures or against its health, no
// other server is tried, and they are logged at most once per 10 s per server
// and kind (healthcheck/local_shortage.hpp). On success the persistence entry
// is (re)bound to the chosen server and counts this connection.
// Runs on the connection's worker thread.
boost::asio::awaitable<std::unique_ptr<UpstreamConnection>> connect_upstream(ServiceRuntime& service,
                                                                          const persistence::ClientKey& client,
                                                                          const boost::asio::ip::address& client_address,
                                                                          const char*& failure,
                                                                          std::optional<std::size_t> preferred = std::nullopt,
                                                                          std::optional<std::uint64_t> pairing_key = std::nullopt);

// The server the channel_pairing hash gives `pairing_key` now, among the
// servers that take new clients: where connect_upstream() with that key goes
// first. Nullopt without rpc_http persistence or without an eligible server.
std::optional<std::size_t> paired_server(const ServiceRuntime& service, std::uint64_t pairing_key);

}  // namespace castellan::proxy
