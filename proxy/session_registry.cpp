#include "proxy/session_registry.hpp"

namespace castellan::proxy {

void SessionRegistry::add(LiveSession& session) {
    session.previous = nullptr;
    session.next = first_;
    if (first_) first_->previous = &session;
    first_ = &session;
    ++size_;
}

void SessionRegistry::remove(LiveSession& session) {
    if (session.previous) {
        session.previous->next = session.next;
    } else {
        first_ = session.next;
    }
    if (session.next) session.next->previous = session.previous;
    session.previous = session.next = nullptr;
    --size_;
}

std::size_t SessionRegistry::close_if(const std::function<bool(const LiveSession&)>& select, const char* reason) {
    std::size_t closed = 0;
    for (LiveSession* session = first_; session; session = session->next) {
        if (session->closed_because || !select(*session)) continue;
        session->closed_because = reason;
        boost::system::error_code ignored;
        // cancel() first: a pump suspended on the socket completes with
        // operation_aborted instead of touching a closed descriptor.
        session->client->cancel(ignored);
        session->backend->cancel(ignored);
        session->client->close(ignored);
        session->backend->close(ignored);
        ++closed;
    }
    return closed;
}

}  // namespace castellan::proxy

namespace castellan::proxy {

std::size_t SessionRegistry::close_idle(std::chrono::steady_clock::time_point now) {
    return close_if(
        [now](const LiveSession& session) {
            return session.activity && session.idle.count() > 0 && now - session.activity->last >= session.idle;
        },
        "idle_timeout");
}

}  // namespace castellan::proxy
