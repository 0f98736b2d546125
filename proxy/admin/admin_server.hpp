// The admin API listener (`admin.listen`): HTTP/1.1 on the control thread, off
// the data path.
//
// Answers the status page (`GET /`), `GET /api/v1/status`, `GET /metrics`, real
// server state changes, the persistence table (`/api/v1/persistence`) and
// `POST /api/v1/reload` (INTERFACE.md). Keeps the
// traffic history the page's rates and graphs come from.
#pragma once

#include "conf/config.hpp"
#include "proxy/admin/status_json.hpp"
#include "proxy/runtime.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace castellan::proxy::admin {

class AdminServer {
public:
    // `current` gives the snapshot to report on and the config status; called on
    // the control thread.
    using SnapshotSource = std::function<std::pair<std::shared_ptr<const Runtime>, ConfigStatus>()>;

    // The outcome of a reload, as `POST /api/v1/reload` answers it.
    struct ReloadOutcome {
        bool ok = false;
        std::uint64_t generation = 0;
        std::vector<std::string> errors;  // "<path>: <message>"
    };
    // Starts a reload and calls its argument once with the outcome, on the
    // control thread (possibly before returning).
    using ReloadRequest = std::function<void(std::function<void(const ReloadOutcome&)>)>;

    // Told, on the control thread, of a real server whose admin state the API
    // just set (a drain makes the workers time its connections).
    using StateChanged = std::function<void(const RealServerRuntime&)>;

    AdminServer(boost::asio::io_context& io, SnapshotSource current, ReloadRequest reload, StateChanged state_changed);
    ~AdminServer();

    // Binds `address`; false with `error` set when it cannot.
    bool listen(const conf::HostPort& address, std::string& error);
    void close();

    struct State;  // defined in the .cpp; shared with the coroutines serving clients

private:
    std::shared_ptr<State> state_;
};

}  // namespace castellan::proxy::admin
