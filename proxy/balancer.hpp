// The running balancer: workers, listeners, the current runtime snapshot, the
// control thread (signals, reloads, health checks, admin API) and the process's
// life (start, reload, graceful stop).
#pragma once

#include "conf/config.hpp"
#include "healthcheck/monitor.hpp"
#include "proxy/admin/admin_server.hpp"
#include "proxy/log_throttle.hpp"
#include "proxy/runtime.hpp"
#include "proxy/worker.hpp"

#include <boost/asio/io_context.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace castellan::proxy {

class Balancer {
public:
    // `runtime` was built for `workers` workers (build_runtime()).
    Balancer(std::shared_ptr<const Runtime> runtime, unsigned workers);
    ~Balancer();

    // Binds every listener, starts the workers, the health checks and the admin
    // API, and serves until SIGTERM or SIGINT, then stops gracefully
    // (INTERFACE.md). Gives the process exit code: 0 after a clean stop, 1 when a
    // listener cannot be bound. Runs the control loop on the calling thread.
    int run();

    using ReloadDone = std::function<void(const admin::AdminServer::ReloadOutcome&)>;
    // Reads the config file again and applies it (INTERFACE.md's reload rules),
    // then calls `done` with the outcome. Reloads asked for while one is being
    // built are served together by the next one. Control thread.
    void reload(ReloadDone done);

private:
    struct BoundListener {
        conf::HostPort address;
        int fd;
    };
    // What a reload built off the control loop, and what it could not apply.
    struct ReloadBuild {
        BuildResult result;
        std::vector<std::string> restart_needed;  // settings kept until a restart
    };

    bool bind_listeners();
    void close_listeners();
    void begin_graceful_stop(int signal_number);
    void on_health_change(const healthcheck::CheckTarget& target, const healthcheck::HealthChange& change);
    void on_check_not_run(const healthcheck::CheckTarget& target, const healthcheck::CheckResult& result);
    void on_admin_state_change(const RealServerRuntime& server);
    void log_service_availability();

    // Reload steps, in order: a build on its own thread (file, DNS), then on the
    // control loop the new listeners, the snapshot handed to every worker, and
    // once all have it, the old listeners closed and the outcome told.
    void start_reload_round();
    static ReloadBuild build_for_reload(const std::string& file, const Runtime& previous, std::size_t workers);
    void apply_reload(ReloadBuild build, std::vector<ReloadDone> waiting);
    void finish_reload(std::vector<BoundListener> closing, std::vector<std::string> changes,
                       std::vector<ReloadDone> waiting);
    void refuse_reload(std::vector<std::string> errors, std::vector<ReloadDone> waiting);
    // Tells `waiting` the outcome, then starts the next round for reloads asked
    // meanwhile (or refuses them when stopping).
    void end_reload_round(const admin::AdminServer::ReloadOutcome& outcome, std::vector<ReloadDone> waiting);

    std::shared_ptr<const Runtime> runtime_;  // the current snapshot; control thread
    const unsigned worker_count_;
    std::atomic<std::int64_t> live_sessions_{0};
    std::vector<BoundListener> listeners_;
    boost::asio::io_context control_;
    // After control_: destroyed first, so that what a worker still holds of the
    // control loop (a reload's completion, with its admin timer) dies before it.
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unique_ptr<healthcheck::HealthMonitor> monitor_;
    std::unique_ptr<admin::AdminServer> admin_;
    std::map<std::string, bool> service_available_;  // by service name; control thread only
    admin::ConfigStatus config_status_;              // control thread only
    // Checks not made for want of a local port or descriptor: one line per 10 s
    // per kind (healthcheck::LocalShortage as the index), for all checks together.
    std::array<LogThrottle, healthcheck::local_shortage_kinds> check_not_run_log_;
    bool stopping_ = false;
    bool reload_running_ = false;
    std::vector<ReloadDone> reload_waiting_;  // asked while a round runs: the next round
    std::thread reload_thread_;
};

}  // namespace castellan::proxy
