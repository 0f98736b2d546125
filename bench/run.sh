#!/usr/bin/env bash
# castellan's benchmark: castellan (tcp mode) side by side with HAProxy (mode tcp)
# and a direct connection, in one run, on 127.0.0.1 only.
#
# Measures
#   - bulk throughput with iperf3, client to server and server to client (-R);
#   - new connections per second: short connections that connect, send 64 bytes,
#     read the 64-byte echo and close (bench/connrate.c against bench/echo_server.c),
#     with the median and 99th-percentile time of one such connection, and the
#     proxy's CPU time (user + system, all threads) per connection: on a small
#     machine the load generator can saturate before the proxy does, and then the
#     rate hides what the CPU time shows;
#   - the proxies' memory per idle proxied connection (VmRSS before/after holding
#     IDLE_CONNS idle connections open through them).
# in ROUNDS alternating rounds (each round measures every target back to back, in
# an order that rotates from round to round), and prints for each figure the
# median, the spread (min-max) and the ratio castellan/HAProxy of the medians.
#
# The proxies run on CPU $PROXY_CPU, the load generators and the real servers on
# CPU $LOAD_CPU (taskset), so the two sides do not fight for one core.
# Both proxies get the same number of threads (HAProxy: nbthread) and neither
# logs connections (castellan: "access_log": "off"; its events go to a file);
# HAProxy splices in the kernel both ways (option splice-request and
# splice-response): on loopback that measured faster for bulk transfer than
# option splice-auto (about 9 against 6-7.5 Gbit/s here) at the same
# connection rate. HAPROXY_SPLICE=auto or off picks the others.
#
# The reload case (bench/reload_bench.py) then measures castellan alone on a
# config of 100 tcp virtual services x 10 real servers: the time from SIGHUP to
# the new generation in /api/v1/status over 20 reloads (goal: under 50 ms), and
# the time of short connections during 20 reloads 250 ms apart against without
# (goal: no failed connection, p99 within 2x). About 30 s.
#
# usage: bench/run.sh [--skip-castellan] [--quick] [--help] [CASE...]
#   CASE: proxies (everything above) or reload; default both. `bench/run.sh
#   reload` runs the reload case alone (no iperf3 or HAProxy needed).
#
# Environment (defaults in brackets):
#   CASTELLAN_BIN  the binary to measure [build/castellan]
#   CASTELLAN_PUMP passed on to the "castellan" target (copy or splice) [unset]
#   TARGETS        what to measure ["castellan haproxy direct"]; castellan-copy and
#                  castellan-splice run castellan with CASTELLAN_PUMP=copy/splice
#   ROUNDS [3]  IPERF_SECS [5]  RATE_SECS [5]  CONCURRENCY [32]  THREADS [1]
#   IDLE_CONNS [2000]  PROXY_CPU [0]  LOAD_CPU [1]  PORT_BASE [21000]
#   HAPROXY_SPLICE [always]  always, auto or off
#   CASES          the cases to run when none is named ["proxies reload"]
#   SKIP_CASTELLAN=1 is the same as --skip-castellan (it skips the reload case);
#   KEEP_WORK=1 keeps the temporary folder (configs, logs, raw results).
# The helpers are compiled into build-bench/, and the summary and the raw
# results are left there too (summary.txt, results.tsv; the reload case's
# reload.txt and reload.json).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

skip_castellan=${SKIP_CASTELLAN:-0}
quick=0
cases=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --skip-castellan) skip_castellan=1 ;;
        --quick) quick=1 ;;
        proxies | reload) cases+=("$1") ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "run.sh: unknown argument $1 (try --help)" >&2
            exit 2
            ;;
    esac
    shift
done
if [[ $quick -eq 1 ]]; then
    : "${ROUNDS:=1}" "${IPERF_SECS:=2}" "${RATE_SECS:=2}" "${IDLE_CONNS:=500}"
fi

castellan_bin=${CASTELLAN_BIN:-$root/build/castellan}
rounds=${ROUNDS:-3}
iperf_secs=${IPERF_SECS:-5}
rate_secs=${RATE_SECS:-5}
concurrency=${CONCURRENCY:-32}
threads=${THREADS:-1}
idle_conns=${IDLE_CONNS:-2000}
proxy_cpu=${PROXY_CPU:-0}
load_cpu=${LOAD_CPU:-1}
port_base=${PORT_BASE:-21000}
haproxy_splice=${HAPROXY_SPLICE:-always}
read -r -a targets <<<"${TARGETS:-castellan haproxy direct}"

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

# --- the reload case (bench/reload_bench.py) ------------------------------------

[[ ${#cases[@]} -gt 0 ]] || read -r -a cases <<<"${CASES:-proxies reload}"
run_proxies=0
run_reload=0
for case_name in "${cases[@]}"; do
    case $case_name in
        proxies) run_proxies=1 ;;
        reload) run_reload=1 ;;
        *) die "unknown case '$case_name' (proxies, reload)" ;;
    esac
done
if [[ $run_reload -eq 1 && $skip_castellan -eq 1 ]]; then
    say "run.sh: --skip-castellan: skipping the reload case (it measures castellan)"
    run_reload=0
fi
[[ $run_proxies -eq 1 || $run_reload -eq 1 ]] || die "no case left to run"

# Runs bench/reload_bench.py with this script's settings (binary, threads, CPU
# pinning, KEEP_WORK) and the compiled echo server; the script ends every process
# it starts. Its table and JSON line go to build-bench/reload.txt, the JSON
# alone to build-bench/reload.json.
run_reload_case() {
    local out_dir=$root/build-bench cpus
    local -a args=(--castellan "$castellan_bin" --threads "$threads" --json-out "$out_dir/reload.json")
    [[ -x $castellan_bin ]] || die "castellan binary not found at $castellan_bin (the reload case needs it)"
    command -v python3 >/dev/null 2>&1 || die "python3 not found; run scripts/setup.sh first"
    mkdir -p "$out_dir"
    if command -v cc >/dev/null 2>&1; then
        if [[ ! -x $out_dir/echo_server || $root/bench/echo_server.c -nt $out_dir/echo_server ]]; then
            cc -O2 -Wall -Wextra -o "$out_dir/echo_server" "$root/bench/echo_server.c"
        fi
        args+=(--echo-server "$out_dir/echo_server")
    else
        say "run.sh: warning: cc not found: the reload case uses Python echo servers"
    fi
    cpus=$(nproc)
    if [[ $cpus -ge 2 && $proxy_cpu -lt $cpus && $load_cpu -lt $cpus ]]; then
        args+=(--proxy-cpu "$proxy_cpu" --load-cpu "$load_cpu")
    else
        args+=(--no-pin)
    fi
    [[ ${KEEP_WORK:-0} == 1 ]] && args+=(--keep-work)
    echo
    echo "castellan benchmark: reload case"
    echo
    rm -f "$out_dir/reload.json"
    if ! python3 "$root/bench/reload_bench.py" "${args[@]}" | tee "$out_dir/reload.txt"; then
        die "the reload case failed (see above)"
    fi
    echo "(saved in $out_dir/reload.txt, the JSON line in $out_dir/reload.json)"
}

if [[ $run_proxies -eq 0 ]]; then
    run_reload_case
    exit 0
fi

# --- what to run, and whether we can -------------------------------------------

if [[ $skip_castellan -eq 1 ]]; then
    kept=()
    for target in "${targets[@]}"; do [[ $target == castellan* ]] || kept+=("$target"); done
    targets=("${kept[@]}")
fi
[[ ${#targets[@]} -gt 0 ]] || die "no target left to measure"
wants_castellan=0
for target in "${targets[@]}"; do
    case $target in
        castellan | castellan-copy | castellan-splice) wants_castellan=1 ;;
        haproxy | direct) ;;
        *) die "unknown target '$target' (castellan, castellan-copy, castellan-splice, haproxy, direct)" ;;
    esac
done
if [[ $wants_castellan -eq 1 && ! -x $castellan_bin ]]; then
    die "castellan binary not found at $castellan_bin.
Build it first (scripts/test.sh), point CASTELLAN_BIN at it, or run with
--skip-castellan to measure HAProxy and the direct path only."
fi
for tool in iperf3 taskset ss cc python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run scripts/setup.sh first"
done
for target in "${targets[@]}"; do
    if [[ $target == haproxy ]] && ! command -v haproxy >/dev/null 2>&1; then
        die "haproxy not found; run scripts/setup.sh first"
    fi
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $haproxy_splice =~ ^(auto|always|off)$ ]] || die "HAPROXY_SPLICE must be auto, always or off"

cpus=$(nproc)
if [[ $cpus -ge 2 && $proxy_cpu -lt $cpus && $load_cpu -lt $cpus ]]; then
    pin_proxy=(taskset -c "$proxy_cpu")
    pin_load=(taskset -c "$load_cpu")
    pinning="proxies on CPU $proxy_cpu, load generators and servers on CPU $load_cpu"
else
    say "run.sh: warning: $cpus CPU(s) usable: not pinning; the figures will be noisier"
    pin_proxy=()
    pin_load=()
    pinning="none (fewer than 2 CPUs)"
fi

# Each proxied connection takes two descriptors in the proxy, one in the echo
# server and one in the client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
if [[ $fd_limit != unlimited && $((idle_conns * 2 + 200)) -gt $fd_limit ]]; then
    idle_conns=$(((fd_limit - 200) / 2))
    say "run.sh: warning: file limit $fd_limit: holding only $idle_conns idle connections"
fi

out_dir=$root/build-bench
mkdir -p "$out_dir"
work=$(mktemp -d "${TMPDIR:-/tmp}/castellan-bench.XXXXXX")

# --- clean-up: every process started here is ended on any exit -----------------

pids=()
cleanup() {
    local pid waited
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((waited = 0; waited < 30; waited++)); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [[ $alive -eq 0 ]] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ ${KEEP_WORK:-0} == 1 ]]; then
        say "run.sh: work folder kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'say "run.sh: interrupted"; exit 130' INT TERM

# --- ports ----------------------------------------------------------------------

iperf_port=$port_base
echo_port=$((port_base + 1))
declare -A front_iperf front_echo
slot=1
for target in "${targets[@]}"; do
    if [[ $target == direct ]]; then
        front_iperf[$target]=$iperf_port
        front_echo[$target]=$echo_port
    else
        front_iperf[$target]=$((port_base + 10 * slot))
        front_echo[$target]=$((port_base + 10 * slot + 1))
        slot=$((slot + 1))
    fi
done

listening() { [[ -n $(ss -Hltn "sport = :$1") ]]; }
for port in "$iperf_port" "$echo_port" "${front_iperf[@]}" "${front_echo[@]}"; do
    listening "$port" && die "port $port on this machine is already in use (set PORT_BASE)"
done

# Waits until PID listens on every PORT; shows its log and fails if it died.
wait_listening() {
    local name=$1 pid=$2 log=$3
    shift 3
    local port tries
    for port in "$@"; do
        for ((tries = 0; tries < 100; tries++)); do
            listening "$port" && break
            if ! kill -0 "$pid" 2>/dev/null; then
                say "run.sh: $name exited at start; its log:"
                tail -n 20 "$log" >&2 || true
                exit 1
            fi
            sleep 0.1
        done
        listening "$port" || die "$name does not listen on port $port after 10 s (log: $log)"
    done
}

# --- helpers and servers --------------------------------------------------------

for helper in connrate echo_server; do
    if [[ ! -x $out_dir/$helper || $root/bench/$helper.c -nt $out_dir/$helper ]]; then
        cc -O2 -Wall -Wextra -o "$out_dir/$helper" "$root/bench/$helper.c"
    fi
done

"${pin_load[@]}" iperf3 -s -B 127.0.0.1 -p "$iperf_port" >"$work/iperf3-server.log" 2>&1 &
pids+=($!)
wait_listening iperf3 "${pids[-1]}" "$work/iperf3-server.log" "$iperf_port"
"${pin_load[@]}" "$out_dir/echo_server" 127.0.0.1 "$echo_port" >"$work/echo-server.log" 2>&1 &
pids+=($!)
wait_listening echo_server "${pids[-1]}" "$work/echo-server.log" "$echo_port"

# --- proxies --------------------------------------------------------------------

declare -A proxy_pid
start_castellan() {
    local target=$1 config=$work/$1.json pump
    cat >"$config" <<EOF
{
  "threads": $threads,
  "shutdown_grace_s": 0,
  "access_log": "off",
  "virtual_services": [
    {
      "name": "bench-iperf",
      "listen": "127.0.0.1:${front_iperf[$target]}",
      "mode": "tcp",
      "scheduler": "round_robin",
      "real_servers": [ { "name": "iperf", "address": "127.0.0.1:$iperf_port" } ],
      "health_check": { "type": "none" }
    },
    {
      "name": "bench-echo",
      "listen": "127.0.0.1:${front_echo[$target]}",
      "mode": "tcp",
      "scheduler": "round_robin",
      "real_servers": [ { "name": "echo", "address": "127.0.0.1:$echo_port" } ],
      "health_check": { "type": "none" }
    }
  ]
}
EOF
    case $target in
        castellan-copy) pump=copy ;;
        castellan-splice) pump=splice ;;
        *) pump=${CASTELLAN_PUMP:-} ;;
    esac
    if [[ -n $pump ]]; then
        CASTELLAN_PUMP=$pump "${pin_proxy[@]}" "$castellan_bin" --config "$config" 2>"$work/$target.log" &
    else
        (unset CASTELLAN_PUMP; exec "${pin_proxy[@]}" "$castellan_bin" --config "$config" 2>"$work/$target.log") &
    fi
    pids+=($!)
    proxy_pid[$target]=$!
    wait_listening "$target" "$!" "$work/$target.log" "${front_iperf[$target]}" "${front_echo[$target]}"
}

start_haproxy() {
    local config=$work/haproxy.cfg splice_options
    case $haproxy_splice in
        auto) splice_options="    option splice-auto" ;;
        always) splice_options=$'    option splice-request\n    option splice-response' ;;
        off) splice_options="    # no splicing" ;;
    esac
    cat >"$config" <<EOF
# Generated by castellan's bench/run.sh. HAProxy at its best for plain TCP:
# the same thread count as castellan, kernel splicing, no logging.
global
    nbthread $threads
    maxconn $((idle_conns + 1000))

defaults
    mode tcp
$splice_options
    timeout connect 3s
    timeout client 2h
    timeout server 2h

frontend bench-iperf
    bind 127.0.0.1:${front_iperf[haproxy]}
    default_backend bench-iperf

backend bench-iperf
    server iperf 127.0.0.1:$iperf_port

frontend bench-echo
    bind 127.0.0.1:${front_echo[haproxy]}
    default_backend bench-echo

backend bench-echo
    server echo 127.0.0.1:$echo_port
EOF
    haproxy -c -q -f "$config" || die "haproxy rejects $config"
    "${pin_proxy[@]}" haproxy -db -f "$config" >"$work/haproxy.log" 2>&1 &
    pids+=($!)
    proxy_pid[haproxy]=$!
    wait_listening haproxy "$!" "$work/haproxy.log" "${front_iperf[haproxy]}" "${front_echo[haproxy]}"
}

for target in "${targets[@]}"; do
    case $target in
        castellan*) start_castellan "$target" ;;
        haproxy) start_haproxy ;;
    esac
done

# --- raw results ----------------------------------------------------------------

results=$work/results.tsv
: >"$results"
meta() { printf 'meta\t%s\t%s\n' "$1" "$2" >>"$results"; }
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta machine "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $cpus CPUs, Linux $(uname -r)"
if [[ $wants_castellan -eq 1 ]]; then
    meta castellan "$("$castellan_bin" --version 2>&1 | head -1) ($castellan_bin)"
fi
for target in "${targets[@]}"; do
    if [[ $target == haproxy ]]; then
        meta haproxy "$(haproxy -v | head -1 | sed 's/ - https.*//'), nbthread $threads, splice $haproxy_splice"
    fi
done
meta iperf3 "$(iperf3 --version | head -1)"
meta settings "rounds $rounds, iperf3 -t $iperf_secs, connections: $rate_secs s at $concurrency concurrent, 64 B each way, proxy threads $threads"
meta pinning "$pinning"

# --- smoke check: every target answers ----------------------------------------

# Also warms each proxy up, so the memory baseline below holds what a running
# proxy keeps anyway (the worker's buffers, the first allocations).
for target in "${targets[@]}"; do
    line=$(timeout 10 "${pin_load[@]}" "$out_dir/connrate" 127.0.0.1 "${front_echo[$target]}" 0.3 4 2>&1) ||
        die "$target does not answer the echo test: $line"
    [[ $line == *" errors=0 "* ]] || say "run.sh: warning: $target smoke check: $line"
done

# --- memory per idle connection (on proxies that have served nothing much yet) --

vm_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
established_to_echo() { ss -Htn state established "( dport = :$echo_port )" | wc -l; }

for target in "${targets[@]}"; do
    [[ $target == direct ]] && continue
    pid=${proxy_pid[$target]}
    sleep 0.5
    before=$(vm_rss_kb "$pid")
    "${pin_load[@]}" python3 "$root/bench/hold_idle.py" 127.0.0.1 "${front_echo[$target]}" "$idle_conns" \
        >"$work/hold-$target.log" 2>&1 &
    holder=$!
    pids+=("$holder")
    for ((tries = 0; tries < 300; tries++)); do
        grep -q '^ready' "$work/hold-$target.log" && break
        kill -0 "$holder" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^ready' "$work/hold-$target.log" || die "$target: idle connections failed: $(cat "$work/hold-$target.log")"
    # The proxy has accepted them all; wait until it has connected each one on.
    for ((tries = 0; tries < 100; tries++)); do
        [[ $(established_to_echo) -ge $idle_conns ]] && break
        sleep 0.1
    done
    upstream=$(established_to_echo)
    [[ $upstream -ge $idle_conns ]] || say "run.sh: warning: $target: only $upstream of $idle_conns connected on"
    sleep 0.5
    after=$(vm_rss_kb "$pid")
    printf 'rss\t%s\t%s\t%s\t%s\n' "$target" "$before" "$after" "$idle_conns" >>"$results"
    say "idle: $target VmRSS $before kB -> $after kB for $idle_conns connections"
    kill -TERM "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    for ((tries = 0; tries < 100; tries++)); do
        [[ $(established_to_echo) -eq 0 ]] && break
        sleep 0.1
    done
done

# --- the rounds -----------------------------------------------------------------

record() { printf 'result\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$results"; }

# CPU time (user + system, all threads) a process has used, in clock ticks:
# fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends its name.
clock_ticks=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# iperf3 through TARGET; prints Gbit/s as the receiver counted them, or "failed".
run_iperf() {
    local target=$1 direction=$2 json
    local -a reverse=()
    [[ $direction == down ]] && reverse=(-R)
    json=$(timeout $((iperf_secs + 20)) "${pin_load[@]}" iperf3 -c 127.0.0.1 -p "${front_iperf[$target]}" \
        -t "$iperf_secs" -J "${reverse[@]}" 2>&1) || true
    python3 -c '
import json, sys
try:
    data = json.loads(sys.stdin.read())
    if data.get("error"):
        raise ValueError(data["error"])
    bits = data["end"]["sum_received"]["bits_per_second"]
    print(f"{bits / 1e9:.3f}")
except Exception as error:
    print(f"iperf3 failed: {error}", file=sys.stderr)
    print("failed")
' <<<"$json"
}

total_steps=$((rounds * 3 * ${#targets[@]}))
step=0
for ((round = 1; round <= rounds; round++)); do
    # Rotate the order each round so that no target always runs first or last.
    order=()
    for ((i = 0; i < ${#targets[@]}; i++)); do
        order+=("${targets[$(((i + round - 1) % ${#targets[@]}))]}")
    done
    for direction in up down; do
        for target in "${order[@]}"; do
            step=$((step + 1))
            value=$(run_iperf "$target" "$direction")
            record "tput_$direction" "$target" "$round" "$value"
            say "[$step/$total_steps] round $round: $target throughput $direction: $value Gbit/s"
            sleep 0.5
        done
    done
    for target in "${order[@]}"; do
        step=$((step + 1))
        if [[ $target != direct ]]; then cpu_before=$(cpu_ticks "${proxy_pid[$target]}"); fi
        line=$(timeout $((rate_secs + 20)) "${pin_load[@]}" "$out_dir/connrate" 127.0.0.1 \
            "${front_echo[$target]}" "$rate_secs" "$concurrency" 2>&1) || true
        rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$line")
        errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$line")
        p50=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$line")
        p99=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$line")
        record conn_rate "$target" "$round" "${rate:-failed}"
        record conn_p50 "$target" "$round" "${p50:-failed}"
        record conn_p99 "$target" "$round" "${p99:-failed}"
        if [[ $target != direct ]]; then
            cpu_after=$(cpu_ticks "${proxy_pid[$target]}")
            connections=$(sed -n 's/^connections=\([0-9]*\).*/\1/p' <<<"$line")
            if [[ ${connections:-0} -gt 0 ]]; then
                record conn_cpu "$target" "$round" "$(awk -v t=$((cpu_after - cpu_before)) -v hz="$clock_ticks" \
                    -v n="$connections" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')"
            fi
        fi
        say "[$step/$total_steps] round $round: $target connections: ${rate:-?}/s, errors ${errors:-?}, p50 ${p50:-?} us, p99 ${p99:-?} us"
        [[ ${errors:-1} == 0 ]] || say "run.sh: warning: $target: $line"
        sleep 1  # let the TIME_WAIT sockets of this run settle
    done
done

# Did a proxy die along the way? Then its figures are not worth printing.
for target in "${!proxy_pid[@]}"; do
    if ! kill -0 "${proxy_pid[$target]}" 2>/dev/null; then
        say "run.sh: $target died during the run; its log:"
        tail -n 20 "$work/$target.log" >&2 || true
        exit 1
    fi
done

cp "$results" "$out_dir/results.tsv"
echo
echo "castellan benchmark summary"
echo
python3 "$root/bench/summarize.py" "$results" | tee "$out_dir/summary.txt"
echo
echo "(summary saved in $out_dir/summary.txt, raw figures in $out_dir/results.tsv)"

# --- the reload case, after the proxies ------------------------------------------

if [[ $run_reload -eq 1 ]]; then
    run_reload_case
fi
