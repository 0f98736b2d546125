// What outlives a runtime snapshot: counters, admin states and connection counts
// of virtual services and real servers.
//
// A snapshot holds only what a config determines. These objects are held by
// shared_ptr from the snapshot, and build_runtime() hands them to the next
// snapshot when the thing they describe did not change (same service name; same
// real-server name and address), so a reload keeps a drained server drained, its
// counters counting and least_connections seeing the connections of every
// generation. Sessions of an old snapshot keep writing into the same objects.
#pragma once

#include "healthcheck/local_shortage.hpp"
#include "proxy/log_throttle.hpp"
#include "tls/tls_io.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace castellan::proxy {

// Bytes moved, counted by the worker that moves them as they flow. Each worker
// writes only its own slot (a plain load and store, no locked instruction, no
// cache line shared with another worker); a reader sums the slots. A reader on
// another thread may see a slot a few bytes behind, never torn.
class ByteCounters {
public:
    struct alignas(64) Slot {
        std::atomic<std::uint64_t> in{0};   // from clients
        std::atomic<std::uint64_t> out{0};  // to clients
    };

    explicit ByteCounters(std::size_t workers);
    // The slot of worker `worker` (< workers). Write it on that worker only.
    Slot& slot(std::size_t worker) { return slots_[worker]; }
    std::uint64_t in() const;
    std::uint64_t out() const;

private:
    std::size_t count_;
    std::unique_ptr<Slot[]> slots_;
};

// Adds to a worker's slot. Only its owner writes it, so load + store suffices.
inline void add_to(std::atomic<std::uint64_t>& slot, std::uint64_t bytes) {
    slot.store(slot.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
}

struct TrafficCounters {
    explicit TrafficCounters(std::size_t workers) : bytes(workers) {}
    // Changed once per connection, by any worker: shared atomics.
    std::atomic<std::uint32_t> active{0};
    std::atomic<std::uint64_t> total{0};
    ByteCounters bytes;
};

// What the admin API (and the config's `enabled`) says of a real server.
enum class AdminState : std::uint8_t { enabled, draining, disabled };

// An admin state and, for `draining`, when the drain began, as one atomic value:
// a worker never sees `draining` with the start time of no drain or of another
// one (which would close every connection as drain_timeout at once).
class AdminStateCell {
public:
    using time_point = std::chrono::steady_clock::time_point;
    struct Value {
        AdminState state = AdminState::enabled;
        time_point since{};  // when the drain began; meaningful for draining only
    };

    explicit AdminStateCell(AdminState initial) : packed_(pack({initial, {}})) {}
    Value load() const { return unpack(packed_.load(std::memory_order_acquire)); }
    AdminState state() const { return load().state; }
    // Entering `draining` starts the drain clock at `now`; asking for a drain
    // again keeps the first start. Called by the control thread only, so the
    // read-then-store does not race with another change.
    void set(AdminState wanted, time_point now);

private:
    static std::uint64_t pack(Value value);
    static Value unpack(std::uint64_t packed);
    std::atomic<std::uint64_t> packed_;
};

// One real server as one virtual service uses it (same service name, server
// name and address).
struct ServerState {
    ServerState(std::size_t workers, AdminState initial) : admin(initial), traffic(workers) {}
    AdminStateCell admin;
    TrafficCounters traffic;  // active = this service's open connections to it
    std::atomic<std::uint64_t> connect_failures{0};  // the server refused, timed out, failed TLS
    // Connects to it that failed for want of something here (a local port, a
    // source address, descriptors, memory): castellan's failure, never counted
    // in connect_failures nor against its health.
    std::atomic<std::uint64_t> local_connect_failures{0};
    // One line per 10 s per kind of local failure (healthcheck::LocalShortage
    // as the index), however many clients fail.
    std::array<LogThrottle, healthcheck::local_shortage_kinds> local_failure_log;
};

// The client-side TLS handshakes of a service: once per connection, by any
// worker, so shared atomics.
struct TlsCounters {
    std::atomic<std::uint64_t> full{0};
    std::atomic<std::uint64_t> resumed{0};
    // By tls::HandshakeFailure (index 0, `none`, stays 0).
    std::array<std::atomic<std::uint64_t>, tls::handshake_failure_kinds> failures{};
    void count_failure(tls::HandshakeFailure failure) {
        failures[static_cast<std::size_t>(failure)].fetch_add(1, std::memory_order_relaxed);
    }
};

// The responses of an http-mode service by status class (1xx to 5xx; index 0
// counts requests that got none: the client left first). Once per request, by
// any worker, so shared atomics.
struct HttpCounters {
    std::array<std::atomic<std::uint64_t>, 6> responses{};
    void count_response(unsigned status) {
        const std::size_t index = status >= 100 && status < 600 ? status / 100 : 0;
        responses[index].fetch_add(1, std::memory_order_relaxed);
    }
};

// One virtual service, by name.
struct ServiceState {
    explicit ServiceState(std::size_t workers) : traffic(workers) {}
    TrafficCounters traffic;
    TlsCounters tls;
    HttpCounters http;
    // Slots taken by accepted connections and pending accepts, for
    // max_connections: connections of every generation count.
    std::atomic<std::int64_t> accept_slots{0};
};

}  // namespace castellan::proxy
