// The running balancer: workers, listeners, the current runtime snapshot, the
// control thread (signals, health checks, admin API) and the process's life
// (start, graceful stop).
#pragma once

#include "conf/config.hpp"
#include "healthcheck/monitor.hpp"
#include "proxy/admin/admin_server.hpp"
#include "proxy/runtime.hpp"
#include "proxy/worker.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace castellan::proxy {

class Balancer {
public:
    explicit Balancer(std::shared_ptr<const Runtime> runtime);
    ~Balancer();

    // Binds every listener, starts the workers, the health checks and the admin
    // API, and serves until SIGTERM or SIGINT, then stops gracefully
    // (INTERFACE.md). Gives the process exit code: 0 after a clean stop, 1 when a
    // listener cannot be bound. Runs the control loop on the calling thread.
    int run();

private:
    struct BoundListener {
        conf::HostPort address;
        int fd;
    };
    bool bind_listeners();
    void close_listeners();
    void begin_graceful_stop(int signal_number);
    void on_health_change(const healthcheck::CheckTarget& target, const healthcheck::HealthChange& change);
    void log_service_availability();

    std::shared_ptr<const Runtime> runtime_;
    std::atomic<std::int64_t> live_sessions_{0};
    std::vector<BoundListener> listeners_;
    std::vector<std::unique_ptr<Worker>> workers_;
    boost::asio::io_context control_;
    std::unique_ptr<healthcheck::HealthMonitor> monitor_;
    std::unique_ptr<admin::AdminServer> admin_;
    std::map<const ServiceRuntime*, bool> service_available_;  // control thread only
};

}  // namespace castellan::proxy
