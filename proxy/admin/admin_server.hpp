// The admin API listener (`admin.listen`): HTTP/1.1 on the control thread, off
// the data path.
//
// Today it answers `GET /` (the status page) and `GET /api/v1/status`; every
// other path is 404. Metrics, state changes and reload come with the admin issue.
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

namespace castellan::proxy::admin {

class AdminServer {
public:
    // `current` gives the snapshot to report on and the config status; called on
    // the control thread.
    using SnapshotSource = std::function<std::pair<std::shared_ptr<const Runtime>, ConfigStatus>()>;

    AdminServer(boost::asio::io_context& io, SnapshotSource current);
    ~AdminServer();

    // Binds `address`; false with `error` set when it cannot.
    bool listen(const conf::HostPort& address, std::string& error);
    void close();

    struct State;  // defined in the .cpp; shared with the coroutines serving clients

private:
    std::shared_ptr<State> state_;
};

}  // namespace castellan::proxy::admin
