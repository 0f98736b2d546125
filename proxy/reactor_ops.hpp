// Socket operations written against Asio's reactor (its detail layer, as Boost
// 1.81 lays it out) where the public interface costs a connection system calls
// a proxy can spare:
//   - async_wait re-arms the descriptor with EPOLL_CTL_MOD every time, because it
//     cannot know whether readiness was missed; a caller that waits right after
//     its own read or write came back with EAGAIN knows: the next edge is still
//     to come. async_wait_after_would_block() queues without the MOD.
//   - async_accept uses accept(2), so the new socket is made non-blocking by an
//     ioctl(FIONBIO) at its first asynchronous operation, and Asio, which cannot
//     know the descriptor is not a dup, removes it from epoll with EPOLL_CTL_DEL
//     before closing it. AcceptingSocket uses accept4(SOCK_NONBLOCK) and
//     adopt_nonblocking() tells Asio both facts.
// What each saves per proxied connection is in the commits that brought them
// (strace -c and perf stat, tcp mode); README "Per proxied connection" sums up.
//
// Every operation here needs the io_context that owns the socket to be run by
// one thread (the workers' are: BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO): a
// wait is queued on the reasoning that no event can be taken off epoll between
// the caller's EAGAIN and the queueing. They end early on the socket's
// cancel() or close() only: a handler's cancellation slot is not connected
// (castellan's sessions stop their operations by cancelling sockets).
#pragma once

#include <boost/version.hpp>

// The reactor's internals change between Boost releases (1.82 changed how an
// operation is started): check this file and rerun
// test/proxy/reactor_ops_test.cpp and the integration tests before moving on.
#if BOOST_VERSION / 100 != 1081
#error "proxy/reactor_ops.hpp is written against Boost 1.81's Asio reactor"
#endif

#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <utility>

namespace castellan::proxy {

namespace reactor_access {

// Starts `op` on `socket` in its reactor as a speculative operation of type
// `op_type` (the reactor's read_op or write_op): the reactor performs it at once
// only where it has seen readiness since the descriptor last reported
// exhaustion, else queues it for the next edge; it touches epoll only to add
// EPOLLOUT the first time a write is waited for.
void start(boost::asio::ip::tcp::socket& socket, int op_type, boost::asio::detail::reactor_op* op);

}  // namespace reactor_access

// Tells Asio that `socket`'s descriptor is non-blocking already (opened with
// SOCK_NONBLOCK), so that no operation sets it again, and that it is no dup of
// another descriptor, so that closing it needs no EPOLL_CTL_DEL (close(2)
// removes it from epoll). For sockets castellan opened or accepted itself.
void adopt_nonblocking(boost::asio::ip::tcp::socket& socket);

// Gives `fd`, a TCP socket of `protocol` opened with SOCK_NONBLOCK, to
// `socket` (registering it with epoll), adopted as above. `fd` is closed when
// that fails.
void adopt_descriptor(boost::asio::ip::tcp::socket& socket, const boost::asio::ip::tcp& protocol, int fd,
                      boost::system::error_code& error);

namespace reactor_ops_detail {

// A wait whose first performance, the one the reactor tries as it is started,
// says "not yet": the caller has just seen EAGAIN, so readiness the reactor
// saw before then is used up. Later performances (on an edge) complete it.
// Allocated with new, not from Asio's per-thread cache of freed blocks: a wait
// lasts as long as its connection idles, and a cached block keeps the size of
// whatever freed it (CMakeLists.txt says the same of coroutine frames).
template <typename Handler>
class ReadinessOp final : public boost::asio::detail::reactor_op {
public:
    explicit ReadinessOp(Handler handler)
        : reactor_op(boost::system::error_code(), &ReadinessOp::perform_step, &ReadinessOp::complete_step),
          handler_(std::move(handler)) {}

    bool starting = true;

private:
    static status perform_step(reactor_op* base) { return static_cast<ReadinessOp*>(base)->starting ? not_done : done; }

    // With a null owner the io_context is being destroyed: the operation is
    // freed without calling the handler, as Asio's own are.
    static void complete_step(void* owner, boost::asio::detail::scheduler_operation* base,
                              const boost::system::error_code&, std::size_t) {
        std::unique_ptr<ReadinessOp> self(static_cast<ReadinessOp*>(base));
        if (!owner) return;
        Handler handler(std::move(self->handler_));
        const boost::system::error_code error = self->ec_;
        self.reset();
        std::move(handler)(error);
    }

    Handler handler_;
};

// accept4(2) run by the reactor: performed at once where the listening socket
// may be ready, again on each edge until a client is taken or an error comes.
template <typename Handler>
class AcceptOp final : public boost::asio::detail::reactor_op {
public:
    AcceptOp(Handler handler, int listen_fd, boost::asio::ip::tcp::endpoint& peer,
             boost::asio::any_io_executor executor, boost::asio::ip::tcp protocol)
        : reactor_op(boost::system::error_code(), &AcceptOp::perform_step, &AcceptOp::complete_step),
          handler_(std::move(handler)),
          listen_fd_(listen_fd),
          peer_(peer),
          executor_(std::move(executor)),
          protocol_(protocol) {}

    ~AcceptOp() {
        if (accepted_ >= 0) ::close(accepted_);
    }

private:
    static status perform_step(reactor_op* base) {
        auto* self = static_cast<AcceptOp*>(base);
        for (;;) {
            socklen_t size = static_cast<socklen_t>(self->peer_.capacity());
            const int fd = ::accept4(self->listen_fd_, self->peer_.data(), &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                self->accepted_ = fd;
                self->peer_.resize(size);
                return done;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
            // A client that gave up before it was accepted: take the next one.
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            self->ec_.assign(errno, boost::system::system_category());
            return done;
        }
    }

    static void complete_step(void* owner, boost::asio::detail::scheduler_operation* base,
                              const boost::system::error_code&, std::size_t) {
        std::unique_ptr<AcceptOp> self(static_cast<AcceptOp*>(base));
        if (!owner) return;
        boost::system::error_code error = self->ec_;
        boost::asio::ip::tcp::socket socket(self->executor_);
        if (!error && self->accepted_ >= 0) {
            socket.assign(self->protocol_, self->accepted_, error);
            if (!error) {
                self->accepted_ = -1;
                adopt_nonblocking(socket);
            }
        }
        Handler handler(std::move(self->handler_));
        self.reset();
        std::move(handler)(error, std::move(socket));
    }

    Handler handler_;
    int listen_fd_;
    boost::asio::ip::tcp::endpoint& peer_;
    boost::asio::any_io_executor executor_;
    boost::asio::ip::tcp protocol_;
    int accepted_ = -1;  // owned here until handed to the socket
};

}  // namespace reactor_ops_detail

// Waits until `socket` is readable (wait_read) or writable (wait_write), for a
// caller whose last read (or write) on it, since it last returned to the loop,
// came back with EAGAIN: the kernel then raises a new edge for the next byte
// (or for room to write), so nothing is missed by not re-arming. A read that
// returned less than it asked is not enough: a FIN queued behind its bytes
// raises no edge of its own. Anything else (a first wait, a wait after a short
// read) must use socket.async_wait. Completes with operation_aborted when the
// socket is cancelled or closed. Runs on the socket's io_context thread.
template <typename CompletionToken>
auto async_wait_after_would_block(boost::asio::ip::tcp::socket& socket, boost::asio::socket_base::wait_type wait,
                                  CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
        [&socket, wait](auto handler) {
            using Op = reactor_ops_detail::ReadinessOp<decltype(handler)>;
            auto* op = new Op(std::move(handler));
            reactor_access::start(socket,
                                  wait == boost::asio::socket_base::wait_write ? boost::asio::detail::reactor::write_op
                                                                                : boost::asio::detail::reactor::read_op,
                                  op);
            // Still alive: queued in the reactor or, on a closed socket, posted
            // for completion, which this thread has yet to run.
            op->starting = false;
        },
        token);
}

// A listening socket whose accepted connections arrive non-blocking and adopted
// (adopt_nonblocking). Held in a tcp::socket because Asio's acceptor keeps its
// reactor state private. Runs on its io_context's thread.
class AcceptingSocket {
public:
    explicit AcceptingSocket(boost::asio::io_context& io) : socket_(io) {}

    // Takes `fd`, a listening socket of `protocol` opened with SOCK_NONBLOCK.
    void assign(const boost::asio::ip::tcp& protocol, int fd, boost::system::error_code& error) {
        protocol_ = protocol;
        socket_.assign(protocol, fd, error);
    }
    bool is_open() const { return socket_.is_open(); }
    void close(boost::system::error_code& error) { socket_.close(error); }

    // Completes with (error, socket) once a client is accepted; `peer` gets its
    // address and must live until then. A closed listener completes with
    // operation_aborted.
    template <typename CompletionToken>
    auto async_accept(boost::asio::ip::tcp::endpoint& peer, CompletionToken&& token) {
        return boost::asio::async_initiate<CompletionToken,
                                           void(boost::system::error_code, boost::asio::ip::tcp::socket)>(
            [this, &peer](auto handler) {
                using Op = reactor_ops_detail::AcceptOp<decltype(handler)>;
                auto* op = new Op(std::move(handler), socket_.native_handle(), peer, socket_.get_executor(), protocol_);
                reactor_access::start(socket_, boost::asio::detail::reactor::read_op, op);
            },
            token);
    }

private:
    boost::asio::ip::tcp::socket socket_;
    boost::asio::ip::tcp protocol_ = boost::asio::ip::tcp::v4();
};

}  // namespace castellan::proxy
