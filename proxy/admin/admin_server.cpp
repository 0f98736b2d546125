#include "proxy/admin/admin_server.hpp"

#include "proxy/admin/metrics_text.hpp"
#include "proxy/admin/persistence_call.hpp"
#include "proxy/admin/status_page.hpp"

#include "proxy/listen_socket.hpp"
#include "proxy/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <optional>
#include <string_view>
#include <utility>

namespace castellan::proxy::admin {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// An admin client gets this long for each request and each answer.
constexpr auto request_timeout = std::chrono::seconds(10);
constexpr std::size_t max_request_body = 64 * 1024;

http::response<http::string_body> text_response(http::status status, std::string_view content_type, std::string body,
                                                 unsigned version, bool keep_alive) {
    http::response<http::string_body> response(status, version);
    response.set(http::field::server, "castellan");
    response.set(http::field::content_type, content_type);
    response.set(http::field::cache_control, "no-store");
    response.keep_alive(keep_alive);
    response.body() = std::move(body);
    response.prepare_payload();
    return response;
}

http::response<http::string_body> json_response(http::status status, const nlohmann::json& body, unsigned version,
                                                 bool keep_alive) {
    // Compact: an indented document of a large config (1000 real servers with
    // 10 minutes of rates) is four times the bytes and ten times the time to
    // write, on the control loop. `jq` indents it for a reader.
    return text_response(status, "application/json", body.dump() + "\n", version, keep_alive);
}

// The 405 answer for a read-only resource asked with another method, or
// nullopt when the method is GET or HEAD.
std::optional<http::response<http::string_body>> refuse_unless_get(const http::request<http::string_body>& request) {
    if (request.method() == http::verb::get || request.method() == http::verb::head) return std::nullopt;
    auto response = json_response(http::status::method_not_allowed, {{"error", "use GET"}}, request.version(),
                                  request.keep_alive());
    response.set(http::field::allow, "GET, HEAD");
    return response;
}

// `/api/v1/virtual-services/{vs}/real-servers/{rs}/state` -> {vs, rs}.
std::optional<std::pair<std::string, std::string>> state_call_target(std::string_view path) {
    constexpr std::string_view prefix = "/api/v1/virtual-services/";
    constexpr std::string_view middle = "/real-servers/";
    constexpr std::string_view suffix = "/state";
    if (!path.starts_with(prefix) || !path.ends_with(suffix)) return std::nullopt;
    std::string_view names = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
    const auto split = names.find(middle);
    if (split == std::string_view::npos || split == 0) return std::nullopt;
    std::string_view service = names.substr(0, split);
    std::string_view server = names.substr(split + middle.size());
    if (server.empty() || server.find('/') != std::string_view::npos) return std::nullopt;
    return std::make_pair(std::string(service), std::string(server));
}

// Compares in time independent of where the first difference is, so the token
// cannot be guessed byte by byte from response times. (Its length is no secret
// worth hiding.)
bool same_secret(std::string_view given, std::string_view secret) {
    if (given.size() != secret.size() || secret.empty()) return false;
    unsigned char difference = 0;
    for (std::size_t i = 0; i < secret.size(); ++i) {
        difference |= static_cast<unsigned char>(given[i] ^ secret[i]);
    }
    return difference == 0;
}

}  // namespace

// How often the traffic history takes a sample, and how many it keeps: rates
// over the last 10 minutes.
constexpr auto history_step = std::chrono::seconds(5);
constexpr std::size_t history_points = 120;

struct AdminServer::State {
    State(net::io_context& io_in, SnapshotSource current_in, ReloadRequest reload_in, StateChanged state_changed_in)
        : io(io_in),
          acceptor(io_in),
          current(std::move(current_in)),
          reload(std::move(reload_in)),
          state_changed(std::move(state_changed_in)),
          history(history_step, history_points),
          sample_timer(io_in) {}
    net::io_context& io;
    tcp::acceptor acceptor;
    SnapshotSource current;
    ReloadRequest reload;
    StateChanged state_changed;
    TrafficHistory history;  // control thread only
    net::steady_timer sample_timer;
    bool closed = false;

    // The status document; `with_rates` adds the rate series (the page and the
    // JSON show them; /metrics has no use for them).
    nlohmann::json status_now(bool with_rates = true) {
        auto [runtime, config] = current();
        return status_json(*runtime, config, std::chrono::steady_clock::now(), with_rates ? &history : nullptr);
    }

    // The 401 answer when `request` lacks the bearer token the config asks
    // for, or nullopt when it may change state.
    std::optional<http::response<http::string_body>> refuse_unless_authorized(
        const http::request<http::string_body>& request) {
        auto [runtime, config] = current();
        if (!runtime->admin_token) return std::nullopt;
        auto header = request[http::field::authorization];
        std::string_view given(header.data(), header.size());
        constexpr std::string_view bearer = "Bearer ";
        if (given.starts_with(bearer) && same_secret(given.substr(bearer.size()), *runtime->admin_token)) {
            return std::nullopt;
        }
        auto response = json_response(http::status::unauthorized, {{"error", "missing or wrong bearer token"}},
                                      request.version(), request.keep_alive());
        response.set(http::field::www_authenticate, "Bearer");
        return response;
    }

    // The 405 or 401 answer for a state-changing call, or nullopt when it is a
    // POST that may change state.
    std::optional<http::response<http::string_body>> refuse_unless_authorized_post(
        const http::request<http::string_body>& request) {
        if (request.method() != http::verb::post) {
            auto response = json_response(http::status::method_not_allowed, {{"error", "use POST"}}, request.version(),
                                          request.keep_alive());
            response.set(http::field::allow, "POST");
            return response;
        }
        return refuse_unless_authorized(request);
    }

    // POST /api/v1/reload: the same as SIGHUP; answers once the reload is
    // applied or refused.
    net::awaitable<http::response<http::string_body>> reload_call(const http::request<http::string_body>& request) {
        const bool keep_alive = request.keep_alive();
        const unsigned version = request.version();
        if (auto refused = refuse_unless_authorized_post(request)) co_return std::move(*refused);
        struct Wait {
            explicit Wait(net::io_context& io) : done(io, net::steady_timer::time_point::max()) {}
            net::steady_timer done;
            std::optional<ReloadOutcome> outcome;
        };
        auto wait = std::make_shared<Wait>(io);
        reload([wait](const ReloadOutcome& outcome) {
            wait->outcome = outcome;
            wait->done.cancel();
        });
        // The outcome may have come already (a refusal given at once).
        if (!wait->outcome) co_await wait->done.async_wait(net::as_tuple(net::use_awaitable));
        if (!wait->outcome) {
            co_return json_response(http::status::service_unavailable, {{"ok", false}, {"errors", {"stopping"}}},
                                    version, false);
        }
        const auto& outcome = *wait->outcome;
        if (outcome.ok) {
            co_return json_response(http::status::ok, {{"ok", true}, {"generation", outcome.generation}}, version,
                                    keep_alive);
        }
        co_return json_response(http::status::bad_request, {{"ok", false}, {"errors", outcome.errors}}, version,
                                keep_alive);
    }

    http::response<http::string_body> answer(const http::request<http::string_body>& request) {
        const bool keep_alive = request.keep_alive();
        const std::string_view target(request.target().data(), request.target().size());
        const std::string_view path = target.substr(0, target.find('?'));
        if (path == "/api/v1/status") {
            if (auto refused = refuse_unless_get(request)) return std::move(*refused);
            return json_response(http::status::ok, status_now(), request.version(), keep_alive);
        }
        if (path == "/metrics") {
            if (auto refused = refuse_unless_get(request)) return std::move(*refused);
            return text_response(http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                                 metrics_text(status_now(false)), request.version(), keep_alive);
        }
        if (path == "/api/v1/persistence") return persistence_call(request, target);
        if (auto target_names = state_call_target(path)) {
            return change_state(request, target_names->first, target_names->second);
        }
        if (path == "/" || path == "/index.html") {
            if (auto refused = refuse_unless_get(request)) return std::move(*refused);
            return text_response(http::status::ok, "text/html; charset=utf-8", status_page_html(status_now()),
                                 request.version(), keep_alive);
        }
        return json_response(http::status::not_found, {{"error", "not found"}}, request.version(), keep_alive);
    }

    // GET /api/v1/persistence?client=ADDRESS lists the client's source-IP
    // persistence entries; DELETE (with the token, as for state changes)
    // forgets them, so that its next connection is scheduled afresh. Open
    // connections stay where they are: a helpdesk moving a user wants the
    // user's next connection elsewhere, not the current ones cut.
    http::response<http::string_body> persistence_call(const http::request<http::string_body>& request,
                                                       std::string_view target) {
        const bool keep_alive = request.keep_alive();
        const unsigned version = request.version();
        const bool forget = request.method() == http::verb::delete_;
        if (!forget && request.method() != http::verb::get && request.method() != http::verb::head) {
            auto response = json_response(http::status::method_not_allowed, {{"error", "use GET or DELETE"}}, version,
                                          keep_alive);
            response.set(http::field::allow, "GET, HEAD, DELETE");
            return response;
        }
        if (forget) {
            if (auto refused = refuse_unless_authorized(request)) return std::move(*refused);
        }
        const auto address = query_parameter(target, "client");
        const auto client = address ? client_key_of_text(*address) : std::nullopt;
        if (!address) {
            return json_response(http::status::bad_request, {{"error", "expected ?client=ADDRESS (an IP address)"}},
                                 version, keep_alive);
        }
        if (!client) {
            return json_response(http::status::bad_request,
                                 {{"error", "client: expected an IPv4 or IPv6 address, got \"" + *address + "\""}},
                                 version, keep_alive);
        }
        auto [runtime, config] = current();
        const auto now = std::chrono::steady_clock::now();
        if (!forget) {
            return json_response(http::status::ok,
                                 persistence_entries(*runtime, *client, now, std::chrono::system_clock::now()),
                                 version, keep_alive);
        }
        const std::size_t removed = forget_persistence(*runtime, *client, now);
        log::Line(log::Level::info, "persistence_forget")
            .kv("client", *address)
            .kv("removed", static_cast<std::uint64_t>(removed));
        return json_response(http::status::ok, {{"removed", removed}}, version, keep_alive);
    }

    // POST .../state {"state": "enabled" | "disabled" | "drain"}: drain and
    // disabled take no new clients (persistent ones neither); open connections go on.
    http::response<http::string_body> change_state(const http::request<http::string_body>& request,
                                                   const std::string& service_name, const std::string& server_name) {
        const bool keep_alive = request.keep_alive();
        const unsigned version = request.version();
        if (auto refused = refuse_unless_authorized_post(request)) return std::move(*refused);
        auto [runtime, config] = current();
        const ServiceRuntime* service = nullptr;
        for (const auto& candidate : runtime->services) {
            if (candidate->config.name == service_name) service = candidate.get();
        }
        if (!service) {
            return json_response(http::status::not_found, {{"error", "no virtual service \"" + service_name + "\""}},
                                 version, keep_alive);
        }
        auto index = service->index_of(server_name);
        if (!index) {
            return json_response(http::status::not_found,
                                 {{"error", "no real server \"" + server_name + "\" in \"" + service_name + "\""}},
                                 version, keep_alive);
        }
        auto body = nlohmann::json::parse(request.body(), nullptr, false);
        AdminState wanted;
        const std::string asked = body.is_object() && body.size() == 1 && body.contains("state") && body["state"].is_string()
                                      ? body["state"].get<std::string>()
                                      : std::string();
        if (asked == "enabled") {
            wanted = AdminState::enabled;
        } else if (asked == "disabled") {
            wanted = AdminState::disabled;
        } else if (asked == "drain") {
            wanted = AdminState::draining;
        } else {
            return json_response(http::status::bad_request,
                                 {{"error", "expected {\"state\": \"enabled\" | \"disabled\" | \"drain\"}"}}, version,
                                 keep_alive);
        }
        auto& server = *service->servers[*index];
        const auto now = std::chrono::steady_clock::now();
        server.set_admin_state(wanted, now);
        if (state_changed) state_changed(server);
        const auto shown = server.shown_state(now);
        log::Line(log::Level::info, "admin_state")
            .kv("vs", service_name)
            .kv("server", server_name)
            .kv("state", asked)
            .kv("shown", shown.state);
        return json_response(http::status::ok,
                             {{"ok", true}, {"virtual_service", service_name}, {"real_server", server_name},
                              {"state", shown.state}},
                             version, keep_alive);
    }
};

namespace {

net::awaitable<void> serve_client(std::shared_ptr<AdminServer::State> state, beast::tcp_stream stream) {
    constexpr auto use = net::as_tuple(net::use_awaitable);
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(max_request_body);
        stream.expires_after(request_timeout);
        auto [read_error, read_bytes] = co_await http::async_read(stream, buffer, parser, use);
        if (read_error) {
            if (read_error != http::error::end_of_stream && read_error != beast::error::timeout &&
                read_error != net::error::operation_aborted && read_error != net::error::connection_reset) {
                // A malformed request gets a 400 and a closed connection.
                auto response = json_response(http::status::bad_request, {{"error", read_error.message()}}, 11, false);
                co_await http::async_write(stream, response, use);
            }
            break;
        }
        http::response<http::string_body> response;
        const auto& request = parser.get();
        const std::string_view target(request.target().data(), request.target().size());
        if (target.substr(0, target.find('?')) == "/api/v1/reload") {
            response = co_await state->reload_call(request);
        } else {
            response = state->answer(request);
        }
        if (request.method() == http::verb::head) response.body().clear();
        stream.expires_after(request_timeout);
        auto [write_error, written] = co_await http::async_write(stream, response, use);
        if (write_error || !response.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

// Samples every service's and real server's totals once per step, for the
// rates and graphs of the status page.
net::awaitable<void> sample_traffic(std::shared_ptr<AdminServer::State> state) {
    while (!state->closed) {
        {
            auto [runtime, config] = state->current();
            record_traffic(state->history, *runtime, std::chrono::steady_clock::now());
        }
        state->sample_timer.expires_after(state->history.step());
        auto [error] = co_await state->sample_timer.async_wait(net::as_tuple(net::use_awaitable));
        if (error) co_return;
    }
}

net::awaitable<void> accept_clients(std::shared_ptr<AdminServer::State> state) {
    constexpr auto use = net::as_tuple(net::use_awaitable);
    while (!state->closed) {
        auto [error, socket] = co_await state->acceptor.async_accept(use);
        if (error) {
            if (state->closed || error == net::error::operation_aborted) co_return;
            log::Line(log::Level::warn, "admin_accept_failed").kv("error", error.message());
            continue;
        }
        net::co_spawn(state->io, serve_client(state, beast::tcp_stream(std::move(socket))), net::detached);
    }
}

}  // namespace

AdminServer::AdminServer(net::io_context& io, SnapshotSource current, ReloadRequest reload, StateChanged state_changed)
    : state_(std::make_shared<State>(io, std::move(current), std::move(reload), std::move(state_changed))) {}

AdminServer::~AdminServer() { close(); }

bool AdminServer::listen(const conf::HostPort& address, std::string& error) {
    int fd = open_listen_socket(address, error);
    if (fd < 0) return false;
    boost::system::error_code ec;
    state_->acceptor.assign(address.kind == conf::HostPort::Kind::ipv6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) {
        error = ec.message();
        return false;
    }
    net::co_spawn(state_->io, accept_clients(state_), net::detached);
    net::co_spawn(state_->io, sample_traffic(state_), net::detached);
    return true;
}

void AdminServer::close() {
    state_->closed = true;
    boost::system::error_code ignored;
    state_->acceptor.close(ignored);
    state_->sample_timer.cancel();
}

}  // namespace castellan::proxy::admin
