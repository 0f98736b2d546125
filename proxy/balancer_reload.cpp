// Balancer: reloading the config in place (INTERFACE.md's reload rules).
//
// One process, open connections untouched: a reload builds a new snapshot next
// to the current one (adopting health, persistence, admin states and counters
// where nothing changed), binds the listeners it adds, hands the snapshot to
// every worker, and only then closes the listeners it removed. Anything that
// fails before the hand-over changes nothing.
#include "proxy/balancer.hpp"

#include "conf/config_parser.hpp"
#include "proxy/listen_socket.hpp"
#include "proxy/log.hpp"
#include "proxy/systemd_notify.hpp"
#include "proxy/time_format.hpp"

#include <boost/asio/post.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

namespace castellan::proxy {
namespace net = boost::asio;

namespace {

std::string joined(const std::vector<std::string>& parts, std::string_view separator) {
    std::string out;
    for (const auto& part : parts) {
        if (!out.empty()) out += separator;
        out += part;
    }
    return out;
}

std::vector<std::string> error_texts(const std::vector<conf::ConfigError>& errors) {
    std::vector<std::string> out;
    for (const auto& error : errors) out.push_back(error.to_string());
    return out;
}

bool has_listener(const std::vector<conf::VirtualService>& services, const conf::HostPort& address) {
    return std::any_of(services.begin(), services.end(),
                       [&](const conf::VirtualService& service) { return service.listen == address; });
}

// "added a, b; removed c; changed d" for the reload line: what an operator wants
// to see confirmed after editing the file.
std::string service_changes(const conf::Config& before, const conf::Config& after) {
    std::vector<std::string> added, removed, changed;
    auto find = [](const conf::Config& config, const std::string& name) -> const conf::VirtualService* {
        for (const auto& service : config.virtual_services) {
            if (service.name == name) return &service;
        }
        return nullptr;
    };
    for (const auto& service : after.virtual_services) {
        const auto* old = find(before, service.name);
        if (!old) {
            added.push_back(service.name);
        } else if (!(*old == service)) {
            changed.push_back(service.name);
        }
    }
    for (const auto& service : before.virtual_services) {
        if (!find(after, service.name)) removed.push_back(service.name);
    }
    std::vector<std::string> parts;
    if (!added.empty()) parts.push_back("added " + joined(added, ","));
    if (!removed.empty()) parts.push_back("removed " + joined(removed, ","));
    if (!changed.empty()) parts.push_back("changed " + joined(changed, ","));
    return parts.empty() ? "none" : joined(parts, "; ");
}

// The admin block a reload may not move: the running one, with the new token
// file when the new config names one. Out of line, where g++ 12 does not see a
// false maybe-uninitialized in the optionals.
[[gnu::noinline]] std::optional<conf::Admin> kept_admin(const std::optional<conf::Admin>& running,
                                                        const std::optional<conf::Admin>& asked) {
    if (!running) return std::nullopt;
    conf::Admin kept = *running;
    if (asked) kept.token_file = asked->token_file;
    return kept;
}

}  // namespace

void Balancer::reload(ReloadDone done) {
    if (stopping_) {
        done({false, config_status_.generation, {"castellan is stopping: reload refused"}});
        return;
    }
    reload_waiting_.push_back(std::move(done));
    if (!reload_running_) start_reload_round();
}

void Balancer::start_reload_round() {
    reload_running_ = true;
    notify_systemd(reloading_state());
    auto waiting = std::move(reload_waiting_);
    reload_waiting_.clear();
    if (reload_thread_.joinable()) reload_thread_.join();
    // Reading files and resolving names can take seconds (a DNS server that does
    // not answer): never on the control loop, which runs health checks and the
    // admin API. The previous snapshot is only read there.
    reload_thread_ = std::thread([this, previous = runtime_, workers = std::size_t{worker_count_},
                                  waiting = std::move(waiting)]() mutable {
        auto build = build_for_reload(previous->config_file, *previous, workers);
        previous.reset();
        net::post(control_, [this, build = std::move(build), waiting = std::move(waiting)]() mutable {
            apply_reload(std::move(build), std::move(waiting));
        });
    });
}

Balancer::ReloadBuild Balancer::build_for_reload(const std::string& file, const Runtime& previous,
                                                 std::size_t workers) {
    ReloadBuild build;
    auto parsed = conf::load_config_file(file);
    if (!parsed.config) {
        build.result = std::move(parsed.errors);
        return build;
    }
    conf::Config& config = *parsed.config;
    const conf::Config& before = previous.config;
    // What only a restart can change keeps its running value, so that the
    // snapshot (and the status page) says what is really in force.
    if (config.threads != before.threads) {
        build.restart_needed.push_back(fmt::format("threads ({} -> {})", before.threads, config.threads));
        config.threads = before.threads;
    }
    if (config.admin.has_value() != before.admin.has_value() ||
        (config.admin && before.admin && config.admin->listen != before.admin->listen)) {
        build.restart_needed.push_back("admin.listen");
        // The running admin API keeps its address and its token: a reload that
        // drops the admin block must not leave the API open without one.
        config.admin = kept_admin(before.admin, config.admin);
    }
    build.result = build_runtime(std::move(config), file, &previous, workers);
    return build;
}

void Balancer::refuse_reload(std::vector<std::string> errors, std::vector<ReloadDone> waiting) {
    if (stopping_) {
        // Not the file's fault, and systemd, told STOPPING=1, must not hear READY=1.
        log::Line(log::Level::warn, "reload").kv("generation", config_status_.generation).kv("ok", "false")
            .kv("errors", "castellan is stopping");
        return end_reload_round({false, config_status_.generation, {"castellan is stopping: reload refused"}},
                                std::move(waiting));
    }
    for (const auto& error : errors) {
        log::Line(log::Level::error, "config_error").kv("file", runtime_->config_file).kv("error", error);
    }
    log::Line(log::Level::error, "reload")
        .kv("generation", config_status_.generation)
        .kv("ok", "false")
        .kv("errors", joined(errors, "; "));
    config_status_.last_reload = {{"ok", false}, {"at", rfc3339_utc(std::chrono::system_clock::now())},
                                  {"errors", errors}};
    ++config_status_.reloads_failed;
    notify_systemd(fmt::format("READY=1\nSTATUS=reload refused; serving config generation {}",
                               config_status_.generation));
    end_reload_round({false, config_status_.generation, std::move(errors)}, std::move(waiting));
}

void Balancer::end_reload_round(const admin::AdminServer::ReloadOutcome& outcome, std::vector<ReloadDone> waiting) {
    reload_running_ = false;
    for (auto& done : waiting) done(outcome);
    if (reload_waiting_.empty()) return;
    if (!stopping_) return start_reload_round();
    auto refused = std::move(reload_waiting_);
    reload_waiting_.clear();
    for (auto& done : refused) done({false, config_status_.generation, {"castellan is stopping: reload refused"}});
}

void Balancer::apply_reload(ReloadBuild build, std::vector<ReloadDone> waiting) {
    if (stopping_) return refuse_reload({"castellan is stopping: reload refused"}, std::move(waiting));
    if (auto* errors = std::get_if<std::vector<conf::ConfigError>>(&build.result)) {
        return refuse_reload(error_texts(*errors), std::move(waiting));
    }
    auto next = std::get<std::shared_ptr<const Runtime>>(std::move(build.result));
    const auto& services = next->config.virtual_services;

    // New listeners are bound before anything changes: one that cannot be bound
    // refuses the whole reload.
    std::vector<BoundListener> opened;
    for (std::size_t s = 0; s < services.size(); ++s) {
        const auto& address = services[s].listen;
        const bool bound = std::any_of(listeners_.begin(), listeners_.end(),
                                       [&](const BoundListener& listener) { return listener.address == address; });
        if (bound) continue;
        std::string error;
        const int fd = open_listen_socket(address, error);
        if (fd < 0) {
            for (auto& listener : opened) ::close(listener.fd);
            return refuse_reload({fmt::format("/virtual_services/{}/listen: cannot listen on {}: {}", s,
                                              address.to_string(), error)},
                                 std::move(waiting));
        }
        opened.push_back({address, fd});
    }

    // Each worker accepts from its own copy of a new listener; made here, where
    // running out of descriptors can still refuse the reload.
    std::vector<Worker::Update> updates(workers_.size());
    for (auto& update : updates) {
        for (const auto& listener : opened) {
            const int copy = ::dup(listener.fd);
            if (copy < 0) {
                const std::string error = std::strerror(errno);
                for (auto& made : updates) {
                    for (auto& [fd, address] : made.opened) ::close(fd);
                }
                for (auto& bound : opened) ::close(bound.fd);
                return refuse_reload({fmt::format("cannot give the workers the new listener {}: {}",
                                                  listener.address.to_string(), error)},
                                     std::move(waiting));
            }
            update.opened.emplace_back(copy, listener.address);
        }
    }

    for (const auto& setting : build.restart_needed) {
        log::Line(log::Level::warn, "reload_restart_needed")
            .kv("setting", setting)
            .kv("reason", "this setting applies at start only; the running value is kept until a restart");
    }
    std::vector<std::string> changes{service_changes(runtime_->config, next->config)};

    // From here on the reload cannot fail.
    std::vector<BoundListener> closing;
    std::erase_if(listeners_, [&](const BoundListener& listener) {
        if (has_listener(services, listener.address)) return false;
        closing.push_back(listener);
        return true;
    });
    for (const auto& listener : opened) {
        listeners_.push_back(listener);
        const auto* service = &*std::find_if(services.begin(), services.end(),
                                             [&](const conf::VirtualService& vs) { return vs.listen == listener.address; });
        log::Line(log::Level::info, "listen")
            .kv("vs", service->name)
            .kv("address", listener.address.to_string())
            .kv("mode", conf::to_string(service->mode));
    }
    apply_enabled_changes(*next, *runtime_, std::chrono::steady_clock::now());
    runtime_ = next;
    monitor_->update(next->health_targets);

    // Every worker takes the new snapshot and its listener changes on its own
    // thread; the last one to have done so finishes the reload here.
    std::vector<conf::HostPort> closed_addresses;
    for (const auto& listener : closing) closed_addresses.push_back(listener.address);
    auto remaining = std::make_shared<std::size_t>(workers_.size());
    auto finish = [this, remaining, closing = std::move(closing), changes = std::move(changes),
                   waiting = std::move(waiting)]() mutable {
        if (--*remaining > 0) return;
        finish_reload(std::move(closing), std::move(changes), std::move(waiting));
    };
    auto shared_finish = std::make_shared<decltype(finish)>(std::move(finish));
    for (std::size_t w = 0; w < workers_.size(); ++w) {
        Worker::Update& update = updates[w];
        update.runtime = next;
        update.closed = closed_addresses;
        workers_[w]->apply(std::move(update), [this, shared_finish] {
            net::post(control_, [shared_finish] { (*shared_finish)(); });
        });
    }
}

void Balancer::finish_reload(std::vector<BoundListener> closing, std::vector<std::string> changes,
                             std::vector<ReloadDone> waiting) {
    // Every worker has closed its own copy by now: this closes the socket.
    for (const auto& listener : closing) {
        ::close(listener.fd);
        log::Line(log::Level::info, "listen_closed").kv("address", listener.address.to_string());
    }
    ++config_status_.generation;
    ++config_status_.reloads_ok;
    config_status_.last_reload = {{"ok", true},
                                  {"at", rfc3339_utc(std::chrono::system_clock::now())},
                                  {"errors", nlohmann::json::array()}};
    log::Line(log::Level::info, "reload")
        .kv("generation", config_status_.generation)
        .kv("ok", "true")
        .kv("virtual_services", static_cast<std::uint64_t>(runtime_->services.size()))
        .kv("changes", joined(changes, "; "));
    if (!stopping_) {
        notify_systemd(fmt::format("READY=1\nSTATUS=serving {} virtual services, config generation {}",
                                   runtime_->services.size(), config_status_.generation));
    }
    log_service_availability();
    end_reload_round({true, config_status_.generation, {}}, std::move(waiting));
}

}  // namespace castellan::proxy
