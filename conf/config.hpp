// The whole configuration of castellan as plain, immutable values.
//
// These structs are what `conf/config_parser` produces from the JSON file of
// INTERFACE.md; every default of that page is the member initialiser here, so a
// struct built by hand in a test means the same as a config file that leaves the
// key out. Nothing here does I/O.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace castellan::conf {

// An address as written in the config: `IPv4:PORT`, `[IPv6]:PORT` or
// `HOSTNAME:PORT`. `host` holds the IP or name without brackets.
struct HostPort {
    std::string host;
    std::uint16_t port = 0;
    enum class Kind { ipv4, ipv6, hostname } kind = Kind::ipv4;

    // `host:port`, with brackets around an IPv6 host: the form used in logs and
    // in the admin API.
    std::string to_string() const;
    bool is_wildcard() const;  // 0.0.0.0 or ::
    friend bool operator==(const HostPort&, const HostPort&) = default;
};

enum class Mode { tcp, http };
enum class SchedulerKind { round_robin, weighted_round_robin, least_connections, source_hash };
enum class PersistenceKind { none, source_ip, cookie, rpc_http };
enum class HealthCheckKind { tcp, http, https, smtp, dcerpc, none };
enum class TlsMode { terminate, passthrough, reencrypt };
enum class OnServerDown { keep, close };
// Which connection ends get a `close` line: every one, only abnormal ones, none.
enum class AccessLog { all, errors, off };

// The config spelling of each enum value (`round_robin`, ...).
const char* to_string(Mode);
const char* to_string(SchedulerKind);
const char* to_string(PersistenceKind);
const char* to_string(HealthCheckKind);
const char* to_string(TlsMode);
const char* to_string(OnServerDown);
const char* to_string(AccessLog);

struct RealServer {
    std::string name;
    HostPort address;
    int weight = 1;
    bool enabled = true;
    friend bool operator==(const RealServer&, const RealServer&) = default;
};

struct PersistenceGroup {
    int timeout_s = 1800;
    std::size_t max_entries = 1000000;
    friend bool operator==(const PersistenceGroup&, const PersistenceGroup&) = default;
};

struct Persistence {
    PersistenceKind type = PersistenceKind::none;
    // rpc_http: how a request that neither a valid cookie nor an RTS PDU places
    // is placed (cookie, source_ip or none); that type's keys below apply.
    PersistenceKind fallback = PersistenceKind::cookie;
    // source_ip: either a group name (then the group's timeout and size apply)
    // or this service's own table with timeout_s and max_entries.
    std::optional<std::string> group;
    int timeout_s = 1800;
    std::size_t max_entries = 1000000;
    // cookie
    std::string cookie_name = "CASTELLAN";
    std::optional<int> cookie_timeout_s;           // absent = session cookie
    std::optional<std::string> cookie_secret_file;  // absolute path; absent = random secret
    friend bool operator==(const Persistence&, const Persistence&) = default;
};

// What a persistence setting needs at run time: a source-IP table (source_ip,
// or rpc_http falling back to it), a cookie (cookie, or rpc_http unless its
// fallback is none).
bool uses_source_ip_table(const Persistence&);
bool uses_cookie(const Persistence&);

// One accepted range of HTTP status codes: `401` is {401, 401}, `"2xx"` is {200, 299}.
struct StatusRange {
    int low = 200;
    int high = 299;
    bool contains(int status) const { return status >= low && status <= high; }
    friend bool operator==(const StatusRange&, const StatusRange&) = default;
};

// A DCE/RPC interface: its UUID (the 16 bytes in the order the text writes
// them) and version.
struct RpcInterface {
    std::array<std::uint8_t, 16> uuid{};
    std::uint16_t major = 0;
    std::uint16_t minor = 0;
    friend bool operator==(const RpcInterface&, const RpcInterface&) = default;
};
// The endpoint mapper e1af8308-5d1f-11c9-91a4-08002b14a0fa 3.0, on port 135.
inline constexpr RpcInterface endpoint_mapper{
    {0xe1, 0xaf, 0x83, 0x08, 0x5d, 0x1f, 0x11, 0xc9, 0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa}, 3, 0};

struct HealthCheck {
    HealthCheckKind type = HealthCheckKind::tcp;
    int interval_ms = 2000;
    int timeout_ms = 1000;
    int rise = 2;
    int fall = 2;
    std::optional<std::uint16_t> port;  // absent = each real server's own port
    // http / https
    std::string method = "GET";
    std::string path = "/";
    std::optional<std::string> host;  // absent = the real server's address
    std::vector<StatusRange> expect_status = {{200, 299}, {301, 301}, {302, 302}, {401, 401}};
    // https
    bool verify = false;
    std::optional<std::string> ca;   // absolute path
    std::optional<std::string> sni;  // absent = `host` when it is a name
    // dcerpc
    RpcInterface rpc_interface = endpoint_mapper;
    friend bool operator==(const HealthCheck&, const HealthCheck&) = default;
};

struct Certificate {
    std::string cert;  // absolute path
    std::string key;   // absolute path
    friend bool operator==(const Certificate&, const Certificate&) = default;
};

struct UpstreamTls {
    bool verify = false;
    std::optional<std::string> ca;  // absolute path
    std::optional<std::string> sni;
    friend bool operator==(const UpstreamTls&, const UpstreamTls&) = default;
};

struct Tls {
    TlsMode mode = TlsMode::terminate;
    std::vector<Certificate> certificates;
    std::string min_version = "1.2";
    std::optional<std::string> ciphers;
    std::optional<std::string> ciphersuites;
    UpstreamTls upstream;
    friend bool operator==(const Tls&, const Tls&) = default;
};

struct Http {
    bool x_forwarded_for = true;
    int max_header_bytes = 65536;
    friend bool operator==(const Http&, const Http&) = default;
};

struct Timeouts {
    int connect_ms = 3000;
    int handshake_ms = 10000;
    int client_header_ms = 10000;
    int idle_s = 7200;  // the parser sets 3600 for http mode when the key is absent
    friend bool operator==(const Timeouts&, const Timeouts&) = default;
};

struct VirtualService {
    std::string name;
    HostPort listen;
    Mode mode = Mode::tcp;
    SchedulerKind scheduler = SchedulerKind::round_robin;
    Persistence persistence;
    std::vector<RealServer> real_servers;
    HealthCheck health_check;
    std::optional<Tls> tls;
    Http http;
    Timeouts timeouts;
    int max_connections = 0;  // 0 = unlimited
    OnServerDown on_server_down = OnServerDown::keep;
    std::optional<int> drain_timeout_s;
    // Local addresses that connections to real servers come from, used in turn:
    // IP literals as written (checked: valid, not a wildcard, no two alike).
    // Empty = the kernel's choice.
    std::vector<std::string> source_addresses;
    // Connections to real servers carry the client's address (IP_TRANSPARENT).
    // Checked: not with source_addresses, every real server given by IP of the
    // listener's family (the client's).
    bool transparent = false;
    friend bool operator==(const VirtualService&, const VirtualService&) = default;
};

struct Admin {
    HostPort listen;
    std::optional<std::string> token_file;  // absolute path
    friend bool operator==(const Admin&, const Admin&) = default;
};

struct Config {
    int threads = 0;  // 0 = one per CPU in the affinity mask
    int shutdown_grace_s = 30;
    AccessLog access_log = AccessLog::all;
    std::optional<Admin> admin;
    std::map<std::string, PersistenceGroup> persistence_groups;
    std::vector<VirtualService> virtual_services;
    friend bool operator==(const Config&, const Config&) = default;
};

}  // namespace castellan::conf
