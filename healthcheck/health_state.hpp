// The rise/fall state machine of one real server's health (INTERFACE.md).
//
// A new server starts `up`: a restart of castellan must not black-hole every
// client while it waits for `rise` passed checks (connect failover covers the
// first seconds). `fall` failures in a row mark it down, `rise` passes in a row
// mark it up. A failed connect by the proxy counts as a failed check; a successful
// one resets the failure count (but never brings a down server up: only checks do).
//
// Pure and single-threaded: the owner serialises calls and passes nothing but
// results; no clock, no socket.
#pragma once

namespace castellan::healthcheck {

enum class Health { up, down };

class HealthStateMachine {
public:
    // `initial` down: a server known down (its check changed by a reload) needs
    // `rise` passes, as after any fall.
    HealthStateMachine(int rise, int fall, Health initial = Health::up);

    Health health() const { return health_; }
    int failures_in_a_row() const { return failures_; }
    int passes_in_a_row() const { return passes_; }

    // Each gives true when the call changed health().
    bool on_check_passed();
    bool on_check_failed();
    bool on_connect_failed() { return on_check_failed(); }
    void on_connect_succeeded();

private:
    int rise_;
    int fall_;
    Health health_ = Health::up;
    int failures_ = 0;
    int passes_ = 0;
};

const char* to_string(Health health);

}  // namespace castellan::healthcheck
