#!/usr/bin/env bash
# castellan's demo: two small demo real servers on 127.0.0.1 that say who they
# are ("cas1", "cas2"), and castellan in front of them on 127.0.0.1:8135,
# round robin, with its admin API and status page on 127.0.0.1:9090.
#
#   scripts/setup.sh && scripts/demo.sh
#
# Builds build/castellan if needed, writes its config to demo/run/, runs
# castellan in the foreground (its log is what you see), and stops everything
# on Ctrl-C.
#
# Environment: CASTELLAN_BIN (use that binary, do not build), DEMO_PORT [8135],
# ADMIN_PORT [9090], CAS1_PORT [8141], CAS2_PORT [8142].
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

demo_port=${DEMO_PORT:-8135}
admin_port=${ADMIN_PORT:-9090}
cas1_port=${CAS1_PORT:-8141}
cas2_port=${CAS2_PORT:-8142}
run_dir=demo/run

say() { printf '%s\n' "$*"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

for tool in python3 ss; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run scripts/setup.sh first"
done

# --- the binary -------------------------------------------------------------------

if [[ -n ${CASTELLAN_BIN:-} ]]; then
    bin=$CASTELLAN_BIN
    [[ -x $bin ]] || die "CASTELLAN_BIN=$bin is not an executable"
else
    bin=build/castellan
    command -v cmake >/dev/null 2>&1 || die "cmake not found; run scripts/setup.sh first"
    if [[ ! -f build/CMakeCache.txt ]]; then
        say "== configuring build/ (Release)"
        cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    say "== building castellan (the first build takes a few minutes)"
    cmake --build build --target castellan -j"$(nproc)"
fi

# --- ports --------------------------------------------------------------------------

for port in "$demo_port" "$admin_port" "$cas1_port" "$cas2_port"; do
    if [[ -n $(ss -Hltn "sport = :$port") ]]; then
        die "port $port is already in use (another demo still running?); set DEMO_PORT, ADMIN_PORT, CAS1_PORT or CAS2_PORT"
    fi
done

# --- the demo real servers ------------------------------------------------------------

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

python3 scripts/demo_server.py cas1 127.0.0.1 "$cas1_port" &
pids+=($!)
python3 scripts/demo_server.py cas2 127.0.0.1 "$cas2_port" &
pids+=($!)
for port in "$cas1_port" "$cas2_port"; do
    for ((tries = 0; tries < 50; tries++)); do
        [[ -n $(ss -Hltn "sport = :$port") ]] && break
        sleep 0.1
    done
    [[ -n $(ss -Hltn "sport = :$port") ]] || die "the demo real server on port $port did not start"
done

# --- castellan's config -----------------------------------------------------------------

mkdir -p "$run_dir"
config=$run_dir/castellan.json
token_file=$run_dir/admin.token
if [[ ! -s $token_file ]]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(16))' >"$token_file")
fi
cat >"$config" <<EOF
{
  "threads": 2,
  "shutdown_grace_s": 2,
  "admin": { "listen": "127.0.0.1:$admin_port", "token_file": "admin.token" },
  "virtual_services": [
    {
      "name": "demo-tcp",
      "listen": "127.0.0.1:$demo_port",
      "mode": "tcp",
      "scheduler": "round_robin",
      "real_servers": [
        { "name": "cas1", "address": "127.0.0.1:$cas1_port" },
        { "name": "cas2", "address": "127.0.0.1:$cas2_port" }
      ],
      "health_check": { "type": "tcp", "interval_ms": 2000, "timeout_ms": 1000, "rise": 2, "fall": 2 },
      "timeouts": { "connect_ms": 1000, "idle_s": 300 }
    }
  ]
}
EOF
"$bin" --config "$config" --check >/dev/null || die "castellan rejects $config (see above)"

cat <<EOF

castellan demo
  virtual service  127.0.0.1:$demo_port (tcp, round robin) -> cas1 127.0.0.1:$cas1_port, cas2 127.0.0.1:$cas2_port
  config           $run_dir/castellan.json
  status page      http://127.0.0.1:$admin_port/

Try, in another terminal (each connection greets you with the server it reached):
  for i in 1 2 3 4; do nc -q1 127.0.0.1 $demo_port </dev/null; done
  python3 -c 'import socket; [print(socket.create_connection(("127.0.0.1", $demo_port)).recv(100).decode().strip()) for _ in range(4)]'
  curl -s http://127.0.0.1:$demo_port/
Drain cas1 (no new clients; open connections go on), then enable it again:
  curl -s -X POST -H "Authorization: Bearer \$(cat $token_file)" -d '{"state": "drain"}' \\
       http://127.0.0.1:$admin_port/api/v1/virtual-services/demo-tcp/real-servers/cas1/state
  curl -s -X POST -H "Authorization: Bearer \$(cat $token_file)" -d '{"state": "enabled"}' \\
       http://127.0.0.1:$admin_port/api/v1/virtual-services/demo-tcp/real-servers/cas1/state
Stop a real server to see the failover: kill ${pids[0]}  (cas1)

Ctrl-C stops everything. castellan's log follows.

EOF

status=0
"$bin" --config "$config" || status=$?
exit "$status"
