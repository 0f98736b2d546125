#include "proxy/balancer.hpp"

#include "proxy/listen_socket.hpp"
#include "proxy/log.hpp"
#include "proxy/system_limits.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <chrono>
#include <csignal>

namespace castellan::proxy {
namespace net = boost::asio;

Balancer::Balancer(std::string config_file, std::shared_ptr<const Runtime> runtime)
    : config_file_(std::move(config_file)), runtime_(std::move(runtime)) {}

Balancer::~Balancer() {
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

    const int configured = runtime_->config.threads;
    const unsigned threads = configured > 0 ? static_cast<unsigned>(configured) : usable_cpu_count();
    for (unsigned i = 0; i < threads; ++i) {
        auto worker = std::make_unique<Worker>(i, runtime_, live_sessions_);
        for (const auto& listener : listeners_) worker->add_listener(listener.fd, listener.address);
        workers_.push_back(std::move(worker));
    }

    // Signals are handled here, on the main thread's own loop; workers never see them.
    net::io_context control;
    net::signal_set signals(control, SIGTERM, SIGINT, SIGHUP);
    bool stopping = false;
    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& error, int signal_number) {
            if (error) return;
            if (signal_number == SIGHUP) {
                log::Line(log::Level::warn, "reload_refused")
                    .kv("file", config_file_)
                    .kv("reason", "live reload is not available in this version; restart to apply a new config");
                signals.async_wait(on_signal);
                return;
            }
            stopping = true;
            log::Line(log::Level::info, "stopping")
                .kv("signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT")
                .kv("open_connections", live_sessions_.load())
                .kv("grace_s", runtime_->config.shutdown_grace_s);
            control.stop();
        };
    signals.async_wait(on_signal);

    for (auto& worker : workers_) worker->start();
    log::Line(log::Level::info, "ready")
        .kv("version", CASTELLAN_VERSION)
        .kv("config", config_file_)
        .kv("threads", static_cast<std::uint64_t>(threads))
        .kv("virtual_services", static_cast<std::uint64_t>(runtime_->services.size()));

    control.run();
    if (stopping) stop_gracefully();
    return 0;
}

void Balancer::stop_gracefully() {
    // New clients are refused at once: every worker closes its dup of each
    // listening socket, and the originals close here.
    for (auto& worker : workers_) worker->close_listeners();
    close_listeners();

    const auto grace = std::chrono::seconds(runtime_->config.shutdown_grace_s);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (live_sessions_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const auto left = live_sessions_.load();
    for (auto& worker : workers_) worker->stop();
    log::Line(log::Level::info, "stopped").kv("connections_cut", left);
}

}  // namespace castellan::proxy
