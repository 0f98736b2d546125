// Deadlines handed back in the order they come, for many entries that mostly
// never come due (idle connections): filing, removing, and a tick with nothing
// due cost O(1), whatever the number of entries. Pure: no clock, no I/O; the
// time is passed in.
//
// How: entries wait in intrusive FIFO lists that are sorted by construction,
// so a tick looks only at the head of each list:
// - one list per *span* (a configured duration: idle_s, handshake_ms, ...):
//   deadlines made as "now + span" come in the order they are filed, so such
//   a deadline goes at the back of its span's list, due exactly when it
//   passes. One that would unsort the list (made from an earlier time than
//   the last one there: "last byte + idle_s" found at a look) goes to
// - one list per power of two, 2^20 ns (about 1 ms) to 2^62 ns: a deadline r
//   away from the queue's time is recorded at that time + the largest power
//   of two not above r. That is never later than the deadline and at least
//   half-way to it; the owner then looks again and files it anew, nearer. At
//   most about log2(r / 1 ms) looks for a deadline that stays put; a busy
//   connection's idle deadline moves on meanwhile, so it is looked at once
//   every half to whole idle_s.
// - a deadline less than 2^20 ns away (or already past) is due at once.
// Lazy: the owner files again only when an entry's deadline gets *earlier*
// than the one recorded. One that moves later (a byte pushed an idle deadline)
// is found when the recorded one comes and filed anew then, so the path a byte
// takes does nothing here.
//
// Owned by one thread (a worker's); no lock.
#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace castellan::proxy {

class DeadlineQueue;

// The links of a circular doubly-linked list: an entry, or a list's own head.
struct DeadlineLink {
    DeadlineLink* previous = nullptr;
    DeadlineLink* next = nullptr;
};

// What a DeadlineQueue files: embedded in (a base of) the object it times, so
// that filing allocates nothing. Remove it from its queue before destroying it.
class DeadlineEntry : private DeadlineLink {
public:
    using time_point = std::chrono::steady_clock::time_point;

    DeadlineEntry() = default;
    DeadlineEntry(const DeadlineEntry&) = delete;
    DeadlineEntry& operator=(const DeadlineEntry&) = delete;

    bool filed() const { return next != nullptr; }
    // When its queue hands it back: at or before the deadline it was filed
    // for, or at the queue's time for one already past. Meaningless unless
    // filed().
    time_point due() const { return due_; }

private:
    friend class DeadlineQueue;
    time_point due_{};
};

class DeadlineQueue {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::steady_clock::duration;

    // The smallest power-of-two step: a deadline nearer than this is due at once.
    static constexpr unsigned finest_power = 20;  // 2^20 ns, about 1 ms
    // How many spans get a list of their own at a time (a list left empty is
    // taken by the next new span); others use the power-of-two lists.
    static constexpr std::size_t span_lists = 16;

    // `now`: the queue's time to start from (it only moves forward, by expire()).
    explicit DeadlineQueue(time_point now);
    ~DeadlineQueue();  // leaves its entries unfiled
    DeadlineQueue(const DeadlineQueue&) = delete;
    DeadlineQueue& operator=(const DeadlineQueue&) = delete;

    // Files `entry` (moving it if filed) to be handed back by expire() when
    // `deadline` has passed, or before, for a look: `entry.due()` says when.
    // `span`: the duration `deadline` was made from ("some time + span": an
    // idle or phase limit), or zero. Unfiles it for a deadline of
    // time_point::max(). O(1): at most a pass over the 16 spans.
    void file(DeadlineEntry& entry, time_point deadline, duration span);
    // Unfiles `entry`; nothing if it is not filed. O(1).
    void remove(DeadlineEntry& entry);

    // Advances the queue's time to `now` (it never goes back) and hands each
    // entry due by then to `visit(DeadlineEntry&)`, unfiled. `visit` may file it
    // again (one filed again for a deadline not yet passed is not handed back
    // twice in one call) or remove any other entry. Gives the number handed
    // back. Costs O(1) plus O(1) per entry handed back.
    template <class Visit>
    std::size_t expire(time_point now, Visit&& visit);

    // The earliest due() of the filed entries; time_point::max() when none.
    // O(number of lists in use), at most 60.
    time_point next_due() const;
    time_point now() const { return now_; }
    std::size_t size() const { return size_; }

private:
    static constexpr unsigned power_lists = 63;  // index k: a step of 2^k ns (k >= finest_power)

    struct SpanList {
        DeadlineLink head;
        duration span{0};
        // The due of the entry last put at its back: no earlier than the due of
        // any entry in it (that one may have been removed since).
        time_point last_due{};
    };

    static bool empty(const DeadlineLink& head) { return head.next == &head; }
    static DeadlineEntry& first(DeadlineLink& head) { return static_cast<DeadlineEntry&>(*head.next); }
    void append(DeadlineLink& head, DeadlineEntry& entry, time_point due);
    static void unlink(DeadlineEntry& entry);
    // The list of `span`: the one it has, else an empty one it takes; null
    // when every list is in use by other spans.
    SpanList* span_list(duration span);
    template <class Visit>
    std::size_t hand_back(DeadlineLink& head, Visit& visit);

    time_point now_;
    std::size_t size_ = 0;
    // Due at once: filed for a deadline passed or less than 2^finest_power away.
    DeadlineLink overdue_;
    std::array<DeadlineLink, power_lists> powers_;
    std::uint64_t powers_in_use_ = 0;  // bit k: powers_[k] may hold entries
    std::array<SpanList, span_lists> spans_;
};

template <class Visit>
std::size_t DeadlineQueue::hand_back(DeadlineLink& head, Visit& visit) {
    std::size_t handed = 0;
    while (!empty(head)) {
        DeadlineEntry& entry = first(head);
        if (entry.due_ > now_) break;  // sorted: the rest are later
        unlink(entry);
        --size_;
        ++handed;
        visit(entry);
    }
    return handed;
}

template <class Visit>
std::size_t DeadlineQueue::expire(time_point now, Visit&& visit) {
    if (now > now_) now_ = now;
    std::size_t handed = 0;
    // The overdue list is taken whole first: what `visit` files there again
    // waits for the next call instead of being handed back forever.
    if (!empty(overdue_)) {
        DeadlineLink taken;
        taken.next = overdue_.next;
        taken.previous = overdue_.previous;
        taken.next->previous = taken.previous->next = &taken;
        overdue_.next = overdue_.previous = &overdue_;
        handed += hand_back(taken, visit);
    }
    // Entries filed again by `visit` are due after now_, so neither list
    // hands back what it was just given.
    for (std::uint64_t in_use = powers_in_use_; in_use != 0; in_use &= in_use - 1) {
        const auto k = static_cast<unsigned>(std::countr_zero(in_use));
        handed += hand_back(powers_[k], visit);
        if (empty(powers_[k])) powers_in_use_ &= ~(std::uint64_t{1} << k);
    }
    for (auto& list : spans_) handed += hand_back(list.head, visit);
    return handed;
}

}  // namespace castellan::proxy
