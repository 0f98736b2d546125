#include "healthcheck/health_state.hpp"

namespace castellan::healthcheck {

HealthStateMachine::HealthStateMachine(int rise, int fall, Health initial)
    : rise_(rise < 1 ? 1 : rise), fall_(fall < 1 ? 1 : fall), health_(initial) {}

bool HealthStateMachine::on_check_passed() {
    failures_ = 0;
    if (health_ == Health::up) return false;
    if (++passes_ < rise_) return false;
    health_ = Health::up;
    passes_ = 0;
    return true;
}

bool HealthStateMachine::on_check_failed() {
    passes_ = 0;
    if (health_ == Health::down) return false;
    if (++failures_ < fall_) return false;
    health_ = Health::down;
    failures_ = 0;
    return true;
}

void HealthStateMachine::on_connect_succeeded() {
    if (health_ == Health::up) failures_ = 0;
}

const char* to_string(Health health) { return health == Health::up ? "up" : "down"; }

}  // namespace castellan::healthcheck
