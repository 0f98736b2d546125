// connrate: a load generator for new connections per second.
//
// Keeps CONCURRENCY connections in flight for SECONDS; each one connects to
// HOST:PORT, sends REQUEST bytes, reads as many bytes back, and closes. As soon
// as one finishes, another starts in its slot. Prints one line:
//
//   connections=N seconds=S rate=R errors=E p50_us=A p99_us=B
//
// where rate counts only connections that got their whole reply, and the
// percentiles are the time from connect() to the last byte of the reply.
// Errors (refused, reset, short reply, no local port) are counted; the slot
// starts over, after 1 ms when the error says the machine is out of something.
//
// Single-threaded, epoll, edge-triggered: one core of load, so the bench can pin
// it beside the servers and leave the other core to the proxy.
//
// Build: cc -O2 -o connrate connrate.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum phase { idle, connecting, sending, receiving };

struct slot {
    int fd;
    enum phase phase;
    size_t sent;
    size_t received;
    uint64_t started_ns;
    uint64_t retry_at_ns;  // 0 = start at once
};

// Latency histogram: 1 us buckets up to 1 s, then one overflow bucket.
#define histogram_buckets 1000001u
static uint32_t* histogram;

static struct sockaddr_in target;
static size_t request_bytes = 64;
static char request[65536];
static char reply[65536];
static int epoll_fd;
static uint64_t completed, errors;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void finish(struct slot* s, int ok, uint64_t now) {
    if (s->fd >= 0) close(s->fd);  // close() also takes it out of the epoll set
    s->fd = -1;
    s->phase = idle;
    s->retry_at_ns = 0;
    if (ok) {
        uint64_t us = (now - s->started_ns) / 1000u;
        if (us >= histogram_buckets - 1) us = histogram_buckets - 1;
        histogram[us]++;
        completed++;
    } else {
        errors++;
    }
}

// Moves a connection on as far as the socket allows; returns when it must wait.
static void advance(struct slot* s, uint64_t now) {
    if (s->phase == connecting) {
        int error = 0;
        socklen_t length = sizeof error;
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
            if (error == EINPROGRESS || error == EALREADY) return;
            finish(s, 0, now);
            return;
        }
        s->phase = sending;
    }
    while (s->phase == sending) {
        ssize_t n = send(s->fd, request + s->sent, request_bytes - s->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == ENOTCONN) return;  // connect still under way
            finish(s, 0, now);
            return;
        }
        s->sent += (size_t)n;
        if (s->sent == request_bytes) s->phase = receiving;
    }
    while (s->phase == receiving) {
        ssize_t n = recv(s->fd, reply, request_bytes - s->received, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            finish(s, 0, now);
            return;
        }
        if (n == 0) {  // closed before the whole reply
            finish(s, 0, now);
            return;
        }
        s->received += (size_t)n;
        if (s->received == request_bytes) finish(s, 1, now);
    }
}

static void start(struct slot* s, uint32_t index, uint64_t now) {
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        errors++;
        s->retry_at_ns = now + 1000000u;
        return;
    }
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->sent = s->received = 0;
    s->started_ns = now;
    s->phase = connecting;
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u32 = index};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, s->fd, &event) != 0) {
        perror("epoll_ctl");
        exit(1);
    }
    if (connect(s->fd, (struct sockaddr*)&target, sizeof target) != 0) {
        if (errno != EINPROGRESS) {
            int busy = errno == EADDRNOTAVAIL || errno == EAGAIN || errno == EMFILE || errno == ENFILE;
            finish(s, 0, now);
            // Out of local ports or descriptors: let the machine breathe a moment.
            if (busy) s->retry_at_ns = now + 1000000u;
            return;
        }
        return;  // the epoll edge tells when it is done
    }
    s->phase = sending;
    advance(s, now);
}

static uint64_t percentile(double p) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < histogram_buckets; i++) total += histogram[i];
    if (total == 0) return 0;
    uint64_t rank = (uint64_t)(p * (double)total);
    if (rank >= total) rank = total - 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < histogram_buckets; i++) {
        seen += histogram[i];
        if (seen > rank) return i;
    }
    return histogram_buckets - 1;
}

int main(int argc, char** argv) {
    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS CONCURRENCY [REQUEST_BYTES]\n", argv[0]);
        return 2;
    }
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &target.sin_addr) != 1) {
        fprintf(stderr, "connrate: HOST must be an IPv4 address\n");
        return 2;
    }
    double seconds = atof(argv[3]);
    int concurrency = atoi(argv[4]);
    if (argc == 6) request_bytes = (size_t)atoi(argv[5]);
    if (seconds <= 0 || concurrency < 1 || concurrency > 100000 || request_bytes < 1 ||
        request_bytes > sizeof request) {
        fprintf(stderr, "connrate: bad arguments\n");
        return 2;
    }
    memset(request, 'r', request_bytes);

    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    histogram = calloc(histogram_buckets, sizeof *histogram);
    struct slot* slots = calloc((size_t)concurrency, sizeof *slots);
    struct epoll_event* events = calloc((size_t)concurrency, sizeof *events);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (!histogram || !slots || !events || epoll_fd < 0) {
        perror("connrate: setup");
        return 1;
    }

    uint64_t began = now_ns();
    uint64_t deadline = began + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < concurrency; i++) {
        slots[i].fd = -1;
        start(&slots[i], (uint32_t)i, began);
    }
    uint64_t now = began;
    while (now < deadline) {
        int n = epoll_wait(epoll_fd, events, concurrency, 1);
        now = now_ns();
        for (int i = 0; i < n; i++) {
            struct slot* s = &slots[events[i].data.u32];
            if (s->phase != idle) advance(s, now);
        }
        if (now >= deadline) break;
        for (int i = 0; i < concurrency; i++) {
            struct slot* s = &slots[i];
            if (s->phase == idle && now >= s->retry_at_ns) start(s, (uint32_t)i, now);
        }
    }
    double elapsed = (double)(now - began) / 1e9;
    printf("connections=%llu seconds=%.3f rate=%.0f errors=%llu p50_us=%llu p99_us=%llu\n",
           (unsigned long long)completed, elapsed, (double)completed / elapsed, (unsigned long long)errors,
           (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.99));
    return completed > 0 ? 0 : 1;
}
