// echo_server: the real server of the connection-rate benchmark.
//
// Listens on HOST:PORT and sends every byte it receives straight back; closes a
// connection when the client does. With connrate's 64-byte request this is a
// 64-byte request/response. Idle connections cost it nothing but a descriptor,
// so the benchmark also parks its idle connections here.
//
// Single-threaded, epoll; a reply that the socket cannot take at once is kept
// for that connection and reading it stops until it has drained.
//
// Build: cc -O2 -o echo_server echo_server.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct pending {
    char* data;  // bytes received and not yet sent back; NULL when none
    size_t length;
    size_t offset;
};

static struct pending* pending;  // indexed by descriptor
static size_t max_fds;
static int epoll_fd;
static char buffer[65536];

static void drop(int fd) {
    free(pending[fd].data);
    pending[fd] = (struct pending){0};
    close(fd);
}

static void watch(int fd, unsigned events, int op) {
    struct epoll_event event = {.events = events, .data.fd = fd};
    epoll_ctl(epoll_fd, op, fd, &event);
}

// Sends what is kept for fd; returns 1 when nothing is left, 0 when it must
// wait for the socket, -1 when the connection failed.
static int flush(int fd) {
    struct pending* p = &pending[fd];
    while (p->offset < p->length) {
        ssize_t n = send(fd, p->data + p->offset, p->length - p->offset, MSG_NOSIGNAL);
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        p->offset += (size_t)n;
    }
    free(p->data);
    *p = (struct pending){0};
    return 1;
}

static void serve(int fd) {
    if (pending[fd].data) {
        int state = flush(fd);
        if (state < 0) {
            drop(fd);
            return;
        }
        if (state == 0) return;
        watch(fd, EPOLLIN, EPOLL_CTL_MOD);
    }
    for (;;) {
        ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n == 0) {
            drop(fd);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            drop(fd);
            return;
        }
        ssize_t sent = send(fd, buffer, (size_t)n, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                drop(fd);
                return;
            }
            sent = 0;
        }
        if (sent < n) {
            size_t rest = (size_t)(n - sent);
            pending[fd].data = malloc(rest);
            if (!pending[fd].data) {
                drop(fd);
                return;
            }
            memcpy(pending[fd].data, buffer + sent, rest);
            pending[fd].length = rest;
            pending[fd].offset = 0;
            watch(fd, EPOLLOUT, EPOLL_CTL_MOD);  // stop reading until it drains
            return;
        }
    }
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    getrlimit(RLIMIT_NOFILE, &limit);
    max_fds = limit.rlim_cur > 1048576 ? 1048576 : (size_t)limit.rlim_cur;
    pending = calloc(max_fds, sizeof *pending);

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) {
        fprintf(stderr, "echo_server: HOST must be an IPv4 address\n");
        return 2;
    }
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, (struct sockaddr*)&address, sizeof address) != 0 || listen(listener, 4096) != 0) {
        perror("echo_server: bind/listen");
        return 1;
    }
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (!pending || epoll_fd < 0) {
        perror("echo_server: setup");
        return 1;
    }
    watch(listener, EPOLLIN, EPOLL_CTL_ADD);

    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epoll_fd, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("echo_server: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd != listener) {
                serve(fd);
                continue;
            }
            for (;;) {
                int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (client < 0) {
                    if (errno == EINTR || errno == ECONNABORTED) continue;
                    break;  // EAGAIN, or out of descriptors: wait for the next wake-up
                }
                if ((size_t)client >= max_fds) {
                    close(client);
                    continue;
                }
                setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                watch(client, EPOLLIN, EPOLL_CTL_ADD);
            }
        }
    }
}
