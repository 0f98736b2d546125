#include "proxy/upstream_connect.hpp"

#include "healthcheck/local_shortage.hpp"
#include "proxy/log.hpp"
#include "proxy/reactor_ops.hpp"
#include "proxy/socket_options.hpp"
#include "proxy/transparent_source.hpp"
#include "tls/socket_bio.hpp"
#include "tls/tls_io.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace castellan::proxy {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

using healthcheck::LocalShortage;
using healthcheck::SocketStep;

enum class ConnectResult { ok, refused, timed_out, local, tls_failed };

// What one attempt at a real server gives.
struct Attempt {
    ConnectResult result = ConnectResult::ok;
    boost::system::error_code error;
    LocalShortage shortage = LocalShortage::none;  // with result local: what this host lacked
    std::optional<net::ip::address> source;        // the source address tried last; none = the kernel's choice
    std::size_t sources_tried = 0;
    // A source address that bind() refused (not on this host?), told even when
    // another one then served the client.
    std::optional<net::ip::address> missing_source;
    boost::system::error_code missing_error;
    std::string detail;  // tls_failed: the handshake's reason
};

// What the connect timer and the connecting coroutine share. The timer's
// handler may already be queued when the connect completes, so it holds the
// state itself instead of pointing into the coroutine's frame, and finds
// `socket` cleared once the attempt is over.
struct ConnectWatch {
    tcp::socket* socket = nullptr;
    bool timed_out = false;
};

boost::system::error_code last_error() { return {errno, boost::system::system_category()}; }

// A socket for a real server before Asio has it: opened non-blocking, bound
// and connected first, registered with epoll (adopt_descriptor) only then. On
// loopback or a near LAN the handshake completes inside connect(2), and each
// wake-up it raises on a socket that epoll already watches costs a callback
// under epoll's lock: castellan's connect took twice HAProxy's kernel time
// (perf), which registers its server sockets after connect() too.
class FreshSocket {
public:
    FreshSocket() = default;
    FreshSocket(const FreshSocket&) = delete;
    FreshSocket& operator=(const FreshSocket&) = delete;
    ~FreshSocket() { close(); }

    bool is_open() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    bool open(const tcp& protocol, boost::system::error_code& error) {
        close();
        fd_ = ::socket(protocol.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd_ < 0) error = last_error();
        return fd_ >= 0;
    }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    // Gives the descriptor to `socket` (registering it with epoll).
    void hand_to(tcp::socket& socket, const tcp& protocol, boost::system::error_code& error) {
        adopt_descriptor(socket, protocol, fd_, error);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

// Binds the open `socket` to `address`, the port left to connect()
// (IP_BIND_ADDRESS_NO_PORT): bind() alone would reserve a port against every
// destination, so that the ports would run out at ~28000 connections in all
// instead of ~28000 per real server and source address. Closes the socket
// again when that fails.
bool bind_leaving_port(FreshSocket& socket, const net::ip::address& address, boost::system::error_code& error) {
    // Without the option (Linux before 4.2) bind() picks the port: fewer
    // connections fit, and none fails for it.
    int on = 1;
    ::setsockopt(socket.fd(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
    const tcp::endpoint local(address, 0);
    if (::bind(socket.fd(), local.data(), static_cast<socklen_t>(local.size())) == 0) return true;
    error = last_error();
    socket.close();
    return false;
}

// Opens `socket` and binds it to `source` (bind_leaving_port). Gives what
// this host lacked, if anything; the socket is closed again then.
LocalShortage bind_source(FreshSocket& socket, const tcp& protocol, const net::ip::address& source,
                          boost::system::error_code& error) {
    if (!socket.open(protocol, error)) return healthcheck::local_shortage_of(error, SocketStep::open);
    if (bind_leaving_port(socket, source, error)) return LocalShortage::none;
    return healthcheck::local_shortage_of(error, SocketStep::bind);
}

// Opens `socket` as a transparent one (IP_TRANSPARENT) and binds it to the
// client's address, the port left to connect() as bind_source() does. Gives
// what failed here, if anything; the socket is closed again then. The start
// made sure the option may be set (check_transparent_capability), so a failure
// is rare: castellan's, never the real server's.
LocalShortage bind_transparent(FreshSocket& socket, const tcp& protocol, const net::ip::address& client,
                               boost::system::error_code& error) {
    if (!socket.open(protocol, error)) return healthcheck::local_shortage_of(error, SocketStep::open);
    if (!set_transparent(socket.fd(), protocol == tcp::v6(), error)) {
        socket.close();
    } else if (bind_leaving_port(socket, client, error)) {
        return LocalShortage::none;
    }
    const LocalShortage shortage = healthcheck::local_shortage_of(error, SocketStep::bind);
    // Ports and descriptors keep their names (and remedies); anything else is
    // the client's address that the socket could not take.
    return shortage == LocalShortage::source_address ? LocalShortage::transparent_source : shortage;
}

// Connects `fresh` (opened here if it is not yet) to `to`, then hands it to
// `socket`. Asio's own async_connect, once epoll says the socket is writable,
// asks poll(2) whether the connect is done and then getsockopt(SO_ERROR): the
// poll is a system call per connection that the answer to the wait already
// gave. The connect's EINPROGRESS is a write that would block: the wait needs
// no re-arm. A wait cancelled (the attempt's timer, which cancels `socket`)
// gives operation_aborted.
net::awaitable<boost::system::error_code> connect_socket(FreshSocket& fresh, tcp::socket& socket,
                                                         const tcp::endpoint& to) {
    boost::system::error_code error;
    if (!fresh.is_open() && !fresh.open(to.protocol(), error)) co_return error;
    const bool connected = ::connect(fresh.fd(), to.data(), static_cast<socklen_t>(to.size())) == 0;
    if (!connected && errno != EINPROGRESS) co_return last_error();
    fresh.hand_to(socket, to.protocol(), error);
    if (error || connected) co_return error;
    auto [wait_error] =
        co_await async_wait_after_would_block(socket, tcp::socket::wait_write, net::as_tuple(net::use_awaitable));
    if (wait_error) co_return wait_error;
    int result = 0;
    socklen_t size = sizeof result;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &result, &size) != 0) result = errno;
    co_return boost::system::error_code(result, boost::system::system_category());
}

// One attempt, bounded by `timeout`: the connect (from the server's turn of
// `sources`, trying the next ones of its family while this host lacks a port
// or the address) or, with `transparent_source`, from the client's address,
// and, when `upstream_tls` is set, the TLS handshake, whose session lands in
// `tls`. A timer whose handler cancels the socket costs less
// than racing two operations with `||`, which spawns a coroutine for each
// (measured: about 1.5 % of the connection rate).
net::awaitable<Attempt> connect_once(tcp::socket& socket, RealServerRuntime& server, const SourceAddresses& sources,
                                     const net::ip::address* transparent_source, const tls::UpstreamTls* upstream_tls,
                                     const std::optional<std::string>& sni, std::chrono::milliseconds timeout,
                                     tls::SslPtr& tls) {
    auto watch = std::make_shared<ConnectWatch>();
    watch->socket = &socket;
    net::steady_timer timer(co_await net::this_coro::executor, timeout);
    timer.async_wait([watch](const boost::system::error_code& expired_error) {
        if (expired_error || !watch->socket) return;
        watch->timed_out = true;
        boost::system::error_code ignored;
        watch->socket->cancel(ignored);
    });
    Attempt out;
    const auto& family = sources.of_family(server.endpoint.address().is_v6());
    if (transparent_source) {
        out.source = *transparent_source;
        FreshSocket fresh;
        out.shortage = bind_transparent(fresh, server.endpoint.protocol(), *transparent_source, out.error);
        if (out.shortage == LocalShortage::none) {
            out.error = co_await connect_socket(fresh, socket, server.endpoint);
            out.shortage = healthcheck::local_shortage_of(out.error, SocketStep::connect);
        }
    } else if (family.empty()) {
        // The kernel's choice. connect_socket() opens the socket: a failed
        // open (EMFILE) comes back here too.
        FreshSocket fresh;
        out.error = co_await connect_socket(fresh, socket, server.endpoint);
        out.shortage = healthcheck::local_shortage_of(out.error, SocketStep::connect);
    } else {
        const std::uint64_t turn = server.source_turn.fetch_add(1, std::memory_order_relaxed);
        bool ports_lacked = false;
        for (std::size_t attempt = 0; attempt < family.size() && !watch->timed_out; ++attempt) {
            const auto& source = family[SourceAddresses::index_for(family.size(), turn, attempt)];
            out.source = source;
            ++out.sources_tried;
            FreshSocket fresh;
            out.shortage = bind_source(fresh, server.endpoint.protocol(), source, out.error);
            if (out.shortage == LocalShortage::source_address && !out.missing_source) {
                out.missing_source = source;
                out.missing_error = out.error;
            }
            if (out.shortage == LocalShortage::none) {
                out.error = co_await connect_socket(fresh, socket, server.endpoint);
                out.shortage = healthcheck::local_shortage_of(out.error, SocketStep::connect);
            }
            // Connected, or the server's own answer, or out of descriptors or
            // memory (another address would not help): this was the last try.
            if (!out.error || out.shortage == LocalShortage::none || out.shortage == LocalShortage::resources) break;
            ports_lacked = ports_lacked || out.shortage == LocalShortage::ports;
            boost::system::error_code ignored;
            socket.close(ignored);  // the next address, on a fresh socket
        }
        // Some addresses out of ports, the last one missing: the ports are what
        // to fix first (the missing address is told on its own).
        if (out.error && ports_lacked && out.shortage == LocalShortage::source_address) {
            out.shortage = LocalShortage::ports;
        }
    }
    if (out.error) {
        out.result = out.shortage == LocalShortage::none ? ConnectResult::refused : ConnectResult::local;
    } else if (upstream_tls) {
        tls = upstream_tls->new_session(socket, server.upstream_session, sni);
        if (!tls) {
            out.error = net::error::no_memory;
            out.shortage = LocalShortage::resources;
            out.result = ConnectResult::local;
        } else {
            const tls::HandshakeResult handshake = co_await tls::handshake(socket, tls.get());
            if (!handshake.ok()) {
                out.result = ConnectResult::tls_failed;
                out.detail = "TLS handshake failed: " + handshake.detail;
                tls.reset();
            }
        }
    }
    watch->socket = nullptr;
    timer.cancel();
    if (watch->timed_out && out.result != ConnectResult::local) {
        out.error = net::error::timed_out;
        out.result = ConnectResult::timed_out;
        tls.reset();
    }
    co_return out;
}

void note_failure(ServiceRuntime& service, RealServerRuntime& server, Attempt& attempt,
                  std::chrono::milliseconds timeout) {
    server.state->connect_failures.fetch_add(1, std::memory_order_relaxed);
    std::string reason = attempt.result == ConnectResult::timed_out ? "timeout after " + std::to_string(timeout.count()) + " ms"
                         : attempt.result == ConnectResult::tls_failed ? std::move(attempt.detail)
                                                                       : attempt.error.message();
    log::Line(log::Level::warn, "connect_failed")
        .kv("vs", service.config.name)
        .kv("server", server.config.name)
        .kv("reason", reason);
    if (auto change = server.health->on_connect_failed(std::chrono::steady_clock::now(), reason)) {
        log::Line(log::Level::warn, "server_state")
            .kv("vs", service.config.name)
            .kv("server", server.config.name)
            .kv("from", healthcheck::to_string(change->from))
            .kv("to", healthcheck::to_string(change->to))
            .kv("reason", change->reason);
    }
}

std::string source_text(const std::optional<net::ip::address>& source) {
    return source ? source->to_string() : std::string("kernel");
}

// The `suppressed` count when a line of this kind for `server` is to be
// written now, nullopt when the throttle leaves it out.
std::optional<std::uint64_t> admit_line(RealServerRuntime& server, LocalShortage shortage) {
    return server.state->local_failure_log[static_cast<std::size_t>(shortage)].admit(std::chrono::steady_clock::now());
}

// A source address that bind() refused: the operator's to fix, whether or not
// another address then served the client. At most one line per 10 s per server.
void report_missing_source(const ServiceRuntime& service, RealServerRuntime& server, const Attempt& attempt) {
    const auto suppressed = admit_line(server, LocalShortage::source_address);
    if (!suppressed) return;
    log::Line(log::Level::error, healthcheck::to_string(LocalShortage::source_address))
        .kv("vs", service.config.name)
        .kv("server", server.config.name)
        .kv("address", server.config.address.to_string())
        .kv("source", attempt.missing_source->to_string())
        .kv("error", attempt.missing_error.message())
        .kv("remedy", "configure the address on an interface of this host, or remove it from source_addresses")
        .kv("suppressed", *suppressed);
}

// The client's connect failed for want of something here: castellan's
// failure, never the real server's (no connect_failures, no health change, no
// other server tried as if this one had failed). Counted, and logged at most
// once per 10 s per server and kind with the number left out.
void report_local_failure(const ServiceRuntime& service, RealServerRuntime& server, const Attempt& attempt) {
    server.state->local_connect_failures.fetch_add(1, std::memory_order_relaxed);
    // A missing source address was told by report_missing_source().
    if (attempt.shortage == LocalShortage::source_address) return;
    const auto suppressed = admit_line(server, attempt.shortage);
    if (!suppressed) return;
    if (attempt.shortage == LocalShortage::transparent_source) {
        log::Line(log::Level::error, healthcheck::to_string(LocalShortage::transparent_source))
            .kv("vs", service.config.name)
            .kv("server", server.config.name)
            .kv("client", source_text(attempt.source))
            .kv("error", attempt.error.message())
            .kv("remedy", "castellan needs CAP_NET_ADMIN for transparent mode (see contrib/castellan.service)")
            .kv("counted", "no")
            .kv("suppressed", *suppressed);
        return;
    }
    if (attempt.shortage == LocalShortage::resources) {
        log::Line(log::Level::error, "connect_failed")
            .kv("vs", service.config.name)
            .kv("server", server.config.name)
            .kv("reason", "out of resources here: " + attempt.error.message())
            .kv("counted", "no")
            .kv("suppressed", *suppressed);
        return;
    }
    // The connections open to it (and connects in flight) besides this one: what
    // the ports went to.
    const std::uint64_t others = server.state->traffic.active.load(std::memory_order_relaxed) - 1;
    log::Line line(log::Level::error, healthcheck::to_string(LocalShortage::ports));
    line.kv("vs", service.config.name)
        .kv("server", server.config.name)
        .kv("address", server.config.address.to_string())
        .kv("source", source_text(attempt.source));
    if (attempt.sources_tried > 0) line.kv("sources_tried", static_cast<std::uint64_t>(attempt.sources_tried));
    line.kv("connections_active", others)
        .kv("error", attempt.error.message())
        .kv("remedy", "add source_addresses or widen net.ipv4.ip_local_port_range")
        .kv("suppressed", *suppressed);
}

}  // namespace

std::optional<std::size_t> paired_server(const ServiceRuntime& service, std::uint64_t pairing_key) {
    if (!service.channel_pairing) return std::nullopt;
    const std::size_t count = service.servers.size();
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::uint8_t> eligible(count);
    for (std::size_t i = 0; i < count; ++i) eligible[i] = service.servers[i]->accepts_new_clients(now);
    // The hash reads no connection counts.
    return service.channel_pairing->pick({pairing_key, eligible, {}});
}

net::awaitable<std::unique_ptr<UpstreamConnection>> connect_upstream(ServiceRuntime& service,
                                                                  const persistence::ClientKey& client,
                                                                  const net::ip::address& client_address,
                                                                  const char*& failure,
                                                                  std::optional<std::size_t> preferred,
                                                                  std::optional<std::uint64_t> pairing_key) {
    failure = "no_server_available";
    const std::size_t count = service.servers.size();
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::uint8_t> eligible(count);
    std::vector<std::uint32_t> active(count);
    for (std::size_t i = 0; i < count; ++i) {
        const auto& server = *service.servers[i];
        eligible[i] = server.accepts_new_clients(now);
        active[i] = server.state->traffic.active.load(std::memory_order_relaxed);
    }

    std::optional<std::size_t> next;
    if (preferred && *preferred < count && eligible[*preferred]) next = preferred;
    // A channel placed by its virtual connection cookie leaves the client's
    // source-IP entry alone: it is the fallback's, for the other requests.
    auto* table = pairing_key ? nullptr : service.source_ip_table.get();
    persistence::Scheduler& scheduler =
        pairing_key && service.channel_pairing ? *service.channel_pairing : *service.scheduler;
    if (table && !next) {
        if (auto name = table->find(client, now)) {
            auto index = service.index_of(*name);
            if (index && eligible[*index]) next = index;
        }
    }

    const std::uint64_t key_hash = pairing_key ? *pairing_key : persistence::hash_client_key(client);
    const auto timeout = std::chrono::milliseconds(service.config.timeouts.connect_ms);
    auto executor = co_await net::this_coro::executor;
    static const std::optional<std::string> no_sni;
    const std::optional<std::string>& upstream_sni = service.config.tls ? service.config.tls->upstream.sni : no_sni;
    bool claimed = next.has_value();
    for (std::size_t attempt = 0; attempt < count; ++attempt) {
        if (!next) next = scheduler.pick({key_hash, eligible, active});
        if (!next) break;
        if (table && !claimed) {
            // Another connection of this client (to another member of the group)
            // may have chosen a server since find(): follow it.
            claimed = true;
            auto bound = service.index_of(table->claim(client, service.servers[*next]->config.name, now));
            if (bound && eligible[*bound]) next = bound;
        }
        auto& server = *service.servers[*next];
        // On the heap, so that the socket stays where a TLS session's BIO
        // points (socket_bio.hpp) when the connection changes hands.
        // Counted as active from now: a failed attempt gives the count back
        // with `made`.
        auto made = std::make_unique<UpstreamConnection>(
            UpstreamConnection{tcp::socket(executor), nullptr, &server, false, ActiveClaim(server.state->traffic.active)});
        Attempt tried = co_await connect_once(made->socket, server, service.source_addresses,
                                              service.config.transparent ? &client_address : nullptr,
                                              service.upstream_tls.get(), upstream_sni, timeout, made->tls);
        if (tried.missing_source) report_missing_source(service, server, tried);
        if (tried.result == ConnectResult::ok) {
            server.health->on_connect_ok();
            tune_upstream_connection(made->socket);
            made->persisted = table && table->acquire(client, server.config.name, std::chrono::steady_clock::now());
            co_return made;
        }
        if (tried.result == ConnectResult::local) {
            report_local_failure(service, server, tried);
            failure = healthcheck::to_string(tried.shortage);
            co_return nullptr;
        }
        note_failure(service, server, tried, timeout);
        eligible[*next] = 0;  // never retry a server this connection already failed on
        next.reset();
    }
    co_return nullptr;
}

}  // namespace castellan::proxy
