#include "proxy/worker.hpp"

#include "healthcheck/local_shortage.hpp"
#include "proxy/log.hpp"
#include "proxy/system_limits.hpp"
#include "proxy/http_session.hpp"
#include "proxy/tcp_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>

namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// 64 KiB per worker, not per connection: see pump().
constexpr std::size_t scratch_bytes = 64 * 1024;
// How long an acceptor rests after running out of descriptors or memory. Retrying
// at once would spin a core on an error that only a closing connection can clear.
constexpr auto resource_backoff = std::chrono::milliseconds(100);
// Deadlines due this close together are handled in one wake-up: a session is
// closed at most this long after its time (plus the loop's own delay), and a
// worker whose sessions are busy wakes at most 100 times a second for them.
constexpr auto deadline_slack = std::chrono::milliseconds(10);
// How often a service at max_connections looks for a free slot.
constexpr auto slot_poll = std::chrono::milliseconds(10);

// Gives a max_connections slot back when the session that held it ends. `owner`
// keeps the snapshot the slot belongs to alive until then.
net::awaitable<void> run_counted(net::awaitable<void> session, std::shared_ptr<const Runtime> owner,
                                 std::atomic<std::int64_t>* slots) {
    co_await std::move(session);
    if (slots) slots->fetch_sub(1, std::memory_order_relaxed);
    owner.reset();
}

}  // namespace

Worker::Worker(std::size_t index, std::shared_ptr<const Runtime> runtime, std::atomic<std::int64_t>& live_sessions,
               WorkerLimits limits)
    : index_(index),
      live_sessions_(live_sessions),
      limits_(limits),
      scratch_(scratch_bytes),
      pipes_(limits.spare_pipes),
      pump_kind_(pump_kind_from_environment()),
      runtime_(std::move(runtime)),
      // One thread runs this loop, and every socket and timer on it is used only
      // from that thread (other threads post to it), so the reactor needs no
      // locks; posting from other threads stays safe.
      io_(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO),
      work_(net::make_work_guard(io_)) {}

Worker::~Worker() { stop(); }

void Worker::add_listener(int listen_fd, const conf::HostPort& listen) { start_listener(::dup(listen_fd), listen); }

void Worker::start_listener(int own_fd, const conf::HostPort& listen) {
    auto listener = std::make_shared<Listener>(io_, listen);
    boost::system::error_code error;
    if (own_fd < 0) {
        error.assign(errno, boost::system::system_category());
    } else {
        listener->acceptor.assign(listen.kind == conf::HostPort::Kind::ipv6 ? tcp::v6() : tcp::v4(), own_fd, error);
    }
    if (error) {
        if (own_fd >= 0) ::close(own_fd);
        log::Line(log::Level::error, "accept_setup_failed").kv("address", listen.to_string()).kv("error", error.message());
        return;
    }
    listeners_.push_back(listener);
    net::co_spawn(io_, accept_loop(std::move(listener)), net::detached);
}

void Worker::close_listeners() {
    net::post(io_, [this] {
        for (auto& listener : listeners_) {
            boost::system::error_code ignored;
            listener->acceptor.close(ignored);
        }
        listeners_.clear();
    });
}

void Worker::apply(Update update, std::function<void()> done) {
    net::post(io_, [this, update = std::move(update), done = std::move(done)]() mutable {
        runtime_ = std::move(update.runtime);
        for (const auto& address : update.closed) {
            std::erase_if(listeners_, [&](const std::shared_ptr<Listener>& listener) {
                if (listener->listen != address) return false;
                boost::system::error_code ignored;
                listener->acceptor.close(ignored);
                return true;
            });
        }
        for (auto& [fd, address] : update.opened) start_listener(fd, address);
        done();
    });
}

void Worker::start() {
    net::co_spawn(io_, enforce_deadlines(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
}

net::awaitable<void> Worker::enforce_deadlines() {
    net::steady_timer timer(io_);
    // The registry brings the timer forward when a session is filed due before
    // it (cancel: the wait below ends early). Unhooked when this frame is
    // destroyed (with the loop), so that nothing reaches a timer that is gone.
    sessions_.on_earlier_due([&timer] { timer.cancel(); });
    struct Unhook {
        SessionRegistry& sessions;
        ~Unhook() { sessions.on_earlier_due(nullptr); }
    } unhook{sessions_};
    for (;;) {
        const auto due = sessions_.next_due();
        sessions_.set_wake_time(due);
        if (due == std::chrono::steady_clock::time_point::max()) {
            timer.expires_at(due);  // nothing timed: wait to be woken
        } else {
            timer.expires_at(std::max(due, std::chrono::steady_clock::now() + deadline_slack));
        }
        // Ends on time, or cancelled by the registry for an earlier deadline.
        co_await timer.async_wait(net::as_tuple(net::use_awaitable));
        sessions_.close_expired(std::chrono::steady_clock::now());
    }
}

void Worker::stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
}

net::awaitable<void> Worker::accept_loop(std::shared_ptr<Listener> listener_owner) {
    Listener& listener = *listener_owner;
    constexpr auto use = net::as_tuple(net::use_awaitable);
    net::steady_timer pause(io_);
    bool at_capacity = false;  // logged once per episode
    for (;;) {
        auto slot_owner = runtime_;
        ServiceRuntime* service = slot_owner->find_service(listener.listen);
        if (!service || !listener.acceptor.is_open()) co_return;

        // The file limit's capacity: beyond it an accepted client would only take
        // the descriptor its real-server connection needs. New clients wait in
        // the kernel's accept backlog instead.
        if (limits_.session_capacity > 0 && live_sessions_.load(std::memory_order_relaxed) >= limits_.session_capacity) {
            if (!at_capacity) {
                at_capacity = true;
                log::Line(log::Level::warn, "session_capacity_reached")
                    .kv("worker", static_cast<std::uint64_t>(index_))
                    .kv("capacity", limits_.session_capacity)
                    .kv("hint", "raise the open-file limit (LimitNOFILE) to serve more connections at once");
            }
            pause.expires_after(slot_poll);
            co_await pause.async_wait(use);
            continue;
        }
        at_capacity = false;

        // max_connections: take a slot before accepting; beyond the limit, new
        // clients wait in the kernel's accept backlog.
        std::atomic<std::int64_t>* slots = nullptr;
        if (const int limit = service->config.max_connections; limit > 0) {
            slots = &service->state->accept_slots;
            if (slots->fetch_add(1, std::memory_order_relaxed) >= limit) {
                slots->fetch_sub(1, std::memory_order_relaxed);
                pause.expires_after(slot_poll);
                co_await pause.async_wait(use);
                continue;
            }
        }

        tcp::endpoint peer;  // filled by accept: saves a getpeername() per connection
        auto [error, socket] = co_await listener.acceptor.async_accept(peer, use);
        if (error) {
            if (slots) slots->fetch_sub(1, std::memory_order_relaxed);
            if (error == net::error::operation_aborted || !listener.acceptor.is_open()) co_return;
            log::Line(log::Level::warn, "accept_failed")
                .kv("address", listener.listen.to_string())
                .kv("worker", static_cast<std::uint64_t>(index_))
                .kv("error", error.message());
            if (healthcheck::is_out_of_resources(error)) {
                pause.expires_after(resource_backoff);
                co_await pause.async_wait(use);
            }
            continue;
        }

        // The snapshot is taken now and kept by the session until it closes. The
        // slot was taken on the service of the snapshot read above; it is given
        // back to that same object.
        auto runtime = runtime_;
        ServiceRuntime* current = runtime->find_service(listener.listen);
        if (!current) {
            if (slots) slots->fetch_sub(1, std::memory_order_relaxed);
            co_return;
        }
        SessionEnvironment environment{index_, PumpTools{std::span<char>(scratch_), &pipes_, pump_kind_}, sessions_, live_sessions_};
        // The session for the service's mode (tcp: bytes, TLS or not; http:
        // requests), chosen once, at accept.
        auto session = current->config.mode == conf::Mode::http
                           ? run_http_session(std::move(socket), peer, std::move(runtime), *current, environment)
                           : run_tcp_session(std::move(socket), peer, std::move(runtime), *current, environment);
        net::co_spawn(io_, run_counted(std::move(session), std::move(slot_owner), slots),
                      [](std::exception_ptr failure) {
                          if (!failure) return;
                          try {
                              std::rethrow_exception(failure);
                          } catch (const std::exception& e) {
                              log::Line(log::Level::error, "session_failed").kv("error", e.what());
                          }
                      });
    }
}

}  // namespace castellan::proxy
