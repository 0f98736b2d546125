#include "proxy/session_registry.hpp"

namespace castellan::proxy {

std::size_t SessionRegistry::close_if(const std::function<bool(const LiveSession&)>& select, const char* reason) {
    std::size_t closed = 0;
    for (LiveSession* session : sessions_) {
        if (session->closed_because || !select(*session)) continue;
        session->closed_because = reason;
        boost::system::error_code ignored;
        // cancel() first: a pump suspended on the socket completes with
        // operation_aborted instead of touching a closed descriptor.
        session->client->cancel(ignored);
        session->backend->cancel(ignored);
        session->client->close(ignored);
        session->backend->close(ignored);
        ++closed;
    }
    return closed;
}

}  // namespace castellan::proxy
