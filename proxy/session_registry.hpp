// The open sessions of one worker, so that the control thread can have some of
// them closed (on_server_down: close) by posting to that worker.
#pragma once

#include "proxy/pump.hpp"
#include "proxy/runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <functional>

namespace castellan::proxy {

// What a session publishes of itself from accept to close. Lives in the
// session's coroutine frame; registered for exactly that long. Fields are filled
// as the session reaches them: `server`, `backend` and `activity` once a real
// server is connected.
struct LiveSession {
    const ServiceRuntime* service = nullptr;
    const RealServerRuntime* server = nullptr;
    boost::asio::ip::tcp::socket* client = nullptr;
    boost::asio::ip::tcp::socket* backend = nullptr;
    // The deadline of the phase before the bytes flow (the TLS handshake, or a
    // passthrough ClientHello), and the close reason when it passes; none once
    // the phase is over. Connect attempts time themselves (connect_ms each).
    std::chrono::steady_clock::time_point phase_deadline = std::chrono::steady_clock::time_point::max();
    const char* phase_timeout = nullptr;
    const Activity* activity = nullptr;      // when a byte last moved either way
    std::chrono::seconds idle{0};            // timeouts.idle_s of its service
    const char* closed_because = nullptr;  // set when closed from outside

    // The registry's links: a session registers without allocating.
    LiveSession* previous = nullptr;
    LiveSession* next = nullptr;
};

// Owned by one worker and touched only on its thread: no lock. An intrusive
// list, so that registering costs no allocation on the connection path.
class SessionRegistry {
public:
    void add(LiveSession& session);
    void remove(LiveSession& session);
    std::size_t size() const { return size_; }

    // Closes both sockets of every session `select` picks, recording `reason`;
    // their pumps then end and the sessions finish as usual. Gives the count.
    std::size_t close_if(const std::function<bool(const LiveSession&)>& select, const char* reason);
    // Closes every session for which `reason_for` gives a reason (not nullptr).
    std::size_t close_where(const std::function<const char*(const LiveSession&)>& reason_for);
    // Closes the sessions whose time is up: a phase past its deadline (its
    // `phase_timeout`), no byte either way for their `idle` ("idle_timeout"), or a real server draining for longer than its service's
    // drain_timeout_s ("drain_timeout"). One sweep per worker every fraction of a
    // second costs less than a timer per connection; both limits are in seconds.
    std::size_t close_expired(std::chrono::steady_clock::time_point now);

private:
    LiveSession* first_ = nullptr;
    std::size_t size_ = 0;
};

// Registers a session for the life of a scope.
class RegisteredSession {
public:
    RegisteredSession(SessionRegistry& registry, LiveSession& session) : registry_(registry), session_(session) {
        registry_.add(session_);
    }
    ~RegisteredSession() { registry_.remove(session_); }
    RegisteredSession(const RegisteredSession&) = delete;
    RegisteredSession& operator=(const RegisteredSession&) = delete;

private:
    SessionRegistry& registry_;
    LiveSession& session_;
};

}  // namespace castellan::proxy
