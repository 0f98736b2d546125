// The open sessions of one worker and their deadlines: the control thread can
// have some of them closed (on_server_down: close, a drain) by posting to that
// worker, and the worker closes those whose time is up (close_expired()).
#pragma once

#include "proxy/deadline_queue.hpp"
#include "proxy/pump.hpp"
#include "proxy/runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>

namespace castellan::proxy {

// What a session publishes of itself from accept to close. Lives in the
// session's coroutine frame; registered for exactly that long. Fields are filled
// as the session reaches them: `server`, `backend` and `activity` once a real
// server is connected. The base is its place in the worker's deadline queue.
//
// A deadline that gets earlier must be told to the registry (begin_phase(),
// reschedule()); one that gets later needs nothing: a byte moving only stores
// `activity->last`, and the registry finds the later deadline when the
// recorded one comes.
struct LiveSession : DeadlineEntry {
    LiveSession() = default;
    LiveSession(const ServiceRuntime* service, boost::asio::ip::tcp::socket* client) : service(service), client(client) {}

    const ServiceRuntime* service = nullptr;
    const RealServerRuntime* server = nullptr;
    boost::asio::ip::tcp::socket* client = nullptr;
    boost::asio::ip::tcp::socket* backend = nullptr;
    // The deadline of the phase before the bytes flow (the TLS handshake, a
    // passthrough ClientHello, an http request head), and the close reason when
    // it passes; none once the phase is over. Set with begin_phase() and
    // end_phase(). Connect attempts time themselves (connect_ms each).
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
// list, so that registering costs no allocation on the connection path, and a
// DeadlineQueue, so that a session's deadlines cost nothing until they come
// (or get earlier).
class SessionRegistry {
public:
    using time_point = std::chrono::steady_clock::time_point;

    // `now`: the time the deadline queue starts from.
    explicit SessionRegistry(time_point now = std::chrono::steady_clock::now()) : deadlines_(now) {}
    SessionRegistry(const SessionRegistry&) = delete;
    SessionRegistry& operator=(const SessionRegistry&) = delete;

    void add(LiveSession& session);
    void remove(LiveSession& session);  // O(1), its deadline included
    std::size_t size() const { return size_; }

    // Starts the phase that must end by `started + limit`, or be closed with
    // `reason` (a string literal: "handshake_timeout", ...). O(1).
    void begin_phase(LiveSession& session, time_point started, std::chrono::milliseconds limit, const char* reason);
    // Ends it, filing the session for its next deadline (idle, drain) if it
    // has one. O(1).
    void end_phase(LiveSession& session);
    // After `activity`, `idle` or `server` changed (a server connected, a new
    // byte counter): files the session again if its next deadline got earlier
    // than the one recorded (a server connected while draining, the idle
    // deadline of a session that had none). O(1).
    void reschedule(LiveSession& session);
    // A server's admin state turned draining: each session on it (whichever
    // snapshot it came from) gets the deadline its service's drain_timeout_s
    // gives. A walk over every session, once per drain asked for.
    void drain_started(const ServerState& server);

    // Closes both sockets of every session `select` picks, recording `reason`;
    // their pumps then end and the sessions finish as usual. Gives the count.
    // A walk over every session: for events (a server down), not for ticks.
    std::size_t close_if(const std::function<bool(const LiveSession&)>& select, const char* reason);
    // Closes every session for which `reason_for` gives a reason (not nullptr).
    std::size_t close_where(const std::function<const char*(const LiveSession&)>& reason_for);

    // Closes the sessions whose time is up at `now`: a phase past its deadline
    // (its `phase_timeout`), no byte either way for their `idle`
    // ("idle_timeout"), or a real server draining for longer than its service's
    // drain_timeout_s ("drain_timeout"). Looks only at the sessions whose
    // recorded deadline has come; those that moved a byte since are filed
    // again for their new deadline. O(1) plus O(1) per session looked at.
    struct Expired {
        std::size_t looked_at = 0;  // sessions whose recorded deadline had come
        std::size_t closed = 0;
    };
    Expired close_expired(time_point now);
    // When close_expired() next has something to look at; time_point::max()
    // when nothing is timed.
    time_point next_due() const { return deadlines_.next_due(); }
    // Wakes the owner's timer: set_wake_time(t) says the timer is set for due
    // time t; the first session filed due before t afterwards calls `call` (on
    // the worker's thread, once per set_wake_time()), so that the timer can be
    // brought forward. Cheap: a comparison per filing.
    void on_earlier_due(std::function<void()> call) { on_earlier_due_ = std::move(call); }
    void set_wake_time(time_point due) { wake_ = due; }
    const DeadlineQueue& deadlines() const { return deadlines_; }

private:
    void file(LiveSession& session, time_point deadline, std::chrono::steady_clock::duration span);
    void close(LiveSession& session, const char* reason);

    LiveSession* first_ = nullptr;
    std::size_t size_ = 0;
    DeadlineQueue deadlines_;
    time_point wake_ = time_point::max();
    std::function<void()> on_earlier_due_;
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
