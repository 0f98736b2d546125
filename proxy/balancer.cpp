#include "proxy/balancer.hpp"

#include "proxy/listen_socket.hpp"
#include "proxy/log.hpp"
#include "proxy/system_limits.hpp"
#include "proxy/systemd_notify.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>

namespace castellan::proxy {
namespace net = boost::asio;

namespace {

// How often a graceful stop looks whether the last connection has closed.
constexpr auto drain_poll = std::chrono::milliseconds(50);

}  // namespace

Balancer::Balancer(std::shared_ptr<const Runtime> runtime, unsigned workers)
    : runtime_(std::move(runtime)), worker_count_(workers == 0 ? 1 : workers) {}

Balancer::~Balancer() {
    if (reload_thread_.joinable()) reload_thread_.join();
    if (monitor_) monitor_->stop();
    if (admin_) admin_->close();
    for (auto& worker : workers_) worker->stop();
    close_listeners();
}

bool Balancer::bind_listeners() {
    for (const auto& service : runtime_->config.virtual_services) {
        std::string error;
        int fd = open_listen_socket(service.listen, error);
        if (fd < 0) {
            log::Line(log::Level::error, "listen_failed")
                .kv("vs", service.name)
                .kv("address", service.listen.to_string())
                .kv("error", error);
            return false;
        }
        listeners_.push_back({service.listen, fd});
        log::Line(log::Level::info, "listen")
            .kv("vs", service.name)
            .kv("address", service.listen.to_string())
            .kv("mode", conf::to_string(service.mode));
    }
    return true;
}

void Balancer::close_listeners() {
    for (auto& listener : listeners_) ::close(listener.fd);
    listeners_.clear();
}

int Balancer::run() {
    const auto limit = raise_file_limit();
    log::Line(log::Level::info, "file_limit")
        .kv("soft_before", limit.soft_before)
        .kv("soft", limit.soft_after)
        .kv("hard", limit.hard);

    if (!bind_listeners()) {
        close_listeners();
        return 1;
    }
    if (const auto& admin = runtime_->config.admin) {
        admin_ = std::make_unique<admin::AdminServer>(
            control_, [this] { return std::make_pair(runtime_, config_status_); },
            [this](std::function<void(const admin::AdminServer::ReloadOutcome&)> done) { reload(std::move(done)); },
            [this](const RealServerRuntime& server) { on_admin_state_change(server); });
        std::string error;
        if (!admin_->listen(admin->listen, error)) {
            log::Line(log::Level::error, "listen_failed").kv("vs", "admin").kv("address", admin->listen.to_string()).kv("error", error);
            close_listeners();
            return 1;
        }
        log::Line(log::Level::info, "listen").kv("vs", "admin").kv("address", admin->listen.to_string()).kv("mode", "admin");
        if (!admin->token_file) {
            // Without a token, whoever reaches this address may drain servers
            // and reload the config: fine on loopback only.
            auto host = admin->listen.host;
            if (host != "127.0.0.1" && host != "::1") {
                log::Line(log::Level::warn, "admin_without_token").kv("address", admin->listen.to_string());
            }
        }
    }

    const unsigned threads = worker_count_;
    // Each worker dups every listener: count those too.
    const std::size_t open_when_running = open_descriptor_count() + threads * listeners_.size();
    WorkerLimits limits;
    limits.spare_pipes = spare_pipes_per_worker(limit.soft_after, threads);
    limits.session_capacity = static_cast<std::int64_t>(session_capacity(limit.soft_after, open_when_running, threads));
    log::Line(log::Level::info, "session_capacity")
        .kv("connections", limits.session_capacity)
        .kv("file_limit", limit.soft_after)
        .kv("spare_pipes_per_worker", static_cast<std::uint64_t>(limits.spare_pipes));
    for (unsigned i = 0; i < threads; ++i) {
        auto worker = std::make_unique<Worker>(i, runtime_, live_sessions_, limits);
        for (const auto& listener : listeners_) worker->add_listener(listener.fd, listener.address);
        workers_.push_back(std::move(worker));
    }

    // Signals are handled here, on the control loop; workers never see them.
    net::signal_set signals(control_, SIGTERM, SIGINT, SIGHUP);
    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& error, int signal_number) {
            if (error) return;
            const char* name = signal_number == SIGTERM ? "SIGTERM" : signal_number == SIGINT ? "SIGINT" : "SIGHUP";
            if (signal_number == SIGHUP) {
                reload([](const admin::AdminServer::ReloadOutcome&) {});
            } else if (!stopping_) {
                begin_graceful_stop(signal_number);
            } else {
                // A second stop signal during the grace: the operator wants out now.
                log::Line(log::Level::warn, "stopping_now")
                    .kv("signal", name)
                    .kv("open_connections", live_sessions_.load());
                control_.stop();
                return;
            }
            signals.async_wait(on_signal);
        };
    signals.async_wait(on_signal);

    for (auto& worker : workers_) worker->start();
    monitor_ = std::make_unique<healthcheck::HealthMonitor>(
        control_.get_executor(),
        [this](const healthcheck::CheckTarget& target, const healthcheck::HealthChange& change) {
            on_health_change(target, change);
        },
        [this](const healthcheck::CheckTarget& target, const healthcheck::CheckResult& result) {
            on_check_not_run(target, result);
        });
    monitor_->start(runtime_->health_targets);
    log::Line(log::Level::info, "ready")
        .kv("version", CASTELLAN_VERSION)
        .kv("config", runtime_->config_file)
        .kv("threads", static_cast<std::uint64_t>(threads))
        .kv("virtual_services", static_cast<std::uint64_t>(runtime_->services.size()));
    const bool told = notify_systemd(fmt::format("READY=1\nSTATUS=serving {} virtual services, config generation {}",
                                                 runtime_->services.size(), config_status_.generation));
    if (const char* socket = std::getenv("NOTIFY_SOCKET"); !told && socket && *socket) {
        // systemd would kill a Type=notify start that never hears READY=1
        // after TimeoutStartSec: say why here.
        log::Line(log::Level::warn, "systemd_notify_failed").kv("socket", socket).kv("message", "READY=1");
    }

    control_.run();

    monitor_->stop();
    if (admin_) admin_->close();
    const auto left = live_sessions_.load();
    for (auto& worker : workers_) worker->stop();
    log::Line(log::Level::info, "stopped").kv("connections_cut", left);
    return 0;
}

void Balancer::begin_graceful_stop(int signal_number) {
    stopping_ = true;
    notify_systemd("STOPPING=1");
    log::Line(log::Level::info, "stopping")
        .kv("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT")
        .kv("open_connections", live_sessions_.load())
        .kv("grace_s", runtime_->config.shutdown_grace_s);
    // New clients are refused at once: every worker closes its dup of each
    // listening socket, and the originals close here. Health checks and the admin
    // API go on while open connections finish.
    for (auto& worker : workers_) worker->close_listeners();
    close_listeners();

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(runtime_->config.shutdown_grace_s);
    net::co_spawn(
        control_,
        [this, deadline]() -> net::awaitable<void> {
            net::steady_timer timer(control_);
            while (live_sessions_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
                timer.expires_after(drain_poll);
                co_await timer.async_wait(net::as_tuple(net::use_awaitable));
            }
            control_.stop();
        },
        net::detached);
}

void Balancer::on_health_change(const healthcheck::CheckTarget& target, const healthcheck::HealthChange& change) {
    log::Line(change.to == healthcheck::Health::down ? log::Level::warn : log::Level::info, "server_state")
        .kv("server", target.label)
        .kv("check", conf::to_string(target.check.type))
        .kv("from", healthcheck::to_string(change.from))
        .kv("to", healthcheck::to_string(change.to))
        .kv("reason", change.reason);

    if (change.to == healthcheck::Health::down && change.by_active_check) {
        // on_server_down: close, in every service that uses this server — also
        // through a persistence group, where the down state is shared — and in
        // every generation: sessions are matched by the server's lasting state,
        // which a reload that changed the check (and so the health object)
        // keeps.
        const healthcheck::ServerHealth* down = target.health.get();
        auto down_states = std::make_shared<std::vector<const ServerState*>>();
        for (const auto& service : runtime_->services) {
            for (const auto& server : service->servers) {
                if (server->health.get() == down) down_states->push_back(server->state.get());
            }
        }
        auto is_down = [down, down_states](const RealServerRuntime& server) {
            return server.health.get() == down ||
                   std::find(down_states->begin(), down_states->end(), server.state.get()) != down_states->end();
        };
        auto health_owner = target.health;  // `down` stays valid while the workers look
        for (auto& worker : workers_) {
            net::post(worker->io(), [worker = worker.get(), is_down, health_owner] {
                std::size_t closed = worker->sessions().close_if(
                    [&is_down](const LiveSession& session) {
                        // A session still before its connect has no server yet.
                        if (!session.server) return false;
                        if (session.service->config.on_server_down != conf::OnServerDown::close) return false;
                        if (is_down(*session.server)) return true;
                        for (const auto& peer : session.server->group_peers) {
                            if (is_down(*peer.server)) return true;
                        }
                        return false;
                    },
                    "server_down");
                if (closed > 0) log::Line(log::Level::info, "connections_closed").kv("reason", "server_down").kv("count", static_cast<std::uint64_t>(closed));
            });
        }
    }
    log_service_availability();
}

void Balancer::on_check_not_run(const healthcheck::CheckTarget& target, const healthcheck::CheckResult& result) {
    const auto suppressed =
        check_not_run_log_[static_cast<std::size_t>(result.local)].admit(std::chrono::steady_clock::now());
    if (!suppressed) return;
    // The same event as the proxy's own shortage of ports (the same remedy),
    // told apart by `check`; other shortages (descriptors) as check_not_run.
    const bool ports = result.local == healthcheck::LocalShortage::ports;
    log::Line line(log::Level::error, ports ? healthcheck::to_string(result.local) : "check_not_run");
    line.kv("server", target.label)
        .kv("check", conf::to_string(target.check.type))
        .kv("source", "kernel")
        .kv("reason", result.detail)
        .kv("counted", "no");
    if (ports) line.kv("remedy", "add source_addresses or widen net.ipv4.ip_local_port_range");
    line.kv("suppressed", *suppressed);
}

void Balancer::on_admin_state_change(const RealServerRuntime& server) {
    // drain_timeout_s: a worker times a session's drain only once told that its
    // server drains (a session connected later reads the state itself). Every
    // generation's sessions share the server's lasting state, which `state`
    // keeps valid while the workers look.
    if (server.state->admin.state() != AdminState::draining) return;
    for (auto& worker : workers_) {
        net::post(worker->io(), [worker = worker.get(), state = server.state] { worker->sessions().drain_started(*state); });
    }
}

void Balancer::log_service_availability() {
    const auto now = std::chrono::steady_clock::now();
    for (const auto& service : runtime_->services) {
        bool available = false;
        for (const auto& server : service->servers) available = available || server->accepts_new_clients(now);
        auto [it, inserted] = service_available_.try_emplace(service->config.name, true);
        if (it->second == available) continue;
        it->second = available;
        if (available) {
            log::Line(log::Level::info, "service_available").kv("vs", service->config.name);
        } else {
            log::Line(log::Level::error, "service_unavailable")
                .kv("vs", service->config.name)
                .kv("reason", "every real server is down; new connections are closed at once");
        }
    }
}

}  // namespace castellan::proxy
