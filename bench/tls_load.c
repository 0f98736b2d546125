// tls_load: the load generator of the benchmark's tls case (OpenSSL, epoll).
//
//   tls_load [-s SNI] [-c SUITES] handshake  HOST PORT SECONDS CONCURRENCY
//   tls_load [-s SNI] [-c SUITES] [-u] resume HOST PORT SECONDS CONCURRENCY
//   tls_load [-s SNI] [-c SUITES] throughput HOST PORT SECONDS STREAMS BYTES
//   tls_load [-s SNI] [-c SUITES] hold       HOST PORT COUNT SECONDS
//
// handshake: keeps CONCURRENCY TLS connections in flight for SECONDS; each one
//   connects, does a full handshake (no session offered), sends 64 bytes, reads
//   the 64-byte echo, sends close_notify and closes; as soon as one finishes,
//   another starts in its slot. Prints
//     connections=N seconds=S rate=R errors=E p50_us=A p99_us=B resumed=0 not_resumed=0 tickets=T
//   where rate counts only connections that got their whole echo, the
//   percentiles are the time from connect() to the last byte of the echo, and
//   tickets is the number of TLS 1.3 NewSessionTicket messages those connections
//   received, all together.
// resume: the same, but every connection offers one session, taken from a first
//   (priming) connection after it read its echo, so that the server's tickets
//   have arrived. SSL_session_reused() is checked on each: resumed counts those
//   that resumed, not_resumed those the server answered with a full handshake
//   (they still count as connections). With -u (single-use tickets, as browsers
//   and OpenSSL's own client cache treat TLS 1.3 tickets) each slot instead
//   offers the newest ticket its previous connection received, and once only:
//   a server that issues no new ticket on a resumed connection then gets a
//   full handshake every other connection.
// throughput: STREAMS connections each send BYTES / STREAMS bytes in 16 KiB
//   writes and read the echo back at the same time, until every byte has come
//   back or SECONDS have passed. Prints
//     streams=N bytes=B seconds=S mb_per_s=R errors=E
//   where B counts the bytes that came back and R is B / S in 10^6 bytes/s (the
//   same bytes also went the other way).
// hold: opens COUNT TLS connections (at most 64 being set up at a time), each
//   completes its handshake and one 64-byte echo (so that the proxy has
//   connected it on to its real server), then stays open and idle. Prints
//   "ready COUNT" (flushed) once all are, then waits for SIGTERM or SIGINT, or
//   SECONDS, and closes them. A connection that fails while being set up ends
//   the run (exit 1).
//
// Every mode first prints the line
//   negotiated protocol=TLSv1.3 cipher=TLS_AES_128_GCM_SHA256 group=X25519 server_key=id-ecPublicKey/prime256v1 ...
// taken from the first connection that completed its handshake, so that the
// bench can check that both proxies negotiated the same thing.
//
// Only TLS 1.3 is offered, with the suites of -c (default
// TLS_AES_128_GCM_SHA256); -s sets the SNI (default bench.castellan.test). The
// server certificate is not verified (the proxies are the ones measured), but
// its CertificateVerify signature is still checked by OpenSSL, as a real client
// does.
//
// Single-threaded, epoll, edge-triggered: one core of load, so that the bench
// can pin it beside the real server and leave the other core to the proxy.
// Every loop is bounded by SECONDS (hold: setting up is bounded by 60 s).
//
// Build: cc -O2 -o tls_load tls_load.c -lssl -lcrypto
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { mode_handshake, mode_resume, mode_throughput, mode_hold };
enum phase { idle, connecting, handshaking, sending, receiving, streaming, holding };

struct conn {
    int fd;
    SSL* ssl;
    enum phase phase;
    uint64_t sent;
    uint64_t received;
    uint64_t quota;         // throughput: bytes to send and to get back
    size_t pending_write;   // throughput: length of an SSL_write to repeat, 0 = none
    uint64_t started_ns;
    uint64_t retry_at_ns;   // 0 = start at once
    SSL_SESSION* next;      // resume -u: the session this slot offers next, NULL = none
    uint32_t tickets;       // NewSessionTicket messages this connection received
};

// Latency histogram: 1 us buckets up to 1 s, then one overflow bucket.
#define histogram_buckets 1000001u
static uint32_t* histogram;

#define request_bytes 64
#define chunk_bytes 16384
static char request[request_bytes];
static char chunk[chunk_bytes];
static char reply[65536];

static enum mode mode;
static struct sockaddr_in target;
static const char* server_name = "bench.castellan.test";
static SSL_CTX* context;
static SSL_SESSION* session;      // resume: the session every connection offers
static int capture_session;       // resume: keep the session of the next connection that completes
static int single_use;            // resume -u: each ticket offered once, the newest one
static int epoll_fd;
static uint64_t completed, errors, resumed, not_resumed, tickets, bytes_back;
static int negotiated_printed;
static char first_error[256];
static volatile sig_atomic_t stop;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void on_signal(int number) {
    (void)number;
    stop = 1;
}

// Client side, TLS 1.3: called once per NewSessionTicket received. Counting
// them shows how many tickets each proxy sends (OpenSSL's default is 2 after a
// full handshake). Returning 0: the session is not kept here (resume takes
// its session with SSL_get1_session instead).
static int on_new_session(SSL* ssl, SSL_SESSION* new_session) {
    (void)new_session;
    struct conn* c = SSL_get_app_data(ssl);
    if (c) c->tickets++;
    return 0;
}

static void note_error(const char* what, struct conn* c, int ssl_error) {
    if (first_error[0]) return;
    unsigned long code = ERR_peek_last_error();
    char reason[160] = "";
    if (code) ERR_error_string_n(code, reason, sizeof reason);
    int saved_errno = errno;
    snprintf(first_error, sizeof first_error, "%s: %s (ssl_error %d, errno %d %s, sent %llu, received %llu)", what,
             reason[0] ? reason : "no OpenSSL error", ssl_error, saved_errno, saved_errno ? strerror(saved_errno) : "",
             c ? (unsigned long long)c->sent : 0ull, c ? (unsigned long long)c->received : 0ull);
}

// What the first completed handshake negotiated, on one line.
static void print_negotiated(SSL* ssl) {
    if (negotiated_printed) return;
    negotiated_printed = 1;
    int group = SSL_get_negotiated_group(ssl);
    const char* group_name = group > 0 ? OBJ_nid2sn(group & ~TLSEXT_nid_unknown) : NULL;
    char key[96] = "none";
    X509* certificate = SSL_get0_peer_certificate(ssl);
    if (certificate) {
        EVP_PKEY* public_key = X509_get0_pubkey(certificate);
        char curve[64] = "";
        size_t length = 0;
        if (public_key && EVP_PKEY_get_group_name(public_key, curve, sizeof curve, &length) != 1) curve[0] = 0;
        snprintf(key, sizeof key, "%s/%s", public_key ? OBJ_nid2sn(EVP_PKEY_get_base_id(public_key)) : "?",
                 curve[0] ? curve : "?");
    }
    int hash = NID_undef;
    SSL_get_peer_signature_nid(ssl, &hash);
    printf("negotiated protocol=%s cipher=%s group=%s server_key=%s signature_hash=%s\n", SSL_get_version(ssl),
           SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)), group_name ? group_name : "?", key,
           hash != NID_undef ? OBJ_nid2sn(hash) : "none");
    fflush(stdout);
}

static void release(struct conn* c) {
    if (c->ssl) SSL_free(c->ssl);  // the descriptor is ours (BIO_NOCLOSE)
    c->ssl = NULL;
    if (c->fd >= 0) close(c->fd);  // close() also takes it out of the epoll set
    c->fd = -1;
    c->phase = idle;
    c->retry_at_ns = 0;
}

static void finish(struct conn* c, int ok, uint64_t now) {
    if (ok) {
        if (capture_session && !session) session = SSL_get1_session(c->ssl);
        if (single_use && !capture_session) {
            // The session now holds the newest ticket received, or is the one
            // offered (no longer resumable) when none came.
            SSL_SESSION* newest = SSL_get1_session(c->ssl);
            if (newest && !SSL_SESSION_is_resumable(newest)) {
                SSL_SESSION_free(newest);
                newest = NULL;
            }
            SSL_SESSION_free(c->next);
            c->next = newest;
        }
        SSL_shutdown(c->ssl);  // close_notify, as a browser sends it; no waiting for the peer's
        uint64_t us = (now - c->started_ns) / 1000u;
        if (us >= histogram_buckets - 1) us = histogram_buckets - 1;
        histogram[us]++;
        completed++;
        tickets += c->tickets;
    } else {
        errors++;
    }
    release(c);
}

static int retryable(int ssl_error) { return ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE; }

// Throughput: reads what has come back and writes more, until neither can go on.
// Returns 1 when the stream is done, 0 when it must wait, -1 on an error.
static int pump(struct conn* c) {
    for (;;) {
        int progress = 0;
        while (c->received < c->quota) {
            int n = SSL_read(c->ssl, reply, sizeof reply);
            if (n > 0) {
                c->received += (uint64_t)n;
                bytes_back += (uint64_t)n;
                progress = 1;
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            if (retryable(e)) break;
            note_error("stream read", c, e);
            return -1;
        }
        if (c->received >= c->quota) return 1;
        while (c->sent < c->quota) {
            // A write that would block is repeated with the same length.
            size_t length = c->pending_write;
            if (length == 0) length = c->quota - c->sent < chunk_bytes ? (size_t)(c->quota - c->sent) : chunk_bytes;
            int n = SSL_write(c->ssl, chunk, (int)length);
            if (n > 0) {
                c->pending_write = 0;
                c->sent += (uint64_t)n;
                progress = 1;
                continue;
            }
            int e = SSL_get_error(c->ssl, n);
            if (retryable(e)) {
                c->pending_write = length;
                break;
            }
            note_error("stream write", c, e);
            return -1;
        }
        if (!progress) return 0;
    }
}

// Moves a connection on as far as the socket allows; returns when it must wait.
static void advance(struct conn* c, uint32_t events, uint64_t now) {
    if (c->phase == connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int error = 0;
        socklen_t length = sizeof error;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
            errno = error;
            note_error("connect", c, 0);
            finish(c, 0, now);
            return;
        }
        c->phase = handshaking;
    }
    if (c->phase == handshaking) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (retryable(e)) return;
            note_error("handshake", c, e);
            finish(c, 0, now);
            return;
        }
        print_negotiated(c->ssl);
        if (mode == mode_resume && !capture_session) {
            if (SSL_session_reused(c->ssl)) {
                resumed++;
            } else {
                not_resumed++;
            }
        }
        c->phase = mode == mode_throughput ? streaming : sending;
    }
    if (c->phase == streaming) {
        int state = pump(c);
        if (state != 0) finish(c, state == 1, now);
        return;
    }
    if (c->phase == sending) {
        int n = SSL_write(c->ssl, request, request_bytes);
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (retryable(e)) return;
            note_error("write", c, e);
            finish(c, 0, now);
            return;
        }
        c->sent = request_bytes;
        c->phase = receiving;
    }
    while (c->phase == receiving) {
        int n = SSL_read(c->ssl, reply, (int)(request_bytes - c->received));
        if (n <= 0) {
            int e = SSL_get_error(c->ssl, n);
            if (retryable(e)) return;
            note_error("read", c, e);  // a close (SSL_ERROR_ZERO_RETURN or EOF) before the whole echo too
            finish(c, 0, now);
            return;
        }
        c->received += (uint64_t)n;
        if (c->received < request_bytes) continue;
        if (mode == mode_hold) {
            c->phase = holding;
            completed++;
            tickets += c->tickets;
        } else {
            finish(c, 1, now);
        }
    }
    if (c->phase == holding && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        note_error("held connection closed by the proxy", c, 0);
        errors++;
        release(c);
    }
}

static void start(struct conn* c, uint32_t index, uint64_t now) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        note_error("socket", c, 0);
        errors++;
        c->retry_at_ns = now + 1000000u;
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->ssl = SSL_new(context);
    // OpenSSL makes a TLS 1.3 session single-use on the client (it is marked not
    // resumable once offered), so each connection offers a copy of the one
    // session: the same ticket every time, which stateless tickets allow.
    // With -u, the slot's own newest ticket instead, once.
    SSL_SESSION* offered = NULL;
    if (single_use) {
        offered = c->next;
        c->next = NULL;
    } else if (session && !capture_session) {
        offered = SSL_SESSION_dup(session);
        if (!offered) {
            fprintf(stderr, "tls_load: cannot copy the session\n");
            exit(1);
        }
    }
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_set_tlsext_host_name(c->ssl, server_name) != 1 ||
        (offered && SSL_set_session(c->ssl, offered) != 1)) {
        fprintf(stderr, "tls_load: cannot set up an SSL object\n");
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    SSL_SESSION_free(offered);  // the SSL object holds its own reference
    SSL_set_connect_state(c->ssl);
    SSL_set_app_data(c->ssl, c);
    c->tickets = 0;
    c->sent = c->received = 0;
    c->pending_write = 0;
    c->started_ns = now;
    c->phase = connecting;
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u32 = index};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event) != 0) {
        perror("tls_load: epoll_ctl");
        exit(1);
    }
    if (connect(c->fd, (struct sockaddr*)&target, sizeof target) != 0) {
        if (errno != EINPROGRESS) {
            int busy = errno == EADDRNOTAVAIL || errno == EAGAIN || errno == EMFILE || errno == ENFILE;
            note_error("connect", c, 0);
            finish(c, 0, now);
            // Out of local ports or descriptors: let the machine breathe a moment.
            if (busy) c->retry_at_ns = now + 1000000u;
        }
        return;  // the epoll edge tells when it is done
    }
    advance(c, EPOLLOUT, now);
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

// One pass of the event loop: waits up to 1 ms and advances what moved.
static struct epoll_event* events;
static int max_events;
static struct conn* conns;
static uint64_t poll_once(void) {
    int n = epoll_wait(epoll_fd, events, max_events, 1);
    uint64_t now = now_ns();
    for (int i = 0; i < n; i++) {
        struct conn* c = &conns[events[i].data.u32];
        if (c->phase != idle) advance(c, events[i].events, now);
    }
    return now;
}

// handshake and resume: CONCURRENCY slots, each starting a new connection as soon
// as its last one ended, until the deadline.
static int run_rate(double seconds, int concurrency) {
    uint64_t began = now_ns();
    if (mode == mode_resume) {
        // The priming connection: a full handshake whose session (with the
        // ticket that came before the echo) every later connection offers.
        capture_session = 1;
        conns[0].fd = -1;
        start(&conns[0], 0, began);
        uint64_t until = began + 5000000000u;
        uint64_t now = began;
        while (!session && now < until) {
            now = poll_once();
            if (conns[0].phase == idle && !session) break;
        }
        if (conns[0].phase != idle) release(&conns[0]);
        if (!session || !SSL_SESSION_is_resumable(session)) {
            fprintf(stderr, "tls_load: the priming connection got no resumable session (no ticket?)%s%s\n",
                    first_error[0] ? ": " : "", first_error);
            return 1;
        }
        capture_session = 0;
        completed = errors = tickets = 0;
        memset(histogram, 0, histogram_buckets * sizeof *histogram);
        began = now_ns();
    }
    uint64_t deadline = began + (uint64_t)(seconds * 1e9);
    for (int i = 0; i < concurrency; i++) {
        conns[i].fd = -1;
        if (single_use && session) conns[i].next = SSL_SESSION_dup(session);  // the first offer of each slot
        start(&conns[i], (uint32_t)i, began);
    }
    uint64_t now = began;
    while (now < deadline) {
        now = poll_once();
        if (now >= deadline) break;
        for (int i = 0; i < concurrency; i++) {
            struct conn* c = &conns[i];
            if (c->phase == idle && now >= c->retry_at_ns) start(c, (uint32_t)i, now);
        }
    }
    double elapsed = (double)(now - began) / 1e9;
    printf("connections=%llu seconds=%.3f rate=%.0f errors=%llu p50_us=%llu p99_us=%llu resumed=%llu "
           "not_resumed=%llu tickets=%llu\n",
           (unsigned long long)completed, elapsed, (double)completed / elapsed, (unsigned long long)errors,
           (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.99), (unsigned long long)resumed,
           (unsigned long long)not_resumed, (unsigned long long)tickets);
    if (first_error[0]) fprintf(stderr, "tls_load: first error: %s\n", first_error);
    return completed > 0 ? 0 : 1;
}

static int run_throughput(double seconds, int streams, uint64_t total) {
    uint64_t began = now_ns();
    uint64_t deadline = began + (uint64_t)(seconds * 1e9);
    uint64_t each = total / (uint64_t)streams;
    for (int i = 0; i < streams; i++) {
        conns[i].fd = -1;
        conns[i].quota = each + (i == 0 ? total % (uint64_t)streams : 0);
        start(&conns[i], (uint32_t)i, began);
    }
    uint64_t now = began;
    for (;;) {
        int open = 0;
        for (int i = 0; i < streams; i++) open += conns[i].phase != idle;
        if (open == 0 || now >= deadline) break;
        now = poll_once();
    }
    double elapsed = (double)(now - began) / 1e9;
    printf("streams=%d bytes=%llu seconds=%.3f mb_per_s=%.1f errors=%llu\n", streams, (unsigned long long)bytes_back,
           elapsed, (double)bytes_back / elapsed / 1e6, (unsigned long long)errors);
    if (first_error[0]) fprintf(stderr, "tls_load: first error: %s\n", first_error);
    return errors == 0 && bytes_back == total ? 0 : 1;
}

static int run_hold(int count, double seconds) {
    const int parallel = 64;  // set up at a time: a burst of COUNT SYNs would overflow the accept backlog
    uint64_t began = now_ns();
    uint64_t setup_deadline = began + 60000000000u;
    int next = 0;
    uint64_t now = began;
    for (int i = 0; i < count; i++) conns[i].fd = -1;
    while (completed < (uint64_t)count && now < setup_deadline && !stop) {
        int in_setup = next - (int)completed;
        while (next < count && in_setup < parallel) {
            start(&conns[next], (uint32_t)next, now);
            next++;
            in_setup++;
        }
        now = poll_once();
        if (errors > 0) {
            fprintf(stderr, "tls_load: hold: a connection failed after %llu of %d: %s\n",
                    (unsigned long long)completed, count, first_error);
            return 1;
        }
    }
    if (completed < (uint64_t)count) {
        fprintf(stderr, "tls_load: hold: only %llu of %d connections set up in time\n", (unsigned long long)completed,
                count);
        return 1;
    }
    printf("ready %d tickets=%llu\n", count, (unsigned long long)tickets);
    fflush(stdout);
    uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    while (!stop && now < deadline) {
        int n = epoll_wait(epoll_fd, events, max_events, 200);
        now = now_ns();
        for (int i = 0; i < n; i++) {
            struct conn* c = &conns[events[i].data.u32];
            if (c->phase != idle) advance(c, events[i].events, now);
        }
    }
    for (int i = 0; i < count; i++) {
        if (conns[i].phase != idle) release(&conns[i]);
    }
    if (errors > 0) fprintf(stderr, "tls_load: hold: %llu held connections were closed: %s\n",
                            (unsigned long long)errors, first_error);
    return 0;
}

static void usage(const char* name) {
    fprintf(stderr,
            "usage: %s [-s SNI] [-c SUITES] handshake|resume HOST PORT SECONDS CONCURRENCY\n"
            "       (resume: -u offers each slot's newest ticket, once)\n"
            "       %s [-s SNI] [-c SUITES] throughput HOST PORT SECONDS STREAMS BYTES\n"
            "       %s [-s SNI] [-c SUITES] hold HOST PORT COUNT SECONDS\n",
            name, name, name);
}

int main(int argc, char** argv) {
    const char* suites = "TLS_AES_128_GCM_SHA256";
    int opt;
    while ((opt = getopt(argc, argv, "s:c:u")) != -1) {
        switch (opt) {
            case 's': server_name = optarg; break;
            case 'c': suites = optarg; break;
            case 'u': single_use = 1; break;
            default: usage(argv[0]); return 2;
        }
    }
    argc -= optind - 1;
    argv += optind - 1;
    if (argc < 5) {
        usage(argv[0]);
        return 2;
    }
    const char* mode_name = argv[1];
    int wanted_args;
    if (strcmp(mode_name, "handshake") == 0) {
        mode = mode_handshake;
        wanted_args = 6;
    } else if (strcmp(mode_name, "resume") == 0) {
        mode = mode_resume;
        wanted_args = 6;
    } else if (strcmp(mode_name, "throughput") == 0) {
        mode = mode_throughput;
        wanted_args = 7;
    } else if (strcmp(mode_name, "hold") == 0) {
        mode = mode_hold;
        wanted_args = 6;
    } else {
        usage(argv[0]);
        return 2;
    }
    if (argc != wanted_args) {
        usage(argv[0]);
        return 2;
    }
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) {
        fprintf(stderr, "tls_load: HOST must be an IPv4 address\n");
        return 2;
    }
    double seconds = 0;
    int slots = 0;
    uint64_t total = 0;
    if (mode == mode_hold) {
        slots = atoi(argv[4]);
        seconds = atof(argv[5]);
    } else {
        seconds = atof(argv[4]);
        slots = atoi(argv[5]);
        if (mode == mode_throughput) total = strtoull(argv[6], NULL, 10);
    }
    if (seconds <= 0 || slots < 1 || slots > 200000 || (mode == mode_throughput && total < (uint64_t)slots)) {
        fprintf(stderr, "tls_load: bad arguments\n");
        return 2;
    }
    memset(request, 'r', sizeof request);
    memset(chunk, 'x', sizeof chunk);

    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }

    context = SSL_CTX_new(TLS_client_method());
    if (!context || SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(context, suites) != 1) {
        fprintf(stderr, "tls_load: cannot set up the TLS context (suites \"%s\")\n", suites);
        ERR_print_errors_fp(stderr);
        return 2;
    }
    SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
    // The client cache only to see the tickets arrive (on_new_session); nothing
    // is stored in it.
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(context, on_new_session);

    max_events = slots + 1;
    histogram = calloc(histogram_buckets, sizeof *histogram);
    conns = calloc((size_t)slots, sizeof *conns);
    events = calloc((size_t)max_events, sizeof *events);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (!histogram || !conns || !events || epoll_fd < 0) {
        perror("tls_load: setup");
        return 1;
    }
    switch (mode) {
        case mode_handshake:
        case mode_resume: return run_rate(seconds, slots);
        case mode_throughput: return run_throughput(seconds, slots, total);
        case mode_hold: return run_hold(slots, seconds);
    }
    return 2;
}
