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
    return close_where([&](const LiveSession& session) { return select(session) ? reason : nullptr; });
}

std::size_t SessionRegistry::close_where(const std::function<const char*(const LiveSession&)>& reason_for) {
    std::size_t closed = 0;
    for (LiveSession* session = first_; session; session = session->next) {
        if (session->closed_because) continue;
        const char* reason = reason_for(*session);
        if (!reason) continue;
        session->closed_because = reason;
        boost::system::error_code ignored;
        // cancel() first: a pump suspended on the socket completes with
        // operation_aborted instead of touching a closed descriptor.
        session->client->cancel(ignored);
        session->client->close(ignored);
        if (session->backend) {
            session->backend->cancel(ignored);
            session->backend->close(ignored);
        }
        ++closed;
    }
    return closed;
}

std::size_t SessionRegistry::close_expired(std::chrono::steady_clock::time_point now) {
    return close_where([now](const LiveSession& session) -> const char* {
        if (now >= session.phase_deadline) return session.phase_timeout;
        if (session.activity && session.idle.count() > 0 && now - session.activity->last >= session.idle) {
            return "idle_timeout";
        }
        if (!session.service || !session.server) return nullptr;
        const auto& drain_timeout = session.service->config.drain_timeout_s;
        if (drain_timeout && session.server->drained_for(std::chrono::seconds(*drain_timeout), now)) {
            return "drain_timeout";
        }
        return nullptr;
    });
}

}  // namespace castellan::proxy
