// The running balancer: workers, listeners, the current runtime snapshot, and the
// process's life (start, signals, graceful stop).
#pragma once

#include "conf/config.hpp"
#include "proxy/runtime.hpp"
#include "proxy/worker.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace castellan::proxy {

class Balancer {
public:
    Balancer(std::string config_file, std::shared_ptr<const Runtime> runtime);
    ~Balancer();

    // Binds every listener, starts the workers and serves until SIGTERM or SIGINT,
    // then stops gracefully (INTERFACE.md). Gives the process exit code: 0 after a
    // clean stop, 1 when a listener cannot be bound.
    int run();

private:
    struct BoundListener {
        conf::HostPort address;
        int fd;
    };
    bool bind_listeners();
    void close_listeners();
    void stop_gracefully();

    std::string config_file_;
    std::shared_ptr<const Runtime> runtime_;
    std::atomic<std::int64_t> live_sessions_{0};
    std::vector<BoundListener> listeners_;
    std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace castellan::proxy
