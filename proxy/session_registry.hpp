// The open sessions of one worker, so that the control thread can have some of
// them closed (on_server_down: close) by posting to that worker.
#pragma once

#include "proxy/runtime.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <unordered_set>

namespace castellan::proxy {

// What a session publishes of itself while it splices. Lives in the session's
// coroutine frame; registered for exactly that long.
struct LiveSession {
    const ServiceRuntime* service = nullptr;
    const RealServerRuntime* server = nullptr;
    boost::asio::ip::tcp::socket* client = nullptr;
    boost::asio::ip::tcp::socket* backend = nullptr;
    const char* closed_because = nullptr;  // set when closed from outside
};

// Owned by one worker and touched only on its thread: no lock.
class SessionRegistry {
public:
    void add(LiveSession& session) { sessions_.insert(&session); }
    void remove(LiveSession& session) { sessions_.erase(&session); }

    // Closes both sockets of every session `select` picks, recording `reason`;
    // their pumps then end and the sessions finish as usual. Gives the count.
    std::size_t close_if(const std::function<bool(const LiveSession&)>& select, const char* reason);

private:
    std::unordered_set<LiveSession*> sessions_;
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
