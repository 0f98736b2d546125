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
# logs connections (castellan: "access_log": "off"; its events go to a file),
# unless PROXY_LOGGING=on, when both log one line per connection to a file
# (castellan "access_log": "all", HAProxy option tcplog on stdout);
# HAProxy splices in the kernel both ways (option splice-request and
# splice-response): on loopback that measured faster for bulk transfer than
# option splice-auto (about 9 against 6-7.5 Gbit/s here) at the same
# connection rate. HAPROXY_SPLICE=auto or off picks the others.
#
# The tls case measures castellan terminating TLS (tcp mode) against HAProxy
# (bind ... ssl crt, mode tcp), both with the same ECDSA P-256 certificate made
# for the run, TLS 1.3 only with the same suite (TLS_SUITE), in front of the
# same plain echo server, with bench/tls_load.c as the client:
#   - full handshakes per second: connect, full handshake (no session offered),
#     64 bytes each way, close_notify, close; median and p99 time of one, and the
#     proxy's CPU time per handshake (on this machine the client, which also
#     verifies the server's signature, may saturate first: the CPU time is the
#     figure to compare then);
#   - resumed handshakes per second, the same with every connection offering one
#     TLS 1.3 ticket taken from a first connection (SSL_session_reused checked;
#     the connections the proxy answered with a full handshake are counted);
#   - the same with single-use tickets, as browsers and OpenSSL's client cache
#     use TLS 1.3 tickets: each connection offers the newest ticket its slot
#     received, once; the share that resumed shows whether the proxy issues a
#     new ticket on a resumed connection;
#   - echo throughput over TLS: TLS_STREAMS connections carrying TLS_BYTES in
#     all, each byte to the echo server and back, in MB/s each way, and the
#     proxy's CPU time per MB;
#   - the memory per idle TLS connection: VmRSS before/after holding
#     TLS_IDLE_CONNS connections, each with its handshake and one 64-byte echo
#     done (so its real-server connection is open too).
# It prints what each proxy negotiated (protocol, suite, group, certificate key)
# and how many tickets each sent per full and per resumed handshake. Each figure
# runs in the same alternating rounds. The tls case starts its own castellan and
# HAProxy (after the proxies case has stopped its own), so that neither has
# served anything but TLS when its memory is measured. About 2.5 minutes with
# the defaults, 30 s with --quick.
#
# The http case measures castellan in http mode (`"mode": "http"`) against
# HAProxy (mode http) and nginx (proxy_pass), all three in front of one nginx
# origin on the load CPU that serves a small file (HTTP_SMALL_BYTES) and a
# 1 MiB file, with wrk (one wrk thread, bench/wrk_report.lua for its figures)
# as the client, plain and over TLS (each proxy terminates TLS 1.3 with the
# same ECDSA P-256 certificate and suite, TLS_SUITE, as the tls case):
#   - keep-alive requests per second for the small file (HTTP_CONCURRENCY
#     connections), the median and p99 time of one request (wrk's histogram:
#     a closed loop, so at saturation it is mostly queueing: read it with the
#     rate), the proxy's CPU time per request and the requests per second of
#     proxy CPU (its inverse: the figure to compare when the load CPU, with
#     wrk and the origin on it, saturates before the proxy does; a proxy that
#     is not saturated handles fewer events per wake-up and pays a little
#     more per request, so this favours the busier one slightly);
#   - one connection per request (the request says Connection: close): rate
#     and CPU per request; over TLS each connection does a TLS 1.3 handshake,
#     resumed: wrk offers each slot's last session (HAProxy's counters showed
#     100% reuse);
#   - 1 MiB responses over HTTP_BIG_CONCURRENCY keep-alive connections: MiB/s
#     and the proxy's CPU time per MiB.
# Fair by construction: the same threads for all three (castellan threads,
# HAProxy nbthread, nginx worker_processes), all pinned to the proxy CPU;
# no access log anywhere; all three add X-Forwarded-For and set
# X-Forwarded-Proto (castellan http.x_forwarded_for, HAProxy option
# forwardfor and set-header, nginx proxy_set_header), checked through the
# origin before measuring; all three keep the client's connection alive and
# keep connections to the origin open between requests (castellan: one
# server connection per client connection; HAProxy: its default keep-alive
# mode with http-reuse safe, stronger than option http-server-close, which
# would reconnect for every request; nginx: proxy_http_version 1.1 and an
# upstream keepalive pool, shared by all clients, so its connection-per-request
# figure does not connect to the origin per request, as the other two do).
# HAProxy splices bodies as in the proxies case (HAPROXY_SPLICE), which only
# plain responses can use. nginx buffers responses as shipped (proxy_buffering
# on, its default buffers; what does not fit goes to a temporary file). Every
# keep-alive limit (nginx keepalive_requests, timeouts) is raised above what
# a run needs. Each figure runs in the same alternating rounds; the table has
# the ratios castellan/HAProxy and castellan/nginx. Each run also notes how
# long the proxy's busiest thread waited for its CPU (/proc schedstat): alone
# on its CPU it hardly waits, so a run where it waited over HTTP_WAIT_LIMIT
# per cent had company there (a build, another session's tests) and is named
# in the summary's http_waits line; and a fixed loop is timed on the proxy CPU
# before and after each run, since the hypervisor may give this machine's
# CPUs less than a whole core at times, which no process here can see: runs
# whose probe took over HTTP_SLOW_LIMIT per cent longer than the fastest are
# named in the http_cpu_speed line. About 5.5 minutes with the defaults (18
# wrk runs of HTTP_SECS per round), 1.2 with --quick.
#
# The reload case (bench/reload_bench.py) then measures castellan alone on a
# config of 100 tcp virtual services x 10 real servers: the time from SIGHUP to
# the new generation in /api/v1/status over 20 reloads (goal: under 50 ms), and
# the time of short connections during 20 reloads 250 ms apart against without
# (goal: no failed connection, p99 within 2x). About 30 s.
#
# The capacity case (bench/capacity_bench.py; its header says how and why it is
# fair) holds N connections through castellan and through HAProxy (mode tcp,
# same threads, same pinning, neither logging), N = 1,000, 4,000, 8,000 by
# default (CAPACITY_STEPS; larger N where the file limit allows: a proxy needs
# two descriptors per connection), each having carried 1 MiB once each way (so
# both directions spliced) and then idle, clients and servers on addresses
# spread over 127.0.0.0/8; per proxy and N: memory per connection (VmRSS
# growth / N), descriptors per connection (/proc/PID/fd growth / N), the
# proxy's CPU time over a CAPACITY_IDLE_S idle window, and the p50/p99 time of
# new short connections (connect, 64 bytes echoed, close; one at a time for
# CAPACITY_PROBE_S) made while the N are held; a table with the ratios
# castellan/HAProxy per N and whether each figure stays flat as N grows. Not
# in the default set: about 3 minutes on a quiet 2-CPU machine (1 with --quick).
#
# usage: bench/run.sh [--skip-castellan] [--quick] [--help] [CASE...]
#   CASE: proxies (the plain TCP figures above), tls, http, reload or capacity;
#   default the first four. `bench/run.sh reload` runs the reload case alone (no
#   iperf3 or HAProxy needed); `bench/run.sh tls` the tls case alone (no iperf3
#   needed); `bench/run.sh http` the http case alone (needs wrk, nginx, curl,
#   openssl); `bench/run.sh capacity` the capacity case alone (HAProxy, ss).
#   --quick: 1 round, short runs (IPERF_SECS 2, RATE_SECS 2, IDLE_CONNS 500,
#   TLS_BYTES 256 MiB; capacity: CAPACITY_STEPS 1000,4000, CAPACITY_IDLE_S 3):
#   under three minutes for the default cases (the http case about 1.2).
#
# Environment (defaults in brackets):
#   CASTELLAN_BIN  the binary to measure [build/castellan]
#   CASTELLAN_PUMP passed on to the "castellan" target (copy or splice) [unset]
#   TARGETS        what to measure ["castellan haproxy direct"]; castellan-copy and
#                  castellan-splice run castellan with CASTELLAN_PUMP=copy/splice
#   ROUNDS [3]  IPERF_SECS [5]  RATE_SECS [5]  CONCURRENCY [32]  THREADS [1]
#   IDLE_CONNS [2000]  PROXY_CPU [0]  LOAD_CPU [1]  PORT_BASE [21000]
#   HAPROXY_SPLICE [always]  always, auto or off
#   PROXY_LOGGING [off]  on: in the proxies case both proxies log a line per
#                  connection to a file (castellan "access_log": "all", HAProxy
#                  option tcplog to stdout), the other comparison of issue 11
#   TLS_SECS [RATE_SECS]  one handshake or resumption run of the tls case
#   TLS_CONCURRENCY [CONCURRENCY]  TLS connections in flight during those
#   TLS_BYTES [1073741824]  bytes of one tls throughput run (each way, all streams)
#   TLS_STREAMS [4]  connections of one tls throughput run
#   TLS_TPUT_SECS [30]  a tls throughput run stops after this even if unfinished
#   TLS_IDLE_CONNS [IDLE_CONNS]  idle TLS connections held for the memory figure
#   TLS_SUITE [TLS_AES_128_GCM_SHA256]  the one TLS 1.3 suite both proxies and
#                  the client allow
#   HTTP_TARGETS   the http case's targets ["castellan haproxy nginx"]; direct
#                  adds wrk straight to the origin (no proxy, no CPU figure)
#   HTTP_SECS [RATE_SECS]  one wrk run of the http case
#   HTTP_CONCURRENCY [CONCURRENCY]  wrk connections for the small responses
#   HTTP_BIG_CONCURRENCY [4]  wrk connections for the 1 MiB responses
#   HTTP_SMALL_BYTES [128]  the body of the small response
#   HTTP_WAIT_LIMIT [5]  a run in which a proxy thread waited more than this
#                  % of the time for its CPU is named in the summary's
#                  http_waits line as suspect (something else ran there)
#   HTTP_SLOW_LIMIT [15]  a run whose CPU probe (a fixed loop timed on the
#                  proxy CPU just before and after it) took more than this %
#                  longer than the case's fastest is named in the summary's
#                  http_cpu_speed line (the hypervisor gave the CPU less)
#   CASES          the cases to run when none is named ["proxies tls http reload"]
#   CAPACITY_STEPS [1000,4000,8000]  the N of the capacity case, increasing
#   CAPACITY_IDLE_S [10]  its idle CPU window   CAPACITY_PROBE_S [2]  its probe
#   CAPACITY_ROUNDS [1]  its rounds (alternating which proxy goes first)
#   SKIP_CASTELLAN=1 is the same as --skip-castellan (it skips the reload case,
#                  and the capacity case measures HAProxy alone);
#   KEEP_WORK=1 keeps the temporary folder (configs, logs, raw results).
# The helpers are compiled into build-bench/ (tls_load needs OpenSSL's headers,
# libssl-dev), and the summary and the raw results are left there too
# (summary.txt, results.tsv, with the tls case's figures; the reload case's
# reload.txt and reload.json; the capacity case's capacity.txt and
# capacity.json).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

skip_castellan=${SKIP_CASTELLAN:-0}
quick=0
cases=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --skip-castellan) skip_castellan=1 ;;
        --quick) quick=1 ;;
        proxies | reload | tls | http | capacity) cases+=("$1") ;;
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
    : "${ROUNDS:=1}" "${IPERF_SECS:=2}" "${RATE_SECS:=2}" "${IDLE_CONNS:=500}" "${TLS_BYTES:=268435456}"
    : "${CAPACITY_STEPS:=1000,4000}" "${CAPACITY_IDLE_S:=3}"
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
proxy_logging=${PROXY_LOGGING:-off}
tls_secs=${TLS_SECS:-$rate_secs}
tls_concurrency=${TLS_CONCURRENCY:-$concurrency}
tls_bytes=${TLS_BYTES:-1073741824}
tls_streams=${TLS_STREAMS:-4}
tls_tput_secs=${TLS_TPUT_SECS:-30}
tls_idle_conns=${TLS_IDLE_CONNS:-$idle_conns}
tls_suite=${TLS_SUITE:-TLS_AES_128_GCM_SHA256}
tls_name=bench.castellan.test  # the certificate's name, sent as SNI
http_secs=${HTTP_SECS:-$rate_secs}
http_concurrency=${HTTP_CONCURRENCY:-$concurrency}
http_big_concurrency=${HTTP_BIG_CONCURRENCY:-4}
http_small_bytes=${HTTP_SMALL_BYTES:-128}
http_wait_limit=${HTTP_WAIT_LIMIT:-5}
http_slow_limit=${HTTP_SLOW_LIMIT:-15}
read -r -a http_targets <<<"${HTTP_TARGETS:-castellan haproxy nginx}"
read -r -a targets <<<"${TARGETS:-castellan haproxy direct}"

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

# --- the reload case (bench/reload_bench.py) ------------------------------------

[[ ${#cases[@]} -gt 0 ]] || read -r -a cases <<<"${CASES:-proxies tls http reload}"
run_proxies=0
run_reload=0
run_tls=0
run_http=0
run_capacity=0
for case_name in "${cases[@]}"; do
    case $case_name in
        proxies) run_proxies=1 ;;
        reload) run_reload=1 ;;
        tls) run_tls=1 ;;
        http) run_http=1 ;;
        capacity) run_capacity=1 ;;
        *) die "unknown case '$case_name' (proxies, tls, http, reload, capacity)" ;;
    esac
done
if [[ $run_reload -eq 1 && $skip_castellan -eq 1 ]]; then
    say "run.sh: --skip-castellan: skipping the reload case (it measures castellan)"
    run_reload=0
fi
[[ $run_proxies -eq 1 || $run_tls -eq 1 || $run_http -eq 1 || $run_reload -eq 1 || $run_capacity -eq 1 ]] ||
    die "no case left to run"

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

# Runs bench/capacity_bench.py with this script's settings (binary, threads, CPU
# pinning, KEEP_WORK, --skip-castellan) and the compiled echo server and
# connrate; the script ends every process it starts. Its table and JSON line go
# to build-bench/capacity.txt, the JSON alone to build-bench/capacity.json.
run_capacity_case() {
    local out_dir=$root/build-bench cpus helper tool
    local -a args=(--threads "$threads" --json-out "$out_dir/capacity.json"
        --steps "${CAPACITY_STEPS:-1000,4000,8000}" --idle-s "${CAPACITY_IDLE_S:-10}"
        --probe-s "${CAPACITY_PROBE_S:-2}" --rounds "${CAPACITY_ROUNDS:-1}")
    if [[ $skip_castellan -eq 1 ]]; then
        args+=(--targets haproxy)
    else
        [[ -x $castellan_bin ]] || die "castellan binary not found at $castellan_bin (the capacity case needs it)"
        args+=(--castellan "$castellan_bin")
    fi
    for tool in python3 cc haproxy ss; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run scripts/setup.sh first"
    done
    mkdir -p "$out_dir"
    for helper in echo_server connrate; do
        if [[ ! -x $out_dir/$helper || $root/bench/$helper.c -nt $out_dir/$helper ]]; then
            cc -O2 -Wall -Wextra -o "$out_dir/$helper" "$root/bench/$helper.c" || die "cannot compile bench/$helper.c"
        fi
    done
    args+=(--echo-server "$out_dir/echo_server" --connrate "$out_dir/connrate")
    cpus=$(nproc)
    if [[ $cpus -ge 2 && $proxy_cpu -lt $cpus && $load_cpu -lt $cpus ]]; then
        args+=(--proxy-cpu "$proxy_cpu" --load-cpu "$load_cpu")
    else
        args+=(--no-pin)
    fi
    [[ ${KEEP_WORK:-0} == 1 ]] && args+=(--keep-work)
    echo
    echo "castellan benchmark: capacity case"
    echo
    rm -f "$out_dir/capacity.json"
    if ! python3 "$root/bench/capacity_bench.py" "${args[@]}" | tee "$out_dir/capacity.txt"; then
        die "the capacity case failed (see above)"
    fi
    echo "(saved in $out_dir/capacity.txt, the JSON line in $out_dir/capacity.json)"
}

# The cases that start their own processes (reload, capacity), after the others.
run_own_cases() {
    if [[ $run_reload -eq 1 ]]; then run_reload_case; fi
    if [[ $run_capacity -eq 1 ]]; then run_capacity_case; fi
}

if [[ $run_proxies -eq 0 && $run_tls -eq 0 && $run_http -eq 0 ]]; then
    run_own_cases
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
# The http case has its own targets: castellan, HAProxy and nginx as proxies,
# direct for wrk straight to the origin.
if [[ $run_http -eq 1 ]]; then
    kept=()
    for target in "${http_targets[@]}"; do
        case $target in
            castellan) [[ $skip_castellan -eq 1 ]] || kept+=("$target") ;;
            haproxy | nginx | direct) kept+=("$target") ;;
            *) die "unknown http target '$target' (castellan, haproxy, nginx, direct)" ;;
        esac
    done
    http_targets=("${kept[@]}")
    [[ ${#http_targets[@]} -gt 0 ]] || die "no http target left to measure"
    for target in "${http_targets[@]}"; do
        [[ $target == castellan ]] && wants_castellan=1
    done
    for number in "$http_secs" "$http_concurrency" "$http_big_concurrency" "$http_small_bytes" \
        "$http_wait_limit" "$http_slow_limit"; do
        [[ $number =~ ^[1-9][0-9]*$ ]] || die "the HTTP_ settings must be positive integers (got '$number')"
    done
else
    http_targets=()
fi
if [[ $wants_castellan -eq 1 && ! -x $castellan_bin ]]; then
    die "castellan binary not found at $castellan_bin.
Build it first (scripts/test.sh), point CASTELLAN_BIN at it, or run with
--skip-castellan to measure HAProxy and the direct path only."
fi
required=(taskset ss cc python3)
[[ $run_proxies -eq 1 ]] && required+=(iperf3)
[[ $run_tls -eq 1 ]] && required+=(openssl)
[[ $run_http -eq 1 ]] && required+=(wrk nginx curl openssl pgrep)
for tool in "${required[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run scripts/setup.sh first"
done
for target in "${targets[@]}" "${http_targets[@]}"; do
    if [[ $target == haproxy ]] && ! command -v haproxy >/dev/null 2>&1; then
        die "haproxy not found; run scripts/setup.sh first"
    fi
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
# The tls case compares castellan (its default pump: TLS has its own) with HAProxy;
# the direct path has no TLS, and the copy/splice variants would measure the same.
tls_targets=()
if [[ $run_tls -eq 1 ]]; then
    for target in "${targets[@]}"; do
        [[ $target == castellan || $target == haproxy ]] && tls_targets+=("$target")
    done
    if [[ ${#tls_targets[@]} -eq 0 ]]; then
        say "run.sh: the tls case measures only the targets castellan and haproxy: skipping it"
        run_tls=0
    fi
    for number in "$tls_secs" "$tls_concurrency" "$tls_bytes" "$tls_streams" "$tls_tput_secs" "$tls_idle_conns"; do
        [[ $number =~ ^[1-9][0-9]*$ ]] || die "the TLS_ settings must be positive integers (got '$number')"
    done
fi
if [[ $run_proxies -eq 0 && $run_tls -eq 0 && $run_http -eq 0 ]]; then
    [[ $run_reload -eq 1 || $run_capacity -eq 1 ]] || die "no case left to run"
    run_own_cases
    exit 0
fi
[[ $haproxy_splice =~ ^(auto|always|off)$ ]] || die "HAPROXY_SPLICE must be auto, always or off"
[[ $proxy_logging =~ ^(on|off)$ ]] || die "PROXY_LOGGING must be on or off"

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
if [[ $fd_limit != unlimited && $((tls_idle_conns * 2 + 200)) -gt $fd_limit ]]; then
    tls_idle_conns=$(((fd_limit - 200) / 2))
    say "run.sh: warning: file limit $fd_limit: holding only $tls_idle_conns idle TLS connections"
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
declare -A front_iperf front_echo front_tls
slot=1
for target in "${targets[@]}"; do
    if [[ $target == direct ]]; then
        front_iperf[$target]=$iperf_port
        front_echo[$target]=$echo_port
    else
        front_iperf[$target]=$((port_base + 10 * slot))
        front_echo[$target]=$((port_base + 10 * slot + 1))
        front_tls[$target]=$((port_base + 10 * slot + 2))
        slot=$((slot + 1))
    fi
done

# The http case's: the origin (plain, and TLS for the direct target) and each
# proxy's plain and TLS listeners, above the other cases' ports.
http_origin_port=$((port_base + 100))
http_origin_tls_port=$((port_base + 101))
declare -A front_http front_https
http_ports=()
if [[ $run_http -eq 1 ]]; then
    slot=1
    for target in "${http_targets[@]}"; do
        if [[ $target == direct ]]; then
            front_http[$target]=$http_origin_port
            front_https[$target]=$http_origin_tls_port
        else
            front_http[$target]=$((port_base + 100 + 10 * slot))
            front_https[$target]=$((port_base + 100 + 10 * slot + 1))
            slot=$((slot + 1))
        fi
    done
    http_ports=("$http_origin_port" "$http_origin_tls_port" "${front_http[@]}" "${front_https[@]}")
fi

listening() { [[ -n $(ss -Hltn "sport = :$1") ]]; }
for port in "$iperf_port" "$echo_port" "${front_iperf[@]}" "${front_echo[@]}" "${front_tls[@]}" "${http_ports[@]}"; do
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

helpers=(connrate echo_server)
[[ $run_tls -eq 1 ]] && helpers+=(tls_load)
for helper in "${helpers[@]}"; do
    if [[ ! -x $out_dir/$helper || $root/bench/$helper.c -nt $out_dir/$helper ]]; then
        libraries=()
        [[ $helper == tls_load ]] && libraries=(-lssl -lcrypto)
        cc -O2 -Wall -Wextra -o "$out_dir/$helper" "$root/bench/$helper.c" "${libraries[@]}" ||
            die "cannot compile bench/$helper.c (tls_load needs libssl-dev)"
    fi
done

if [[ $run_proxies -eq 1 ]]; then
    "${pin_load[@]}" iperf3 -s -B 127.0.0.1 -p "$iperf_port" >"$work/iperf3-server.log" 2>&1 &
    pids+=($!)
    wait_listening iperf3 "${pids[-1]}" "$work/iperf3-server.log" "$iperf_port"
fi
"${pin_load[@]}" "$out_dir/echo_server" 127.0.0.1 "$echo_port" >"$work/echo-server.log" 2>&1 &
pids+=($!)
wait_listening echo_server "${pids[-1]}" "$work/echo-server.log" "$echo_port"

# --- proxies --------------------------------------------------------------------

declare -A proxy_pid
castellan_access_log=off
haproxy_log_global="    # no logging"
haproxy_log_defaults="    # no logging"
if [[ $proxy_logging == on ]]; then
    castellan_access_log=all
    haproxy_log_global="    log stdout format raw local0"
    haproxy_log_defaults=$'    log global\n    option tcplog'
fi
start_castellan() {
    local target=$1 config=$work/$1.json pump
    cat >"$config" <<EOF
{
  "threads": $threads,
  "shutdown_grace_s": 0,
  "access_log": "$castellan_access_log",
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
# the same thread count as castellan, kernel splicing, logging as PROXY_LOGGING.
global
    nbthread $threads
    maxconn $((idle_conns + 1000))
$haproxy_log_global

defaults
    mode tcp
$haproxy_log_defaults
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

# --- raw results ----------------------------------------------------------------

results=$work/results.tsv
: >"$results"
meta() { printf 'meta\t%s\t%s\n' "$1" "$2" >>"$results"; }
record() { printf 'result\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$results"; }
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta machine "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $cpus CPUs, Linux $(uname -r)"
if [[ $wants_castellan -eq 1 ]]; then
    meta castellan "$("$castellan_bin" --version 2>&1 | head -1) ($castellan_bin)"
fi
for target in "${targets[@]}"; do
    if [[ $target == haproxy ]]; then
        meta haproxy "$(haproxy -v | head -1 | sed 's/ - https.*//'), nbthread $threads"
    fi
done
meta pinning "$pinning"

# CPU time (user + system, all threads) a process has used, in clock ticks:
# fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends its name.
clock_ticks=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

vm_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
established_to_echo() { ss -Htn state established "( dport = :$echo_port )" | wc -l; }

# Ends the processes PID... (SIGTERM, SIGKILL after 3 s) and waits for them, so
# that a case's proxies are gone before the next case measures.
stop_processes() {
    local pid tries
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        for ((tries = 0; tries < 30; tries++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# Waits (at most 10 s) until no connection to the echo server is left, so that
# one measurement does not count the connections of the one before.
wait_echo_idle() {
    local tries
    for ((tries = 0; tries < 100; tries++)); do
        [[ $(established_to_echo) -eq 0 ]] && break
        sleep 0.1
    done
}

# --- the proxies case -------------------------------------------------------------

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

# The plain TCP figures: iperf3 both ways, short connections, idle memory.
run_proxies_case() {
    local target pid
    for target in "${targets[@]}"; do
        case $target in
            castellan*) start_castellan "$target" ;;
            haproxy) start_haproxy ;;
        esac
    done
    meta iperf3 "$(iperf3 --version | head -1)"
    meta settings "rounds $rounds, iperf3 -t $iperf_secs, connections: $rate_secs s at $concurrency concurrent, 64 B each way, proxy threads $threads, HAProxy splice $haproxy_splice, logging $proxy_logging"

    # Smoke check: every target answers. Also warms each proxy up, so the memory
    # baseline below holds what a running proxy keeps anyway (the worker's
    # buffers, the first allocations).
    for target in "${targets[@]}"; do
        line=$(timeout 10 "${pin_load[@]}" "$out_dir/connrate" 127.0.0.1 "${front_echo[$target]}" 0.3 4 2>&1) ||
            die "$target does not answer the echo test: $line"
        [[ $line == *" errors=0 "* ]] || say "run.sh: warning: $target smoke check: $line"
    done

    # Memory per idle connection (on proxies that have served nothing much yet).
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

    local -a stopped=()
    for target in "${!proxy_pid[@]}"; do stopped+=("${proxy_pid[$target]}"); done
    stop_processes "${stopped[@]}"
}


# --- the tls case -----------------------------------------------------------------

declare -A tls_pid

# The certificate both proxies serve: ECDSA P-256, self-signed, for $tls_name
# (the client sends that name as SNI and verifies nothing). HAProxy wants the
# certificate and its key in one file, castellan takes them apart.
make_tls_certificate() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=$tls_name" -addext "subjectAltName=DNS:$tls_name" \
        -keyout "$work/tls-key.pem" -out "$work/tls-cert.pem" >"$work/openssl.log" 2>&1 ||
        die "openssl cannot make the test certificate: $(tail -n 3 "$work/openssl.log")"
    cat "$work/tls-cert.pem" "$work/tls-key.pem" >"$work/tls-haproxy.pem"
}

start_castellan_tls() {
    local config=$work/castellan-tls.json
    cat >"$config" <<EOF_CONFIG
{
  "threads": $threads,
  "shutdown_grace_s": 0,
  "access_log": "off",
  "virtual_services": [
    {
      "name": "bench-tls",
      "listen": "127.0.0.1:${front_tls[castellan]}",
      "mode": "tcp",
      "tls": {
        "mode": "terminate",
        "certificates": [ { "cert": "tls-cert.pem", "key": "tls-key.pem" } ],
        "min_version": "1.3",
        "ciphersuites": "$tls_suite"
      },
      "scheduler": "round_robin",
      "real_servers": [ { "name": "echo", "address": "127.0.0.1:$echo_port" } ],
      "health_check": { "type": "none" }
    }
  ]
}
EOF_CONFIG
    "${pin_proxy[@]}" "$castellan_bin" --config "$config" 2>"$work/castellan-tls.log" &
    pids+=($!)
    tls_pid[castellan]=$!
    wait_listening "castellan (tls)" "$!" "$work/castellan-tls.log" "${front_tls[castellan]}"
}

start_haproxy_tls() {
    local config=$work/haproxy-tls.cfg
    cat >"$config" <<EOF_CONFIG
# Generated by castellan's bench/run.sh: HAProxy ending TLS in tcp mode with the
# same thread count, certificate, TLS version and suite as castellan, no
# logging; its TLS otherwise as shipped (tickets on, its session cache).
global
    nbthread $threads
    maxconn $((tls_idle_conns + 1000))
    ssl-default-bind-options ssl-min-ver TLSv1.3
    ssl-default-bind-ciphersuites $tls_suite

defaults
    mode tcp
    timeout connect 3s
    timeout client 2h
    timeout server 2h

frontend bench-tls
    bind 127.0.0.1:${front_tls[haproxy]} ssl crt $work/tls-haproxy.pem
    default_backend bench-tls

backend bench-tls
    server echo 127.0.0.1:$echo_port
EOF_CONFIG
    haproxy -c -q -f "$config" || die "haproxy rejects $config"
    "${pin_proxy[@]}" haproxy -db -f "$config" >"$work/haproxy-tls.log" 2>&1 &
    pids+=($!)
    tls_pid[haproxy]=$!
    wait_listening "haproxy (tls)" "$!" "$work/haproxy-tls.log" "${front_tls[haproxy]}"
}

# bench/tls_load on the load CPU with the case's name and suite (taskset execs
# it, so that $! of one started in the background is tls_load itself).
tls_load=("${pin_load[@]}" "$out_dir/tls_load" -s "$tls_name" -c "$tls_suite")

# Prints KEY's value from a "key=value ..." LINE.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# Prints A * 1e6 / B with two decimals (the CPU time of A ticks... per B).
per_million() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a * 1e6 / b }'; }

# One run of short TLS connections against TARGET in round ROUND, as FIGURE:
# tls_hs (full handshakes), tls_res (one ticket, reused) or tls_su (single-use
# tickets); records the rate, the median and p99 times, the proxy's CPU time
# per connection and its CPU use, the tickets per connection and the
# resumptions, and says what it got.
tls_rate_run() {
    local target=$1 figure=$2 round=$3 pid=${tls_pid[$1]} line result cpu_before cpu_after ticks
    local connections rate errors resumed missed tickets each="?"
    local -a mode=(handshake)
    [[ $figure == tls_res ]] && mode=(resume)
    [[ $figure == tls_su ]] && mode=(-u resume)
    cpu_before=$(cpu_ticks "$pid")
    line=$(timeout $((tls_secs + 20)) "${tls_load[@]}" "${mode[@]}" 127.0.0.1 "${front_tls[$target]}" \
        "$tls_secs" "$tls_concurrency" 2>&1) || true
    cpu_after=$(cpu_ticks "$pid")
    ticks=$((cpu_after - cpu_before))
    result=$(grep '^connections=' <<<"$line" || true)
    connections=$(field connections "$result")
    rate=$(field rate "$result")
    errors=$(field errors "$result")
    resumed=$(field resumed "$result")
    missed=$(field not_resumed "$result")
    tickets=$(field tickets "$result")
    record "${figure}_rate" "$target" "$round" "${rate:-failed}"
    record "${figure}_p50" "$target" "$round" "$(field p50_us "$result")"
    record "${figure}_p99" "$target" "$round" "$(field p99_us "$result")"
    record "${figure}_busy" "$target" "$round" "$(awk -v t="$ticks" -v hz="$clock_ticks" -v s="$tls_secs" \
        'BEGIN { printf "%.0f", t * 100 / hz / s }')"
    if [[ ${connections:-0} -gt 0 ]]; then
        each=$(per_million "$ticks" "$((clock_ticks * connections))")
        record "${figure}_cpu" "$target" "$round" "$each"
        record "${figure}_tickets" "$target" "$round" "$(awk -v t="$tickets" -v n="$connections" \
            'BEGIN { printf "%.2f", t / n }')"
    fi
    if [[ $figure == tls_res ]]; then
        record tls_res_missed "$target" "$round" "${missed:-failed}"
    elif [[ $figure == tls_su && $((${resumed:-0} + ${missed:-0})) -gt 0 ]]; then
        record tls_su_resumed "$target" "$round" "$((100 * resumed / (resumed + missed)))"
    fi
    say "[$step/$total_steps] round $round: $target $figure: ${rate:-?}/s, errors ${errors:-?}," \
        "p50 $(field p50_us "$result") us, p99 $(field p99_us "$result") us," \
        "proxy CPU $each us each," \
        "resumed ${resumed:-?}, not resumed ${missed:-?}, tickets ${tickets:-?}"
    [[ ${errors:-1} == 0 ]] || say "run.sh: warning: $target $figure: $line"
    if [[ $figure == tls_res && ${missed:-1} != 0 ]]; then
        say "run.sh: warning: $target: ${missed:-?} connections did not resume their session"
    fi
}

# One throughput run over TLS against TARGET in round ROUND: records MB/s (each
# way) and the proxy's CPU time per MB.
tls_throughput_run() {
    local target=$1 round=$2 pid=${tls_pid[$1]} line result cpu_before cpu_after bytes rate seconds
    cpu_before=$(cpu_ticks "$pid")
    line=$(timeout $((tls_tput_secs + 20)) "${tls_load[@]}" throughput 127.0.0.1 "${front_tls[$target]}" \
        "$tls_tput_secs" "$tls_streams" "$tls_bytes" 2>&1) || true
    cpu_after=$(cpu_ticks "$pid")
    result=$(grep '^streams=' <<<"$line" || true)
    bytes=$(field bytes "$result")
    rate=$(field mb_per_s "$result")
    seconds=$(field seconds "$result")
    record tls_tput "$target" "$round" "${rate:-failed}"
    if [[ ${bytes:-0} -gt 0 ]]; then
        record tls_tput_busy "$target" "$round" "$(awk -v t=$((cpu_after - cpu_before)) -v hz="$clock_ticks" \
            -v s="$seconds" 'BEGIN { printf "%.0f", t * 100 / hz / s }')"
        record tls_tput_cpu "$target" "$round" "$(per_million "$((cpu_after - cpu_before))" \
            "$(awk -v hz="$clock_ticks" -v b="$bytes" 'BEGIN { printf "%.0f", hz * b / 1e6 }')")"
    fi
    say "[$step/$total_steps] round $round: $target TLS throughput: ${rate:-?} MB/s each way" \
        "(${bytes:-?} bytes in ${seconds:-?} s)"
    [[ $(field errors "$result") == 0 && ${bytes:-0} == "$tls_bytes" ]] ||
        say "run.sh: warning: $target TLS throughput: not every byte came back: $line"
}

# The TLS figures: handshakes, resumptions, throughput, idle memory.
run_tls_case() {
    local target pid line negotiated first_negotiated="" before after holder tries upstream figure
    make_tls_certificate
    for target in "${tls_targets[@]}"; do
        case $target in
            castellan) start_castellan_tls ;;
            haproxy) start_haproxy_tls ;;
        esac
    done
    meta tls_settings "TLS 1.3 only, suite $tls_suite, ECDSA P-256 certificate; handshakes: $tls_secs s at $tls_concurrency concurrent, 64 B each way; throughput: $tls_streams streams, $tls_bytes B each way (at most $tls_tput_secs s); idle: $tls_idle_conns connections"

    # Smoke check: each proxy completes handshakes, and both negotiate the same
    # thing (the protocol, the suite, the key exchange group, the certificate's
    # key); also warms each up (OpenSSL's first allocations) before the memory
    # baseline.
    for target in "${tls_targets[@]}"; do
        line=$(timeout 10 "${tls_load[@]}" handshake 127.0.0.1 "${front_tls[$target]}" 0.3 4 2>&1) ||
            die "$target does not answer the TLS echo test: $line"
        [[ $line == *" errors=0 "* ]] || say "run.sh: warning: $target TLS smoke check: $line"
        negotiated=$(sed -n 's/^negotiated //p' <<<"$line")
        meta "tls $target" "$negotiated"
        say "tls: $target negotiated $negotiated"
        if [[ -z $first_negotiated ]]; then
            first_negotiated=$negotiated
        elif [[ $negotiated != "$first_negotiated" ]]; then
            say "run.sh: warning: the proxies negotiated different TLS parameters: $first_negotiated / $negotiated"
        fi
    done
    wait_echo_idle

    # Memory per idle TLS connection, handshake done and one echo through it.
    for target in "${tls_targets[@]}"; do
        pid=${tls_pid[$target]}
        sleep 0.5
        before=$(vm_rss_kb "$pid")
        "${tls_load[@]}" hold 127.0.0.1 "${front_tls[$target]}" "$tls_idle_conns" 600 \
            >"$work/tls-hold-$target.log" 2>&1 &
        holder=$!
        pids+=("$holder")
        for ((tries = 0; tries < 900; tries++)); do
            grep -q '^ready' "$work/tls-hold-$target.log" && break
            kill -0 "$holder" 2>/dev/null || break
            sleep 0.1
        done
        grep -q '^ready' "$work/tls-hold-$target.log" ||
            die "$target: idle TLS connections failed: $(cat "$work/tls-hold-$target.log")"
        # Each has had its echo, so each is connected on already; check anyway.
        for ((tries = 0; tries < 100; tries++)); do
            [[ $(established_to_echo) -ge $tls_idle_conns ]] && break
            sleep 0.1
        done
        upstream=$(established_to_echo)
        [[ $upstream -ge $tls_idle_conns ]] ||
            say "run.sh: warning: $target: only $upstream of $tls_idle_conns TLS connections connected on"
        sleep 0.5
        after=$(vm_rss_kb "$pid")
        printf 'rss_tls\t%s\t%s\t%s\t%s\n' "$target" "$before" "$after" "$tls_idle_conns" >>"$results"
        say "idle TLS: $target VmRSS $before kB -> $after kB for $tls_idle_conns connections" \
            "($(sed -n 's/^ready [0-9]* //p' "$work/tls-hold-$target.log"))"
        stop_processes "$holder"
        wait_echo_idle
    done

    total_steps=$((rounds * 4 * ${#tls_targets[@]}))
    step=0
    for ((round = 1; round <= rounds; round++)); do
        # Rotate the order each round so that no target always runs first or last.
        order=()
        for ((i = 0; i < ${#tls_targets[@]}; i++)); do
            order+=("${tls_targets[$(((i + round - 1) % ${#tls_targets[@]}))]}")
        done
        for figure in tls_hs tls_res tls_su; do
            for target in "${order[@]}"; do
                step=$((step + 1))
                tls_rate_run "$target" "$figure" "$round"
                sleep 1  # let the TIME_WAIT sockets of this run settle
            done
        done
        for target in "${order[@]}"; do
            step=$((step + 1))
            tls_throughput_run "$target" "$round"
            wait_echo_idle
            sleep 0.5
        done
    done

    for target in "${!tls_pid[@]}"; do
        if ! kill -0 "${tls_pid[$target]}" 2>/dev/null; then
            say "run.sh: $target (tls) died during the run; its log:"
            tail -n 20 "$work/$target-tls.log" >&2 || true
            exit 1
        fi
    done
    local -a stopped=()
    for target in "${!tls_pid[@]}"; do stopped+=("${tls_pid[$target]}"); done
    stop_processes "${stopped[@]}"
}

# --- the http case ----------------------------------------------------------------

declare -A http_pid

# nginx's workers run as the user named here when it starts as root (else as
# nobody, who may not enter the work folder).
nginx_user_line() {
    if [[ $(id -u) -eq 0 ]]; then
        printf 'user %s %s;' "$(id -un)" "$(id -gn)"
    fi
}

# The temporary-file folders an nginx may write (instead of the packaged
# /var/lib/nginx): one line for its http block.
nginx_temp_paths() {
    local dir=$work/$1-temp kind line=""
    for kind in client_body proxy fastcgi uwsgi scgi; do
        mkdir -p "$dir/$kind"
        line+="${kind}_temp_path $dir/$kind; "
    done
    printf '%s' "$line"
}

# The origin: one nginx worker on the load CPU serving the small file and the
# 1 MiB one (open-file cache, sendfile), and /xff, which answers with the
# X-Forwarded-For and X-Forwarded-Proto it received (the smoke check reads
# them); plain, and over TLS for the direct target. No log; keep-alive limits
# above anything a run needs.
start_http_origin() {
    local config=$work/origin.conf
    mkdir -p "$work/www"
    head -c "$http_small_bytes" /dev/zero | tr '\0' x >"$work/www/small"
    head -c 1048576 /dev/urandom >"$work/www/1m"
    cat >"$config" <<EOF_CONFIG
# Generated by castellan's bench/run.sh: the origin of the http case.
$(nginx_user_line)
worker_processes 1;
daemon off;
pid $work/origin.pid;
error_log $work/origin.log error;
events { worker_connections 16384; }
http {
    access_log off;
    $(nginx_temp_paths origin)
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16;
    open_file_cache_valid 3600s;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites $tls_suite;
    ssl_certificate $work/tls-cert.pem;
    ssl_certificate_key $work/tls-key.pem;
    server {
        listen 127.0.0.1:$http_origin_port backlog=4096;
        listen 127.0.0.1:$http_origin_tls_port ssl backlog=4096;
        root $work/www;
        location = /xff { return 200 "\$http_x_forwarded_for \$http_x_forwarded_proto\n"; }
    }
}
EOF_CONFIG
    "${pin_load[@]}" nginx -p "$work" -c "$config" -e "$work/origin.log" &
    pids+=($!)
    wait_listening "nginx (origin)" "$!" "$work/origin.log" "$http_origin_port" "$http_origin_tls_port"
}

start_castellan_http() {
    local config=$work/castellan-http.json
    cat >"$config" <<EOF_CONFIG
{
  "threads": $threads,
  "shutdown_grace_s": 0,
  "access_log": "off",
  "virtual_services": [
    {
      "name": "bench-http",
      "listen": "127.0.0.1:${front_http[castellan]}",
      "mode": "http",
      "scheduler": "round_robin",
      "real_servers": [ { "name": "origin", "address": "127.0.0.1:$http_origin_port" } ],
      "health_check": { "type": "none" },
      "http": { "x_forwarded_for": true }
    },
    {
      "name": "bench-https",
      "listen": "127.0.0.1:${front_https[castellan]}",
      "mode": "http",
      "tls": {
        "mode": "terminate",
        "certificates": [ { "cert": "tls-cert.pem", "key": "tls-key.pem" } ],
        "min_version": "1.3",
        "ciphersuites": "$tls_suite"
      },
      "scheduler": "round_robin",
      "real_servers": [ { "name": "origin", "address": "127.0.0.1:$http_origin_port" } ],
      "health_check": { "type": "none" },
      "http": { "x_forwarded_for": true }
    }
  ]
}
EOF_CONFIG
    "${pin_proxy[@]}" "$castellan_bin" --config "$config" 2>"$work/castellan-http.log" &
    pids+=($!)
    http_pid[castellan]=$!
    wait_listening "castellan (http)" "$!" "$work/castellan-http.log" "${front_http[castellan]}" \
        "${front_https[castellan]}"
}

start_haproxy_http() {
    local config=$work/haproxy-http.cfg splice_options
    case $haproxy_splice in
        auto) splice_options="    option splice-auto" ;;
        always) splice_options=$'    option splice-request\n    option splice-response' ;;
        off) splice_options="    # no splicing" ;;
    esac
    cat >"$config" <<EOF_CONFIG
# Generated by castellan's bench/run.sh: HAProxy in http mode with the same
# thread count, certificate, TLS version and suite as castellan, no logging,
# X-Forwarded-For and X-Forwarded-Proto like castellan's, keep-alive both ways
# (its default mode, http-reuse safe), bodies spliced as in the tcp case.
global
    nbthread $threads
    maxconn $((http_concurrency * 4 + 1000))
    ssl-default-bind-options ssl-min-ver TLSv1.3
    ssl-default-bind-ciphersuites $tls_suite

defaults
    mode http
    option forwardfor
$splice_options
    timeout connect 3s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
    timeout http-request 10s

frontend bench-http
    bind 127.0.0.1:${front_http[haproxy]}
    bind 127.0.0.1:${front_https[haproxy]} ssl crt $work/tls-haproxy.pem alpn http/1.1
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
    default_backend origin

backend origin
    server origin 127.0.0.1:$http_origin_port
EOF_CONFIG
    haproxy -c -q -f "$config" || die "haproxy rejects $config"
    "${pin_proxy[@]}" haproxy -db -f "$config" >"$work/haproxy-http.log" 2>&1 &
    pids+=($!)
    http_pid[haproxy]=$!
    wait_listening "haproxy (http)" "$!" "$work/haproxy-http.log" "${front_http[haproxy]}" "${front_https[haproxy]}"
}

start_nginx_http() {
    local config=$work/nginx-proxy.conf
    cat >"$config" <<EOF_CONFIG
# Generated by castellan's bench/run.sh: nginx as a reverse proxy with as many
# workers as castellan has threads, the same certificate, TLS version and
# suite, no access log, X-Forwarded-For and X-Forwarded-Proto like castellan's,
# HTTP/1.1 and a keepalive pool to the origin; its proxy buffering as shipped.
$(nginx_user_line)
worker_processes $threads;
daemon off;
pid $work/nginx-proxy.pid;
error_log $work/nginx-proxy.log error;
events { worker_connections 16384; }
http {
    access_log off;
    $(nginx_temp_paths nginx-proxy)
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites $tls_suite;
    ssl_certificate $work/tls-cert.pem;
    ssl_certificate_key $work/tls-key.pem;
    upstream origin {
        server 127.0.0.1:$http_origin_port;
        keepalive 256;
        keepalive_requests 100000000;
        keepalive_timeout 600s;
    }
    server {
        listen 127.0.0.1:${front_http[nginx]} backlog=4096;
        listen 127.0.0.1:${front_https[nginx]} ssl backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF_CONFIG
    nginx -t -q -p "$work" -c "$config" -e "$work/nginx-proxy.log" || die "nginx rejects $config"
    "${pin_proxy[@]}" nginx -p "$work" -c "$config" -e "$work/nginx-proxy.log" &
    pids+=($!)
    http_pid[nginx]=$!
    wait_listening "nginx (proxy)" "$!" "$work/nginx-proxy.log" "${front_http[nginx]}" "${front_https[nginx]}"
}

# One line per thread of PID and of its children (nginx's master and its
# workers): its id and the nanoseconds it has waited on a run queue for a CPU
# (/proc/.../schedstat). A proxy alone on its CPU hardly waits: what one of
# its threads waited during a run is the time something else (another
# process, a build, the tests of another session) took from it.
run_queue_waits() {
    local pid task
    for pid in "$1" $(pgrep -P "$1"); do
        for task in /proc/"$pid"/task/*; do
            if [[ -r $task/schedstat ]]; then
                printf '%s %s\n' "${task##*/}" "$(cut -d' ' -f2 "$task/schedstat")"
            fi
        done
    done 2>/dev/null
}

# Times a fixed loop on the proxy CPU, in milliseconds. The hypervisor may give
# this machine's CPUs less than a whole core at times (another guest on its
# host), which nothing in here sees: a run whose probes took much longer than
# the case's fastest probe ran on a slower CPU.
cpu_probe_ms() {
    local start end
    start=$(date +%s%N)
    "${pin_proxy[@]}" awk 'BEGIN { for (i = 0; i < 3000000; i++) s += i }'
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

# The most any one thread waited between two run_queue_waits lists BEFORE and
# AFTER, as a per cent of SECONDS.
most_waited() {
    awk -v s="$3" 'NR == FNR { before[$1] = $2; next }
        ($1 in before) { w = ($2 - before[$1]) / 1e7 / s; if (w > most) most = w }
        END { printf "%.0f", most }' <(printf '%s\n' "$1") <(printf '%s\n' "$2")
}

# CPU time of PID and its children (nginx's master and its workers), in clock
# ticks.
cpu_ticks_tree() {
    local total child
    total=$(cpu_ticks "$1")
    for child in $(pgrep -P "$1"); do
        total=$((total + $(cpu_ticks "$child")))
    done
    echo "$total"
}

# Checks that TARGET serves both files whole, plain and over TLS, and passes on
# X-Forwarded-For and X-Forwarded-Proto; records what it negotiated.
http_smoke_check() {
    local target=$1 scheme port got want negotiated
    for scheme in http https; do
        port=${front_http[$target]}
        [[ $scheme == https ]] && port=${front_https[$target]}
        got=$(curl -sk --tlsv1.3 --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' \
            "$scheme://127.0.0.1:$port/small") || true
        [[ $got == "200 $http_small_bytes" ]] || die "$target ($scheme): /small answered '$got'"
        got=$(curl -sk --tlsv1.3 --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' \
            "$scheme://127.0.0.1:$port/1m") || true
        [[ $got == "200 1048576" ]] || die "$target ($scheme): /1m answered '$got'"
        got=$(curl -sk --tlsv1.3 --max-time 5 "$scheme://127.0.0.1:$port/xff") || true
        want="127.0.0.1 $scheme"
        [[ $target == direct ]] && want=" "
        [[ $got == "$want" ]] ||
            die "$target ($scheme): the origin got X-Forwarded-For and -Proto '$got', not '$want'"
    done
    negotiated=$(openssl s_client -connect "127.0.0.1:${front_https[$target]}" -servername "$tls_name" -brief \
        </dev/null 2>&1 | awk -F': ' '
            /^Protocol version/ { protocol = $2 } /^Ciphersuite/ { suite = $2 }
            /^Server Temp Key/ { split($2, key, ","); group = key[1] } /^Signature type/ { signature = $2 }
            END { printf "%s %s %s %s", protocol, suite, group, signature }')
    meta "http tls $target" "$negotiated"
    say "http: $target forwards X-Forwarded-For and -Proto; over TLS it negotiated $negotiated"
}

# One wrk run against TARGET in round ROUND: SCHEME http or https, FIGURE ka
# (keep-alive, small file), close (Connection: close, small file) or big (1 MiB
# file, keep-alive); records under SCHEME_FIGURE_* the rate or throughput, the
# proxy's CPU time per request or per MiB and its CPU use, and for ka the
# requests per CPU second and the median and p99 times.
http_run() {
    local target=$1 scheme=$2 figure=$3 round=$4 name=${2}_${3} port path=/small
    local connections=$http_concurrency pid=${http_pid[$1]:-} line result cpu_before=0 cpu_after=0 ticks
    local requests bytes duration errors seconds summary waits_before="" waits_after="" waited
    local probe_before probe_after
    local -a header=()
    port=${front_http[$target]}
    [[ $scheme == https ]] && port=${front_https[$target]}
    [[ $figure == close ]] && header=(-H "Connection: close")
    if [[ $figure == big ]]; then
        path=/1m
        connections=$http_big_concurrency
    fi
    probe_before=$(cpu_probe_ms)
    if [[ -n $pid ]]; then
        waits_before=$(run_queue_waits "$pid")
        cpu_before=$(cpu_ticks_tree "$pid")
    fi
    line=$(timeout $((http_secs + 30)) "${pin_load[@]}" wrk -t1 -c "$connections" -d "${http_secs}s" --timeout 10s \
        -s "$root/bench/wrk_report.lua" "${header[@]}" "$scheme://127.0.0.1:$port$path" 2>&1) || true
    if [[ -n $pid ]]; then
        cpu_after=$(cpu_ticks_tree "$pid")
        waits_after=$(run_queue_waits "$pid")
    fi
    probe_after=$(cpu_probe_ms)
    ticks=$((cpu_after - cpu_before))
    http_probe_runs+=("$target $name round $round")
    http_probe_ms+=($((probe_before > probe_after ? probe_before : probe_after)))
    record "${name}_probe" "$target" "$round" "${http_probe_ms[-1]}"
    result=$(grep -m1 '^wrk ' <<<"$line" || true)
    requests=$(field requests "$result")
    bytes=$(field bytes "$result")
    duration=$(field duration_us "$result")
    errors=$(field errors "$result")
    if [[ ${requests:-0} -eq 0 || ${duration:-0} -eq 0 ]]; then
        record "${name}_rate" "$target" "$round" failed
        say "[$step/$total_steps] round $round: $target $name failed: $line"
        return
    fi
    seconds=$(awk -v d="$duration" 'BEGIN { printf "%.6f", d / 1e6 }')
    if [[ $figure == big ]]; then
        record "${name}_tput" "$target" "$round" "$(awk -v b="$bytes" -v s="$seconds" \
            'BEGIN { printf "%.1f", b / 1048576 / s }')"
        summary="$(awk -v b="$bytes" -v s="$seconds" 'BEGIN { printf "%.0f", b / 1048576 / s }') MiB/s"
        [[ -n $pid ]] && record "${name}_cpu" "$target" "$round" "$(awk -v t="$ticks" -v hz="$clock_ticks" \
            -v b="$bytes" 'BEGIN { printf "%.1f", t * 1e6 / hz / (b / 1048576) }')"
        [[ $((bytes / requests)) -ge 1048576 ]] ||
            say "run.sh: warning: $target $name: $bytes bytes for $requests responses of 1 MiB"
    else
        record "${name}_rate" "$target" "$round" "$(awk -v n="$requests" -v s="$seconds" \
            'BEGIN { printf "%.0f", n / s }')"
        summary="$(awk -v n="$requests" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')/s"
        if [[ -n $pid && $ticks -gt 0 ]]; then
            record "${name}_cpu" "$target" "$round" "$(per_million "$ticks" "$((clock_ticks * requests))")"
            record "${name}_per_cpu" "$target" "$round" "$(awk -v t="$ticks" -v hz="$clock_ticks" -v n="$requests" \
                'BEGIN { printf "%.0f", n * hz / t }')"
        fi
        if [[ $figure == ka ]]; then
            record "${name}_p50" "$target" "$round" "$(field p50_us "$result")"
            record "${name}_p99" "$target" "$round" "$(field p99_us "$result")"
            summary+=", p50 $(field p50_us "$result") us, p99 $(field p99_us "$result") us"
        fi
    fi
    if [[ -n $pid ]]; then
        record "${name}_busy" "$target" "$round" "$(awk -v t="$ticks" -v hz="$clock_ticks" -v s="$seconds" \
            'BEGIN { printf "%.0f", t * 100 / hz / s }')"
        summary+=", proxy CPU $(awk -v t="$ticks" -v hz="$clock_ticks" -v s="$seconds" \
            'BEGIN { printf "%.0f", t * 100 / hz / s }') %"
        # Over a few per cent, something else ran on the proxy CPU during the
        # run and its figures are suspect.
        waited=$(most_waited "$waits_before" "$waits_after" "$seconds")
        record "${name}_wait" "$target" "$round" "$waited"
        summary+=", waited $waited %"
        http_runs=$((http_runs + 1))
        if [[ $waited -gt $http_wait_limit ]]; then
            http_disturbed+=("$target $name round $round: ${waited}%")
            say "run.sh: warning: $target $name: the proxy waited ${waited}% of the run for its CPU (something else ran there)"
        fi
    fi
    say "[$step/$total_steps] round $round: $target $name: $summary, errors ${errors:-?}"
    [[ ${errors:-1} == 0 ]] || say "run.sh: warning: $target $name: $result"
}

# The HTTP figures: keep-alive, connection per request and 1 MiB responses,
# plain and over TLS, through each http target.
run_http_case() {
    local target scheme figure
    [[ -e $work/tls-cert.pem ]] || make_tls_certificate
    start_http_origin
    for target in "${http_targets[@]}"; do
        case $target in
            castellan) start_castellan_http ;;
            haproxy) start_haproxy_http ;;
            nginx) start_nginx_http ;;
        esac
    done
    meta nginx "$(nginx -v 2>&1 | sed 's/^nginx version: //'), worker_processes $threads (proxy); origin: nginx, 1 worker"
    meta wrk "$(wrk --version 2>&1 | head -1 | sed 's/ *Copyright.*//'), 1 thread"
    meta http_settings "wrk -d ${http_secs}s; small: $http_small_bytes B at $http_concurrency connections; 1 MiB: $http_big_concurrency connections; TLS 1.3 $tls_suite, ECDSA P-256; HAProxy splice $haproxy_splice"

    # Smoke check: whole files both ways, the forwarded fields, TLS parameters;
    # then one short keep-alive run each, so that no proxy's first measured run
    # pays for its first allocations.
    for target in "${http_targets[@]}"; do
        http_smoke_check "$target"
    done
    for target in "${http_targets[@]}"; do
        for scheme in http https; do
            local port=${front_http[$target]}
            [[ $scheme == https ]] && port=${front_https[$target]}
            timeout 30 "${pin_load[@]}" wrk -t1 -c "$http_concurrency" -d 1s "$scheme://127.0.0.1:$port/small" \
                >/dev/null 2>&1 || true
        done
    done

    total_steps=$((rounds * 6 * ${#http_targets[@]}))
    step=0
    http_runs=0
    http_disturbed=()
    http_probe_runs=()
    http_probe_ms=()
    for ((round = 1; round <= rounds; round++)); do
        # Rotate the order each round so that no target always runs first or last.
        order=()
        for ((i = 0; i < ${#http_targets[@]}; i++)); do
            order+=("${http_targets[$(((i + round - 1) % ${#http_targets[@]}))]}")
        done
        for scheme in http https; do
            for figure in ka close big; do
                for target in "${order[@]}"; do
                    step=$((step + 1))
                    http_run "$target" "$scheme" "$figure" "$round"
                    if [[ $figure == close ]]; then
                        sleep 1  # let the TIME_WAIT sockets of this run settle
                    else
                        sleep 0.5
                    fi
                done
            done
        done
    done

    if [[ ${#http_disturbed[@]} -eq 0 ]]; then
        meta http_waits "in none of the $http_runs runs did the proxy wait over $http_wait_limit% of the run for its CPU"
    else
        meta http_waits "in ${#http_disturbed[@]} of $http_runs runs the proxy waited over $http_wait_limit% of the run for its CPU (something else ran there; rerun on a quiet machine): $(
            IFS=';'; echo "${http_disturbed[*]}")"
    fi
    local fastest slow_runs=() i
    fastest=$(printf '%s\n' "${http_probe_ms[@]}" | sort -n | head -n 1)
    for ((i = 0; i < ${#http_probe_ms[@]}; i++)); do
        if [[ $((http_probe_ms[i] * 100)) -gt $((fastest * (100 + http_slow_limit))) ]]; then
            slow_runs+=("${http_probe_runs[i]}: +$(((http_probe_ms[i] - fastest) * 100 / fastest))%")
        fi
    done
    if [[ ${#slow_runs[@]} -eq 0 ]]; then
        meta http_cpu_speed "steady: no run's CPU probe (a fixed loop on the proxy CPU before and after it) took over $http_slow_limit% longer than the fastest ($fastest ms)"
    else
        meta http_cpu_speed "in ${#slow_runs[@]} of ${#http_probe_ms[@]} runs the proxy CPU was slower (the probe took over $http_slow_limit% longer than the fastest, $fastest ms: the hypervisor gave it less; rerun): $(
            IFS=';'; echo "${slow_runs[*]}")"
    fi
    for target in "${!http_pid[@]}"; do
        if ! kill -0 "${http_pid[$target]}" 2>/dev/null; then
            say "run.sh: $target (http) died during the run; its log:"
            tail -n 20 "$work/$target-http.log" "$work/nginx-proxy.log" >&2 2>/dev/null || true
            exit 1
        fi
    done
    local -a stopped=()
    for target in "${!http_pid[@]}"; do stopped+=("${http_pid[$target]}"); done
    stop_processes "${stopped[@]}"
}

# --- the cases, the summary -------------------------------------------------------

[[ $run_proxies -eq 1 ]] && run_proxies_case
[[ $run_tls -eq 1 ]] && run_tls_case
[[ $run_http -eq 1 ]] && run_http_case

cp "$results" "$out_dir/results.tsv"
echo
echo "castellan benchmark summary"
echo
python3 "$root/bench/summarize.py" "$results" | tee "$out_dir/summary.txt"
echo
echo "(summary saved in $out_dir/summary.txt, raw figures in $out_dir/results.tsv)"

# --- the reload and capacity cases, after the proxies ------------------------------

run_own_cases
