#include "proxy/session_registry.hpp"

namespace castellan::proxy {

namespace {

using time_point = std::chrono::steady_clock::time_point;

// When the session's server's drain passes its service's drain_timeout_s;
// max() when it is not draining or the service sets no limit.
time_point drain_deadline(const LiveSession& session) {
    if (!session.service || !session.server) return time_point::max();
    const auto& drain_timeout = session.service->config.drain_timeout_s;
    if (!drain_timeout) return time_point::max();
    const auto admin = session.server->state->admin.load();
    if (admin.state != AdminState::draining) return time_point::max();
    return admin.since + std::chrono::seconds(*drain_timeout);
}

// A session's next deadline and the span it was made from (its list in the
// DeadlineQueue; zero when not made as "some time + span").
struct NextDeadline {
    time_point at = time_point::max();
    std::chrono::steady_clock::duration span{0};
    void consider(time_point candidate, std::chrono::steady_clock::duration candidate_span) {
        if (candidate < at) {
            at = candidate;
            span = candidate_span;
        }
    }
};

NextDeadline next_deadline(const LiveSession& session) {
    NextDeadline next;
    // The phase's span is not kept: begin_phase() files it on its span's list;
    // looked at again (it had moved), it goes by powers of two.
    next.consider(session.phase_deadline, {});
    if (session.activity && session.idle.count() > 0) next.consider(session.activity->last + session.idle, session.idle);
    if (const auto drain = drain_deadline(session); drain != time_point::max()) {
        next.consider(drain, std::chrono::seconds(*session.service->config.drain_timeout_s));
    }
    return next;
}

// Why the session must close at `now`, or nullptr. In this order when several
// limits passed at once, as the sweep before the deadline queue checked them.
const char* expired_because(const LiveSession& session, time_point now) {
    if (now >= session.phase_deadline) return session.phase_timeout;
    if (session.activity && session.idle.count() > 0 && now - session.activity->last >= session.idle) {
        return "idle_timeout";
    }
    if (now >= drain_deadline(session)) return "drain_timeout";
    return nullptr;
}

}  // namespace

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
    deadlines_.remove(session);
}

void SessionRegistry::file(LiveSession& session, time_point deadline, std::chrono::steady_clock::duration span) {
    deadlines_.file(session, deadline, span);
    if (session.filed() && session.due() < wake_) {
        wake_ = time_point::min();  // once per set_wake_time()
        if (on_earlier_due_) on_earlier_due_();
    }
}

void SessionRegistry::begin_phase(LiveSession& session, time_point started, std::chrono::milliseconds limit,
                                  const char* reason) {
    session.phase_deadline = started + limit;
    session.phase_timeout = reason;
    if (!session.filed() || session.due() > session.phase_deadline) file(session, session.phase_deadline, limit);
}

void SessionRegistry::end_phase(LiveSession& session) {
    session.phase_deadline = time_point::max();
    // Filed now for what comes next: usually the idle deadline of a byte that
    // just moved, "now + idle_s", which its span's list takes as it is. Left
    // for the phase deadline to find, it would be an hour's deadline made from
    // a time seconds old, filed by powers of two (a few more looks).
    const NextDeadline next = next_deadline(session);
    if (next.at == time_point::max()) {
        deadlines_.remove(session);
    } else {
        file(session, next.at, next.span);
    }
}

void SessionRegistry::reschedule(LiveSession& session) {
    const NextDeadline next = next_deadline(session);
    if (next.at == time_point::max()) return;  // nothing timed; a recorded look finds that out
    if (session.filed() && session.due() <= next.at) return;
    file(session, next.at, next.span);
}

void SessionRegistry::drain_started(const ServerState& server) {
    for (LiveSession* session = first_; session; session = session->next) {
        if (session->server && session->server->state.get() == &server) reschedule(*session);
    }
}

void SessionRegistry::close(LiveSession& session, const char* reason) {
    session.closed_because = reason;
    boost::system::error_code ignored;
    // cancel() first: a pump suspended on the socket completes with
    // operation_aborted instead of touching a closed descriptor.
    session.client->cancel(ignored);
    session.client->close(ignored);
    if (session.backend) {
        session.backend->cancel(ignored);
        session.backend->close(ignored);
    }
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
        close(*session, reason);
        ++closed;
    }
    return closed;
}

SessionRegistry::Expired SessionRegistry::close_expired(time_point now) {
    Expired result;
    result.looked_at = deadlines_.expire(now, [&](DeadlineEntry& entry) {
        auto& session = static_cast<LiveSession&>(entry);
        if (session.closed_because) return;  // closing already: nothing more to time
        const time_point at = deadlines_.now();  // `now`, unless the caller's clock went back
        if (const char* reason = expired_because(session, at)) {
            close(session, reason);
            ++result.closed;
            return;
        }
        // Bytes moved (or the phase ended) since it was filed: its next
        // deadline, found only now, is later than `at`.
        const NextDeadline next = next_deadline(session);
        file(session, next.at, next.span);
    });
    return result;
}

}  // namespace castellan::proxy
