#include "proxy/deadline_queue.hpp"

#include <algorithm>
#include <bit>

namespace castellan::proxy {

DeadlineQueue::DeadlineQueue(time_point now) : now_(now) {
    overdue_.next = overdue_.previous = &overdue_;
    for (auto& head : powers_) head.next = head.previous = &head;
    for (auto& list : spans_) list.head.next = list.head.previous = &list.head;
}

DeadlineQueue::~DeadlineQueue() {
    auto release = [](DeadlineLink& head) {
        while (!empty(head)) unlink(first(head));
    };
    release(overdue_);
    for (auto& head : powers_) release(head);
    for (auto& list : spans_) release(list.head);
}

void DeadlineQueue::unlink(DeadlineEntry& entry) {
    entry.previous->next = entry.next;
    entry.next->previous = entry.previous;
    entry.previous = entry.next = nullptr;
}

void DeadlineQueue::append(DeadlineLink& head, DeadlineEntry& entry, time_point due) {
    entry.due_ = due;
    entry.previous = head.previous;
    entry.next = &head;
    head.previous->next = &entry;
    head.previous = &entry;
    ++size_;
}

void DeadlineQueue::remove(DeadlineEntry& entry) {
    if (!entry.filed()) return;
    unlink(entry);
    --size_;
}

DeadlineQueue::SpanList* DeadlineQueue::span_list(duration span) {
    SpanList* free = nullptr;
    for (auto& list : spans_) {
        if (list.span == span) return &list;
        if (!free && empty(list.head)) free = &list;
    }
    if (free) free->span = span;
    return free;
}

void DeadlineQueue::file(DeadlineEntry& entry, time_point deadline, duration span) {
    remove(entry);
    if (deadline == time_point::max()) return;
    if (deadline - now_ < duration(std::int64_t{1} << finest_power)) {
        // Passed or about to: the next expire() hands it back (now_ only grows,
        // so this list stays sorted).
        append(overdue_, entry, now_);
        return;
    }
    if (span > duration::zero()) {
        SpanList* list = span_list(span);
        if (list && (empty(list->head) || list->last_due <= deadline)) {
            append(list->head, entry, deadline);
            list->last_due = deadline;
            return;
        }
    }
    // due = now_ + 2^k: later than every due already in list k, since now_
    // only grows; at or before the deadline, and at least half-way to it.
    const auto away = static_cast<std::uint64_t>((deadline - now_).count());
    const unsigned k = std::min(static_cast<unsigned>(std::bit_width(away)) - 1, power_lists - 1);
    append(powers_[k], entry, now_ + duration(std::int64_t{1} << k));
    powers_in_use_ |= std::uint64_t{1} << k;
}

DeadlineQueue::time_point DeadlineQueue::next_due() const {
    time_point earliest = time_point::max();
    auto consider = [&earliest](const DeadlineLink& head) {
        if (!empty(head)) earliest = std::min(earliest, static_cast<const DeadlineEntry&>(*head.next).due_);
    };
    consider(overdue_);
    for (std::uint64_t in_use = powers_in_use_; in_use != 0; in_use &= in_use - 1) {
        consider(powers_[static_cast<unsigned>(std::countr_zero(in_use))]);
    }
    for (const auto& list : spans_) consider(list.head);
    return earliest;
}

}  // namespace castellan::proxy
