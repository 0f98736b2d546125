#include "proxy/reactor_ops.hpp"

#include <boost/asio/detail/reactive_socket_service_base.hpp>
#include <boost/asio/detail/socket_ops.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

using SocketService = net::detail::reactive_socket_service_base;
using SocketImplementation = SocketService::base_implementation_type;

// Asio keeps a socket's reactor state in a protected member, and the call that
// starts an operation in the reactor protected in its service: classes derived
// from them may name both, and a pointer to a member so named applies to any
// socket (the language's rule for protected access through a pointer to member).
struct SocketInternals : tcp::socket {
    static SocketImplementation& implementation(tcp::socket& socket) {
        return (socket.*(&SocketInternals::impl_)).get_implementation();
    }
    static SocketService& service(tcp::socket& socket) { return (socket.*(&SocketInternals::impl_)).get_service(); }
};

struct ServiceInternals : SocketService {
    static void start(SocketService& service, SocketImplementation& implementation, int op_type,
                      net::detail::reactor_op* op) {
        // Speculative (may be performed at once), not a continuation, not a no-op.
        (service.*(&ServiceInternals::start_op))(implementation, op_type, op, false, true, false);
    }
};

}  // namespace

namespace reactor_access {

void start(tcp::socket& socket, int op_type, net::detail::reactor_op* op) {
    ServiceInternals::start(SocketInternals::service(socket), SocketInternals::implementation(socket), op_type, op);
}

}  // namespace reactor_access

void adopt_nonblocking(tcp::socket& socket) {
    auto& state = SocketInternals::implementation(socket).state_;
    using net::detail::socket_ops::state_type;
    state = static_cast<state_type>((state | net::detail::socket_ops::internal_non_blocking) &
                                    ~net::detail::socket_ops::possible_dup);
}

void adopt_descriptor(tcp::socket& socket, const tcp& protocol, int fd, boost::system::error_code& error) {
    socket.assign(protocol, fd, error);
    if (error) {
        ::close(fd);
        return;
    }
    adopt_nonblocking(socket);
}

}  // namespace castellan::proxy
