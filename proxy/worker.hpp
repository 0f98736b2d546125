// A worker: one thread running one event loop. A connection lives on one worker
// from accept to close, so session code needs no locks or strands.
#pragma once

#include "proxy/pipe_pool.hpp"
#include "proxy/pump.hpp"
#include "proxy/reactor_ops.hpp"
#include "proxy/runtime.hpp"
#include "proxy/session_registry.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace castellan::proxy {

// What the file limit allows a worker (see system_limits.hpp).
struct WorkerLimits {
    std::size_t spare_pipes = 64;        // pipes kept for splice(2)
    std::int64_t session_capacity = 0;   // all workers' connections together; 0 = no cap
};

class Worker {
public:
    Worker(std::size_t index, std::shared_ptr<const Runtime> runtime, std::atomic<std::int64_t>& live_sessions,
           WorkerLimits limits);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Starts accepting on a dup of `listen_fd` for the service at `listen`.
    // Call before start() or from the worker's own thread.
    void add_listener(int listen_fd, const conf::HostPort& listen);
    // Closes every acceptor of this worker (posted to its thread).
    void close_listeners();

    // What a reload changes for a worker.
    struct Update {
        std::shared_ptr<const Runtime> runtime;  // for every connection accepted from now on
        // Listeners to start: each fd is this worker's own dup, owned from now on.
        std::vector<std::pair<int, conf::HostPort>> opened;
        std::vector<conf::HostPort> closed;  // listeners to stop accepting on
    };
    // Posts `update` to the worker's thread (nothing may touch its sockets from
    // another: its loop runs with unsafe I/O hints), then calls `done` there.
    // Open connections keep the snapshot they started with. Any thread.
    void apply(Update update, std::function<void()> done);

    void start();
    // Stops the loop at once (open sessions are destroyed) and joins the thread.
    void stop();

    boost::asio::io_context& io() { return io_; }
    // Touch only on the worker's thread (post to it).
    SessionRegistry& sessions() { return sessions_; }

private:
    struct Listener {
        Listener(boost::asio::io_context& io, const conf::HostPort& listen) : acceptor(io), listen(listen) {}
        AcceptingSocket acceptor;
        conf::HostPort listen;
    };
    void start_listener(int own_fd, const conf::HostPort& listen);
    boost::asio::awaitable<void> accept_loop(std::shared_ptr<Listener> listener);
    // Closes the sessions whose phase, idle or drain deadline has passed
    // (SessionRegistry::close_expired), waking when the earliest is due: no
    // work for sessions whose time has not come.
    boost::asio::awaitable<void> enforce_deadlines();

    // Order matters: io_ is destroyed before the members declared above it, and
    // its destruction destroys the suspended sessions, which still use them.
    std::size_t index_;
    std::atomic<std::int64_t>& live_sessions_;
    WorkerLimits limits_;
    std::vector<char> scratch_;
    PipePool pipes_;
    PumpKind pump_kind_;
    SessionRegistry sessions_;
    std::shared_ptr<const Runtime> runtime_;  // touched on the worker thread only once started
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    // Shared with their accept loops, which end after their acceptor closes.
    std::vector<std::shared_ptr<Listener>> listeners_;
    std::thread thread_;
};

}  // namespace castellan::proxy
