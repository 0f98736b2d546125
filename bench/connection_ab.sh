#!/usr/bin/env bash
# CPU time per proxied connection, castellan builds against each other and
# against HAProxy, in short runs that alternate many times: on a virtual machine
# whose CPU the hypervisor slows for minutes at a time, a 5-second run per
# target (bench/run.sh) can land one target in a slow minute and the other in a
# fast one; 2-second runs taken in turn, 8 or more times, put every target in
# the same minutes, and the medians compare. Used for the connection-path work
# of 2026-12-01 (README, "Per proxied connection").
#
# Each run: a fresh proxy (mode tcp, one thread, no log) on CPU 0 in front of
# bench/echo_server on CPU 1, bench/connrate on CPU 1 making short connections
# (connect, 64 bytes echoed, close) at CONCURRENCY for SECS; the proxy's user +
# system time (/proc/PID/stat) over the run divided by its connections.
#
# usage: bench/connection_ab.sh [NAME=BINARY ...]
#   NAME=BINARY  a castellan binary to measure under NAME (default:
#                castellan=build/castellan); HAProxy is always measured too
# settings (environment): ROUNDS [8]  SECS [2]  CONCURRENCY [32]
#   PROXY_CPU [0]  LOAD_CPU [1]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${ROUNDS:-8}
secs=${SECS:-2}
concurrency=${CONCURRENCY:-32}
proxy_cpu=${PROXY_CPU:-0}
load_cpu=${LOAD_CPU:-1}

declare -A binaries=()
names=()
for argument in "$@"; do
    [[ $argument == *=* ]] || { echo "usage: $0 [NAME=BINARY ...]" >&2; exit 2; }
    binaries[${argument%%=*}]=${argument#*=}
    names+=("${argument%%=*}")
done
if [[ ${#names[@]} -eq 0 ]]; then
    binaries[castellan]=$root/build/castellan
    names=(castellan)
fi
names+=(haproxy)
command -v haproxy >/dev/null || { echo "haproxy is not installed" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

for helper in connrate echo_server; do
    cc -O2 -Wall -Wextra -o "$work/$helper" "$root/bench/$helper.c"
done

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
echo_port=$(free_port)
proxy_port=$(free_port)

taskset -c "$load_cpu" "$work/echo_server" 127.0.0.1 "$echo_port" >/dev/null 2>&1 &
pids+=($!)

cat >"$work/castellan.json" <<EOF
{ "threads": 1, "access_log": "off",
  "virtual_services": [ { "name": "ab", "listen": "127.0.0.1:$proxy_port",
    "real_servers": [ { "name": "echo", "address": "127.0.0.1:$echo_port" } ],
    "health_check": { "type": "none" } } ] }
EOF
cat >"$work/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode tcp
  timeout connect 3s
  timeout client 30s
  timeout server 30s
frontend ab
  bind 127.0.0.1:$proxy_port
  default_backend echo
backend echo
  server echo 127.0.0.1:$echo_port
EOF

# Waits until something listens on the proxy port (10 s at most).
wait_listening() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $proxy_port" >&2
    exit 1
}

ticks=$(getconf CLK_TCK)
: >"$work/runs"
for ((round = 1; round <= rounds; round++)); do
    for name in "${names[@]}"; do
        if [[ $name == haproxy ]]; then
            taskset -c "$proxy_cpu" haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 &
        else
            taskset -c "$proxy_cpu" "${binaries[$name]}" --config "$work/castellan.json" 2>/dev/null &
        fi
        pid=$!
        wait_listening
        sleep 0.3
        read -r user0 system0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
        line=$(taskset -c "$load_cpu" "$work/connrate" 127.0.0.1 "$proxy_port" "$secs" "$concurrency")
        read -r user1 system1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        connections=$(grep -o 'connections=[0-9]*' <<<"$line" | cut -d= -f2)
        awk -v name="$name" -v ticks_used=$((user1 - user0 + system1 - system0)) -v n="$connections" -v hz="$ticks" \
            'BEGIN { printf "%s %.1f\n", name, ticks_used * 1e6 / hz / n }' >>"$work/runs"
        echo "round $round: $name $line" >&2
    done
done

echo "CPU time per connection (user + system, us), $rounds alternating runs of $secs s at $concurrency concurrent:"
for name in "${names[@]}"; do
    grep "^$name " "$work/runs" | awk '{print $2}' | sort -n |
        awk -v name="$name" '{ v[NR] = $1 } END {
            printf "  %-12s median %6.1f  (min %.1f, max %.1f)\n", name, v[int((NR + 1) / 2)], v[1], v[NR] }'
done
