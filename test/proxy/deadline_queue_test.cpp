#include "proxy/deadline_queue.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

using castellan::proxy::DeadlineEntry;
using castellan::proxy::DeadlineQueue;
using namespace std::chrono_literals;
using time_point = std::chrono::steady_clock::time_point;
using duration = std::chrono::steady_clock::duration;

namespace {

const time_point t0 = time_point(24h);  // any steady_clock time

// Something timed, as a session is: a deadline that may move later without
// telling the queue, found out when the queue hands it back.
struct Timed : DeadlineEntry {
    Timed(int id, time_point deadline, duration span = {}) : id(id), deadline(deadline), span(span) {}
    int id;
    time_point deadline;
    duration span;  // what `deadline` was made from, if anything
    int looks = 0;
    time_point expired_at = time_point::max();
};

// Hands back what is due at `now`; an entry whose deadline passed expires,
// any other is filed again for its deadline (the lazy re-filing).
std::vector<int> tick(DeadlineQueue& queue, time_point now) {
    std::vector<int> expired;
    queue.expire(now, [&](DeadlineEntry& entry) {
        auto& timed = static_cast<Timed&>(entry);
        ++timed.looks;
        CHECK(timed.expired_at == time_point::max());  // never handed back after it expired
        if (queue.now() >= timed.deadline) {
            timed.expired_at = queue.now();
            expired.push_back(timed.id);
        } else {
            queue.file(timed, timed.deadline, timed.span);
        }
    });
    return expired;
}

// Ticks every `step` from `from` to `to` (inclusive).
void run(DeadlineQueue& queue, time_point from, time_point to, duration step) {
    for (time_point now = from; now <= to; now += step) tick(queue, now);
}

}  // namespace

TEST_CASE("deadline queue: deadlines of one span come back when they pass, in order, each looked at once",
          "[proxy][deadline_queue]") {
    DeadlineQueue queue(t0);
    std::deque<Timed> entries;
    // Filed as "now + 10 s" at increasing times, as sessions starting a phase.
    for (int i = 0; i < 50; ++i) {
        const time_point filed = t0 + i * 73ms;
        entries.emplace_back(i, filed + 10s, 10s);
        queue.file(entries.back(), entries.back().deadline, 10s);
    }
    CHECK(queue.size() == 50);
    CHECK(queue.next_due() == t0 + 10s);

    std::vector<int> order;
    for (time_point now = t0; now <= t0 + 20s; now += 100ms) {
        for (int id : tick(queue, now)) order.push_back(id);
    }
    REQUIRE(order.size() == 50);
    for (int i = 0; i < 50; ++i) {
        CHECK(order[i] == i);
        const auto& e = entries[i];
        CHECK(e.looks == 1);
        CHECK(e.expired_at >= e.deadline);
        CHECK(e.expired_at - e.deadline < 100ms);  // the first tick at or after it
    }
    CHECK(queue.size() == 0);
    CHECK(queue.next_due() == time_point::max());
}

TEST_CASE("deadline queue: any deadline is looked at by halves and never handed back late", "[proxy][deadline_queue]") {
    DeadlineQueue queue(t0);
    std::mt19937_64 random(7);
    std::uniform_int_distribution<std::int64_t> millis(0, 600'000);  // up to 10 minutes
    std::deque<Timed> entries;
    for (int i = 0; i < 2000; ++i) {
        entries.emplace_back(i, t0 + std::chrono::milliseconds(millis(random)));
        queue.file(entries.back(), entries.back().deadline, {});
    }
    const auto step = 10ms;
    run(queue, t0, t0 + 601s, step);
    CHECK(queue.size() == 0);
    for (const auto& e : entries) {
        INFO("deadline " << std::chrono::duration_cast<std::chrono::milliseconds>(e.deadline - t0).count() << " ms");
        CHECK(e.expired_at >= e.deadline);
        CHECK(e.expired_at - e.deadline < step);
        // log2(10 min / 1 ms) is under 20: a handful of early looks at most.
        CHECK(e.looks <= 21);
    }
}

TEST_CASE("deadline queue: a deadline pushed later is found when the recorded one comes and filed again",
          "[proxy][deadline_queue]") {
    DeadlineQueue queue(t0);
    // Idle 5 s from t0, on the 5 s span's list.
    Timed session(1, t0 + 5s, 5s);
    queue.file(session, session.deadline, session.span);

    // A byte at 3 s: the deadline moves to 8 s; the queue is not told.
    run(queue, t0, t0 + 3s, 100ms);
    session.deadline = t0 + 3s + 5s;
    CHECK(session.looks == 0);

    run(queue, t0 + 3100ms, t0 + 5s, 100ms);
    CHECK(session.looks == 1);  // looked at when the recorded deadline came...
    CHECK(session.expired_at == time_point::max());  // ...and filed again
    CHECK(session.filed());
    CHECK(session.due() <= t0 + 8s);
    CHECK(session.due() > t0 + 5s);

    run(queue, t0 + 5100ms, t0 + 9s, 100ms);
    CHECK(session.expired_at >= t0 + 8s);
    CHECK(session.expired_at < t0 + 8s + 100ms);
    CHECK(session.looks <= 5);
}

TEST_CASE("deadline queue: removal unlinks an entry in place, wherever it sits", "[proxy][deadline_queue]") {
    DeadlineQueue queue(t0);
    Timed a(1, t0 + 10s, 10s), b(2, t0 + 11s, 10s), c(3, t0 + 12s, 10s), d(4, t0 + 7s), e(5, t0);
    for (Timed* timed : {&a, &b, &c, &d, &e}) queue.file(*timed, timed->deadline, timed->span);
    CHECK(queue.size() == 5);
    queue.remove(b);  // the middle of a list
    queue.remove(a);  // its head
    queue.remove(d);  // alone in a power-of-two list
    queue.remove(e);  // overdue
    CHECK_FALSE(a.filed());
    CHECK(queue.size() == 1);
    queue.remove(a);  // not filed: nothing
    CHECK(queue.size() == 1);
    CHECK(queue.next_due() == t0 + 12s);

    // Removing another entry from inside a visit is fine too.
    Timed f(6, t0 + 12s, 10s);
    queue.file(f, f.deadline, f.span);
    std::vector<int> handed;
    queue.expire(t0 + 13s, [&](DeadlineEntry& entry) {
        handed.push_back(static_cast<Timed&>(entry).id);
        queue.remove(f);
    });
    CHECK(handed == std::vector<int>{3});
    CHECK(queue.size() == 0);
}

TEST_CASE("deadline queue: an hour and a second together", "[proxy][deadline_queue]") {
    DeadlineQueue queue(t0);
    Timed hour(1, t0 + 3600s, 3600s);
    Timed second(2, t0 + 1s, 1s);
    queue.file(hour, hour.deadline, hour.span);
    queue.file(second, second.deadline, second.span);

    // The one-second session moves a byte every 0.5 s for a minute.
    std::vector<int> expired;
    for (time_point now = t0; now <= t0 + 3601s; now += 100ms) {
        if (now <= t0 + 60s && (now - t0) % 500ms == 0ms) second.deadline = now + 1s;
        for (int id : tick(queue, now)) expired.push_back(id);
    }
    CHECK(expired == std::vector<int>{2, 1});
    CHECK(second.expired_at >= t0 + 61s);
    CHECK(second.expired_at < t0 + 61s + 100ms);
    CHECK(hour.expired_at == t0 + 3600s);
    CHECK(hour.looks == 1);  // an hour on its span's list: never looked at before its time
    // About two looks per second of the busy one's life, not one per tick.
    CHECK(second.looks <= 2 * 62);
}

TEST_CASE("deadline queue: spans side by side each keep a list, each deadline exact", "[proxy][deadline_queue]") {
    DeadlineQueue queue(t0);
    // Interleaved as a worker files them: handshakes (now + 10 s) at each
    // accept, idle deadlines (now + 3600 s) as phases end, drains (30 s).
    std::deque<Timed> entries;
    int id = 0;
    for (int i = 0; i < 300; ++i) {
        const time_point now = t0 + i * 10ms;
        entries.emplace_back(id++, now + 10s, 10s);
        entries.emplace_back(id++, now + 3600s, 3600s);
        if (i % 50 == 0) entries.emplace_back(id++, now + 30s, 30s);
    }
    for (auto& e : entries) queue.file(e, e.deadline, e.span);
    for (const auto& e : entries) CHECK(e.due() == e.deadline);
    run(queue, t0, t0 + 3605s, 100ms);
    for (const auto& e : entries) {
        CHECK(e.looks == 1);
        CHECK(e.expired_at - e.deadline < 100ms);
    }
}

TEST_CASE("deadline queue: a deadline earlier than its span list's last goes by powers of two, still on time",
          "[proxy][deadline_queue]") {
    DeadlineQueue queue(t0);
    // A busy session's idle deadline found at a look ("last byte + 10 s", the
    // byte a while ago) behind one filed fresh ("now + 10 s").
    Timed fresh(1, t0 + 20s, 10s), found(2, t0 + 15s, 10s);
    queue.file(fresh, fresh.deadline, fresh.span);
    queue.file(found, found.deadline, found.span);
    CHECK(found.due() <= found.deadline);
    CHECK(found.due() >= t0 + 7500ms);  // at least half-way there
    run(queue, t0, t0 + 21s, 10ms);
    CHECK(found.expired_at >= t0 + 15s);
    CHECK(found.expired_at < t0 + 15s + 10ms);
    CHECK(found.looks <= 14);  // log2(15 s / 1 ms)
    CHECK(fresh.expired_at == t0 + 20s);
    CHECK(fresh.looks == 1);
}

TEST_CASE("deadline queue: more spans than span lists", "[proxy][deadline_queue]") {
    DeadlineQueue queue(t0);
    std::deque<Timed> entries;
    for (int i = 0; i < static_cast<int>(DeadlineQueue::span_lists) + 8; ++i) {
        const auto span = std::chrono::seconds(1 + i);
        entries.emplace_back(i, t0 + span, span);
        queue.file(entries.back(), entries.back().deadline, span);
    }
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        if (i < DeadlineQueue::span_lists) {
            CHECK(e.due() == e.deadline);
        } else {
            CHECK(e.due() < e.deadline);  // by powers of two
        }
    }
    run(queue, t0, t0 + 30s, 100ms);
    for (const auto& e : entries) {
        CHECK(e.expired_at >= e.deadline);
        CHECK(e.expired_at - e.deadline < 100ms);
    }
    // A list emptied is taken by the next new span.
    Timed later(99, t0 + 30s + 500s, 500s);
    queue.file(later, later.deadline, later.span);
    CHECK(later.due() == later.deadline);
}

TEST_CASE("deadline queue: an overdue entry filed again from its visit waits for the next expire",
          "[proxy][deadline_queue]") {
    DeadlineQueue queue(t0);
    Timed stubborn(1, t0 - 1s);
    queue.file(stubborn, stubborn.deadline, {});
    CHECK(stubborn.due() == t0);
    int visits = 0;
    auto refile = [&](DeadlineEntry& entry) {
        ++visits;
        queue.file(entry, t0 - 1s, {});  // still overdue: due at the queue's time
    };
    CHECK(queue.expire(t0 + 1s, refile) == 1);
    CHECK(visits == 1);
    CHECK(queue.expire(t0 + 1s, refile) == 1);  // the next call hands it back again
    CHECK(visits == 2);
    // The queue's time never goes back.
    CHECK(queue.expire(t0, refile) == 1);
    CHECK(queue.now() == t0 + 1s);
    queue.remove(stubborn);
}

TEST_CASE("deadline queue: a queue destroyed first leaves its entries unfiled", "[proxy][deadline_queue]") {
    Timed survivor(1, t0 + 5s, 5s);
    {
        DeadlineQueue queue(t0);
        queue.file(survivor, survivor.deadline, survivor.span);
        CHECK(survivor.filed());
    }
    CHECK_FALSE(survivor.filed());
}
