#!/usr/bin/env python3
"""castellan's reload benchmark: what a config reload costs, on 127.0.0.1 only.

Runs castellan on a config of 100 tcp virtual services x 10 real servers (the same
10 echo servers rs0..rs9 behind every service, each service on its own port, the
default tcp health check) and measures:

  (a) reload latency: for RELOADS reloads, the time from sending SIGHUP to the new
      generation showing in GET /api/v1/status (polled every 2 ms over one
      keep-alive connection, back to back when one poll takes longer: the
      figure is an upper bound by one poll's round trip); also the time to the
      ts of the `event=reload` log line (ms resolution);
  (b) connect latency: one client loop of short connections (connect, send one
      line, read its echo, close) to 4 of the services, first for BASELINE
      seconds without reloads, then during RELOADS reloads 250 ms apart; count,
      failures, median and 99th percentile of each phase and the ratio of the
      two 99th percentiles; and the time from each of these reloads' SIGHUP to
      its log line, with no status polling beside them.

Every reload really changes the config of every service: in turn rs0's weight
goes to 2 and back, and rs9 leaves and comes back.

Goals (issue 6): every reload visible in status in under 50 ms; during reloads no
failed connection and a p99 at most 2x the p99 without.

Prints its progress on stderr, then a table and, as the last line, the results as
one JSON object on stdout. Exit status: 0 when measured (goals met or not), 1 when
it could not measure (castellan did not start, did not apply a reload within 2 s,
died), 2 for a wrong command line.

The client loop and the Python echo servers run as child processes of this
script (this file, with the internal roles `_client` and `_echo`), so that they
do not share an interpreter lock with the status polling. Every child is ended
on every way out: normal end, error, SIGINT/SIGTERM, the overall time limit
(85 s) and, through PR_SET_PDEATHSIG, the death of this script.

usage: bench/reload_bench.py [--castellan BIN] [--echo-server BIN] [--threads N]
                             [--proxy-cpu N --load-cpu N | --no-pin]
                             [--reloads N] [--baseline-s S] [--json-out FILE] [--keep-work]

Python 3 standard library only.
"""

import argparse
import ctypes
import datetime
import http.client
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
SERVICES = 100
SERVERS = 10
CLIENT_SERVICES = (0, 33, 66, 99)  # the services the client loop connects to
RELOAD_SPACING_S = 0.25  # between two reloads during the connect-latency phase
GENERATION_TIMEOUT_S = 2.0  # a reload not visible in status by then is a failure
POLL_INTERVAL_S = 0.002
PAUSE_BETWEEN_RELOADS_S = 0.1  # in (a): let the previous reload settle
CONNECTION_TIMEOUT_S = 2.0  # one client connection, connect to echo; beyond it: failed
READY_TIMEOUT_S = 15.0  # castellan's start with 1000 real servers
TIME_LIMIT_S = 85  # the whole run; the issue asks for under 90 s
RELOAD_GOAL_MS = 50.0
P99_RATIO_GOAL = 2.0
REPO = Path(__file__).resolve().parents[1]


class BenchError(Exception):
    """A measurement that could not be made; the message says why."""


def say(message):
    print(f"reload_bench: {message}", file=sys.stderr, flush=True)


def percentile(values, fraction):
    """Nearest-rank percentile of values (not empty): the smallest value with at
    least fraction of all values at or below it."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil without float surprises
    return ordered[int(rank) - 1]


# ---------------------------------------------------------------------------
# Child processes


def _set_parent_death_signal():
    """In a child, before exec: receive SIGKILL when the parent dies, so that no
    child outlives a killed benchmark."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def child_setup(cpu):
    """preexec_fn for children: parent-death signal, and the CPU it runs on
    (None: the one inherited)."""

    def setup():
        _set_parent_death_signal()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


class Children:
    """The processes this script started; stop_all() ends every one of them."""

    def __init__(self):
        self.processes = []

    def start(self, argv, cpu=None, **kwargs):
        process = subprocess.Popen(argv, preexec_fn=child_setup(cpu), **kwargs)
        self.processes.append(process)
        return process

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 3.0
        for process in self.processes:
            try:
                process.wait(timeout=max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def reserve_ports(count):
    """count distinct free TCP ports on HOST below the ephemeral range, from a
    random start (22000 and up: bench/run.sh's other cases use 21000-21099).

    Not port 0: a port from the ephemeral range, free a moment ago, may be taken
    as the local port of some other program's outgoing connection before castellan
    binds it (seen on a busy machine). The ports are held open together while
    they are chosen, then released for the servers to bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as file:
            ephemeral_low = int(file.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low, high = 22000, ephemeral_low
    if high - low < 4 * count:
        raise BenchError(f"too few ports below the ephemeral range ({low}-{high})")
    port = low + int.from_bytes(os.urandom(2), "big") % (high - low - 2 * count)
    sockets = []
    try:
        while len(sockets) < count and port < high:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((HOST, port))
                sockets.append(s)
            except OSError:
                s.close()
            port += 1
        if len(sockets) < count:
            raise BenchError(f"found only {len(sockets)} free ports of {count} between {low} and {high}")
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_accepting(port, process, what, timeout=10.0):
    """Waits until something accepts on HOST:port; fails if process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited at start (status {process.returncode})")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise BenchError(f"{what} does not accept on port {port} after {timeout:.0f} s")


# ---------------------------------------------------------------------------
# Internal role `_echo HOST PORT`: a threaded echo server, used when no compiled
# bench/echo_server is given.


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(30.0)
        try:
            while True:
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(data)
        except OSError:
            return


class _EchoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


def echo_main(argv):
    if len(argv) != 2:
        print("usage: reload_bench.py _echo HOST PORT", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with _EchoServer((argv[0], int(argv[1])), _EchoHandler) as server:
        server.serve_forever(poll_interval=0.5)
    return 0


# ---------------------------------------------------------------------------
# Internal role `_client PORT,PORT,... MAX_SECONDS`: the short-connection loop.
# Prints "ready" after its first good connection, runs until its stdin closes (or
# MAX_SECONDS pass), then prints one JSON object:
#   {"ok": [[start, seconds], ...], "failed": [[start, "reason"], ...]}
# with start in time.monotonic() seconds (CLOCK_MONOTONIC: the same clock as the
# parent's, which sorts connections into phases by it).


def one_connection(port, line):
    """Connect, send line, read its echo, close. Returns the seconds from before
    connect to the whole echo received; raises OSError or ValueError."""
    start = time.monotonic()
    with socket.create_connection((HOST, port), timeout=CONNECTION_TIMEOUT_S) as s:
        s.sendall(line)
        received = b""
        while not received.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                raise ValueError("closed before the whole echo" if received else "closed without an answer")
            received += chunk
            if len(received) > len(line):
                raise ValueError("answer longer than the line sent")
        elapsed = time.monotonic() - start
    if received != line:
        raise ValueError("the echo differs from the line sent")
    return elapsed


def client_main(argv):
    if len(argv) != 2:
        print("usage: reload_bench.py _client PORT,PORT,... MAX_SECONDS", file=sys.stderr)
        return 2
    ports = [int(p) for p in argv[0].split(",")]
    end = time.monotonic() + float(argv[1])
    stop = threading.Event()

    def watch_stdin():
        sys.stdin.buffer.read()  # returns at EOF: the parent closed our stdin
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    good, failed = [], []
    ready = False
    number = 0
    while not stop.is_set() and time.monotonic() < end:
        port = ports[number % len(ports)]
        line = b"castellan reload bench %d\n" % number
        number += 1
        start = time.monotonic()
        try:
            good.append((start, one_connection(port, line)))
        except (OSError, ValueError) as error:
            failed.append((start, f"port {port}: {type(error).__name__}: {error}"))
            time.sleep(0.001)  # a refusing proxy must not turn this into a busy loop
            continue
        if not ready:
            print("ready", flush=True)
            ready = True
    json.dump({"ok": good, "failed": failed}, sys.stdout)
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------
# The config


def make_config(variant, threads, admin_port, service_ports, echo_ports):
    """The config of one variant: "base" (rs0..rs9, weight 1), "weight" (rs0 has
    weight 2) or "fewer" (rs9 left out). weighted_round_robin, so that the weight
    is not a change on paper only."""
    services = []
    for index, port in enumerate(service_ports):
        servers = []
        for number, echo_port in enumerate(echo_ports):
            if variant == "fewer" and number == len(echo_ports) - 1:
                continue
            server = {"name": f"rs{number}", "address": f"{HOST}:{echo_port}"}
            if variant == "weight" and number == 0:
                server["weight"] = 2
            servers.append(server)
        services.append({
            "name": f"vs{index:03d}",
            "listen": f"{HOST}:{port}",
            "mode": "tcp",
            "scheduler": "weighted_round_robin",
            "real_servers": servers,
            # no health_check key: the default tcp check, as the issue asks
        })
    return {
        "threads": threads,
        "shutdown_grace_s": 1,
        "admin": {"listen": f"{HOST}:{admin_port}"},
        "virtual_services": services,
    }


# The variants in the order reloads apply them; each differs from the one before.
VARIANT_CYCLE = ("weight", "base", "fewer", "base")


def variant_of_reload(number):
    """The variant that reload number (1, 2, ...) applies; the start is "base"."""
    return VARIANT_CYCLE[(number - 1) % len(VARIANT_CYCLE)]


def variant_matches(status, variant):
    """Whether the first service in a parsed status shows the variant's servers."""
    servers = {s.get("name"): s for s in status["virtual_services"][0]["real_servers"]}
    expected = SERVERS - 1 if variant == "fewer" else SERVERS
    weight = servers.get("rs0", {}).get("weight")
    return len(servers) == expected and weight == (2 if variant == "weight" else 1)


# ---------------------------------------------------------------------------
# The admin API


GENERATION = re.compile(rb'"generation"\s*:\s*(\d+)')


class Admin:
    """GET on castellan's admin listener over one kept-alive connection."""

    def __init__(self, port):
        self.port = port
        self.connection = None

    def get(self, path):
        for attempt in (1, 2):  # a connection the server closed is opened again once
            if self.connection is None:
                self.connection = http.client.HTTPConnection(HOST, self.port, timeout=2.0)
            try:
                self.connection.request("GET", path)
                response = self.connection.getresponse()
                body = response.read()
                if response.will_close:
                    self.close()
                if response.status != 200:
                    raise BenchError(f"GET {path} answered HTTP {response.status}: {body[:200]!r}")
                return body
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def status(self):
        return json.loads(self.get("/api/v1/status"))

    def generation(self):
        """config.generation, read with a regular expression: a full parse of the
        status of 1000 real servers would take longer than the poll interval.
        The first "generation" key is config.generation (checked at start)."""
        match = GENERATION.search(self.get("/api/v1/status"))
        if not match:
            raise BenchError("no \"generation\" in /api/v1/status")
        return int(match.group(1))

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# ---------------------------------------------------------------------------
# The benchmark


class ReloadBench:
    """One run: the echo servers, castellan, and the two measurements. Holds every
    child process in self.children, which the caller stops on every way out.
    Single-threaded: the client loop runs in its own process."""

    def __init__(self, options, work):
        self.options = options
        self.work = work
        self.children = Children()
        self.config_file = work / "castellan.json"
        self.log_file = work / "castellan.log"
        self.castellan = None
        self.admin = None
        ports = reserve_ports(1 + SERVICES + SERVERS)
        self.admin_port = ports[0]
        self.service_ports = ports[1:1 + SERVICES]
        self.echo_ports = ports[1 + SERVICES:]
        self.client_ports = [self.service_ports[i] for i in CLIENT_SERVICES]
        self.variant = "base"

    # -- set-up --------------------------------------------------------------

    def write_config(self, variant):
        """Writes the config of variant, atomically (castellan never reads half)."""
        config = make_config(variant, self.options.threads, self.admin_port, self.service_ports, self.echo_ports)
        staging = self.config_file.with_suffix(".tmp")
        staging.write_text(json.dumps(config, indent=1))
        os.replace(staging, self.config_file)
        self.variant = variant

    def start_echo_servers(self):
        for number, port in enumerate(self.echo_ports):
            if self.options.echo_server:
                argv = [self.options.echo_server, HOST, str(port)]
            else:
                argv = [sys.executable, str(Path(__file__).resolve()), "_echo", HOST, str(port)]
            process = self.children.start(argv, cpu=self.options.load_cpu, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_accepting(port, process, f"echo server rs{number}")

    def start_castellan(self):
        self.write_config("base")
        with open(self.log_file, "wb") as log:
            self.castellan = self.children.start(
                [self.options.castellan, "--config", str(self.config_file)], cpu=self.options.proxy_cpu,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.work))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while b"event=ready" not in self.log_file.read_bytes():
            if self.castellan.poll() is not None:
                raise BenchError(f"castellan exited at start (status {self.castellan.returncode})")
            if time.monotonic() > deadline:
                raise BenchError(f"castellan did not log event=ready within {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        self.admin = Admin(self.admin_port)
        wait_accepting(self.admin_port, self.castellan, "castellan's admin listener")
        body = self.admin.get("/api/v1/status")
        status = json.loads(body)
        generation = status.get("config", {}).get("generation")
        match = GENERATION.search(body)
        if not isinstance(generation, int) or not match or int(match.group(1)) != generation:
            raise BenchError("config.generation in /api/v1/status is missing, or not the first "
                             "\"generation\" key (this script reads it with a regular expression)")
        if len(status.get("virtual_services", [])) != SERVICES:
            raise BenchError(f"status shows {len(status.get('virtual_services', []))} services, not {SERVICES}")

    def check_every_service(self):
        """One echo through each of the services: every listener and the servers work."""
        for index, port in enumerate(self.service_ports):
            try:
                one_connection(port, b"castellan reload bench: hello\n")
            except (OSError, ValueError) as error:
                raise BenchError(f"service vs{index:03d} (port {port}) does not echo: {error}") from None

    def ensure_running(self):
        if self.castellan.poll() is not None:
            raise BenchError(f"castellan died (status {self.castellan.returncode})")

    def log_tail(self, lines=15):
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- (a) reload latency ---------------------------------------------------

    def reload_and_wait(self, number, generation):
        """Writes the next variant, sends SIGHUP, polls status until the generation
        grows. Returns (seconds, wall-clock time of the SIGHUP, polls)."""
        self.write_config(variant_of_reload(number))
        wall = time.time()
        start = time.monotonic()
        os.kill(self.castellan.pid, signal.SIGHUP)
        polls = 0
        while True:
            before = time.monotonic()
            seen = self.admin.generation()
            polls += 1
            now = time.monotonic()
            if seen > generation:
                return now - start, wall, polls
            if now - start > GENERATION_TIMEOUT_S:
                self.ensure_running()
                raise BenchError(f"reload {number}: generation did not change within "
                                 f"{GENERATION_TIMEOUT_S:.0f} s (still {seen}; does this castellan reload on SIGHUP?)")
            rest = POLL_INTERVAL_S - (time.monotonic() - before)
            if rest > 0:
                time.sleep(rest)

    def check_reload(self, number, expected_generation):
        """After reload number: status shows that generation, an ok last reload and
        the variant's servers."""
        status = self.admin.status()
        config = status.get("config", {})
        if config.get("generation") != expected_generation:
            raise BenchError(f"reload {number}: generation {config.get('generation')}, "
                             f"expected {expected_generation} (were two reloads applied?)")
        last = config.get("last_reload") or {}
        if last.get("ok") is not True:
            raise BenchError(f"reload {number}: last_reload is {last!r}")
        if not variant_matches(status, self.variant):
            raise BenchError(f"reload {number}: status does not show the {self.variant!r} config")

    def measure_reload_latency(self):
        say(f"(a) {self.options.reloads} reloads, SIGHUP to the new generation in /api/v1/status")
        generation = self.admin.generation()
        first_generation = generation
        seconds, walls, polls = [], {}, []
        for number in range(1, self.options.reloads + 1):
            elapsed, wall, count = self.reload_and_wait(number, generation)
            generation += 1
            self.check_reload(number, generation)
            seconds.append(elapsed)
            walls[generation] = wall
            polls.append(count)
            say(f"    reload {number:2}/{self.options.reloads} ({self.variant:6}): {elapsed * 1000:6.1f} ms, {count} polls")
            time.sleep(PAUSE_BETWEEN_RELOADS_S)
        poll_seconds = self.poll_round_trip()
        log_ms = self.log_latencies(walls)
        values_ms = [s * 1000 for s in seconds]
        result = {
            "reloads": len(values_ms),
            "generations": [first_generation + 1, generation],
            "median_ms": round(percentile(values_ms, 0.5), 2),
            "p90_ms": round(percentile(values_ms, 0.9), 2),
            "max_ms": round(max(values_ms), 2),
            "under_goal": sum(1 for v in values_ms if v < RELOAD_GOAL_MS),
            "poll_round_trip_ms": round(poll_seconds * 1000, 2),
            "all_ms": [round(v, 2) for v in values_ms],
        }
        if log_ms:
            result["log_line"] = {
                "reloads": len(log_ms),
                "median_ms": round(percentile(log_ms, 0.5), 1),
                "p90_ms": round(percentile(log_ms, 0.9), 1),
                "max_ms": round(max(log_ms), 1),
            }
        return result

    def poll_round_trip(self):
        """Median time of one status GET (the resolution of the polled figure)."""
        times = []
        for _ in range(20):
            start = time.monotonic()
            self.admin.generation()
            times.append(time.monotonic() - start)
        return percentile(times, 0.5)

    def log_latencies(self, walls):
        """Milliseconds from each SIGHUP to the ts of its `event=reload ... ok=true`
        line (ms resolution). Empty when the lines cannot be found."""
        pattern = re.compile(r"^ts=(\S+) .*event=reload .*generation=(\d+) .*ok=true")
        found = []
        for line in self.log_file.read_text(errors="replace").splitlines():
            match = pattern.search(line)
            if not match or int(match.group(2)) not in walls:
                continue
            try:
                at = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
            except ValueError:
                return []
            at = at.replace(tzinfo=datetime.timezone.utc).timestamp()
            found.append((at - walls[int(match.group(2))]) * 1000)
        return found if len(found) == len(walls) else []

    # -- (b) connect latency --------------------------------------------------

    def measure_connect_latency(self):
        baseline = self.options.baseline_s
        reloads = self.options.reloads
        say(f"(b) short connections to {len(self.client_ports)} services: {baseline:g} s without reloads, "
            f"then during {reloads} reloads {RELOAD_SPACING_S * 1000:.0f} ms apart")
        generation = self.admin.generation()
        max_seconds = baseline + reloads * RELOAD_SPACING_S + 15
        client = self.children.start(
            [sys.executable, str(Path(__file__).resolve()), "_client",
             ",".join(str(p) for p in self.client_ports), str(max_seconds)],
            cpu=self.options.load_cpu, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready, _, _ = select.select([client.stdout], [], [], 5.0)
        if not ready or client.stdout.readline().strip() != b"ready":
            raise BenchError("the client loop made no good connection within 5 s")
        time.sleep(0.5)  # warm-up, not counted
        phase_without = time.monotonic()
        time.sleep(baseline)
        phase_during = time.monotonic()
        walls, sent = {}, []
        for number in range(reloads):
            pause = phase_during + number * RELOAD_SPACING_S - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            # the cycle continues from where (a) left it, so each reload is a change
            self.write_config(variant_of_reload(self.options.reloads + number + 1))
            walls[generation + number + 1] = time.time()
            sent.append(time.monotonic())
            os.kill(self.castellan.pid, signal.SIGHUP)
        phase_end = phase_during + reloads * RELOAD_SPACING_S
        pause = phase_end - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        try:  # communicate() closes the client's stdin: its signal to stop
            output, _ = client.communicate(timeout=CONNECTION_TIMEOUT_S + 5)
        except subprocess.TimeoutExpired:
            raise BenchError("the client loop did not stop") from None
        self.ensure_running()
        records = json.loads(output)

        # Every reload must have been applied: else this measured fewer reloads.
        deadline = time.monotonic() + GENERATION_TIMEOUT_S
        applied = self.admin.generation() - generation
        while applied < reloads and time.monotonic() < deadline:
            time.sleep(0.01)
            applied = self.admin.generation() - generation
        # Signals do not queue: a SIGHUP that comes while one is still pending is
        # merged into it. That would be worth knowing, not a failed measurement.
        last = (self.admin.status().get("config", {}).get("last_reload") or {})
        if applied == 0 or last.get("ok") is not True:
            raise BenchError(f"during the connections {applied} of {reloads} reloads were applied "
                             f"(last_reload {last!r})")
        if applied != reloads:
            say(f"warning: {applied} of {reloads} reloads were applied during the connections "
                f"(SIGHUPs merged while one was pending?)")

        def phase(start, end):
            latencies = [s * 1000 for t, s in records["ok"] if start <= t < end]
            failures = [reason for t, reason in records["failed"] if start <= t < end]
            if not latencies:
                raise BenchError("no connection succeeded in a phase")
            summary = {
                "count": len(latencies) + len(failures),
                "failed": len(failures),
                "p50_ms": round(percentile(latencies, 0.5), 3),
                "p99_ms": round(percentile(latencies, 0.99), 3),
                "max_ms": round(max(latencies), 3),
                "seconds": round(end - start, 2),
            }
            if failures:
                summary["first_failures"] = failures[:5]
            return summary

        without = phase(phase_without, phase_during)
        during = phase(phase_during, phase_end)
        # The slowest connections during reloads, with when they started after
        # the last SIGHUP before them: a stall caused by a reload shows as slow
        # connections a few ms after SIGHUPs.
        slowest = sorted(((s, t) for t, s in records["ok"] if phase_during <= t < phase_end), reverse=True)[:5]
        during["slowest"] = [
            {"ms": round(s * 1000, 1),
             "after_sighup_ms": round((t - max((x for x in sent if x <= t), default=phase_during)) * 1000, 1)}
            for s, t in slowest]
        result = {
            "services": len(self.client_ports),
            "reloads_applied": applied,
            "without_reloads": without,
            "during_reloads": during,
            "p99_ratio": round(during["p99_ms"] / without["p99_ms"], 2),
        }
        # These reloads ran with no status polling: their log lines show what
        # the polling in (a) costs. Merged signals would break the numbering.
        log_ms = self.log_latencies(walls) if applied == reloads else []
        if log_ms:
            result["reload_log_line"] = {
                "reloads": len(log_ms),
                "median_ms": round(percentile(log_ms, 0.5), 1),
                "p90_ms": round(percentile(log_ms, 0.9), 1),
                "max_ms": round(max(log_ms), 1),
            }
        return result


# ---------------------------------------------------------------------------
# Report


def report(options, reload_result, connect_result):
    r, c = reload_result, connect_result
    w, d = c["without_reloads"], c["during_reloads"]
    goals = {
        "reload_under_50ms": r["max_ms"] < RELOAD_GOAL_MS,
        "no_failed_connection": d["failed"] == 0 and w["failed"] == 0,
        "p99_ratio_at_most_2": c["p99_ratio"] <= P99_RATIO_GOAL,
    }
    yes = {True: "met", False: "NOT met"}
    print(f"reload case: {SERVICES} tcp virtual services x {SERVERS} real servers, "
          f"default tcp health check, castellan threads {options.threads}, "
          f"pinning {options.pinning}, echo servers: {options.echo_kind}")
    print()
    print(f"(a) SIGHUP to the new generation in /api/v1/status, {r['reloads']} reloads, polled every "
          f"{POLL_INTERVAL_S * 1000:.0f} ms or back to back (one poll takes {r['poll_round_trip_ms']:.1f} ms;")
    print("    the figure includes up to one poll, and the polling competes with the reload for castellan's CPU):")
    print(f"    median {r['median_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, max {r['max_ms']:.1f} ms; "
          f"{r['under_goal']}/{r['reloads']} under {RELOAD_GOAL_MS:.0f} ms (goal: all): {yes[goals['reload_under_50ms']]}")
    if "log_line" in r:
        log = r["log_line"]
        print(f"    SIGHUP to the event=reload log line, same reloads: median {log['median_ms']:.0f} ms, "
              f"p90 {log['p90_ms']:.0f} ms, max {log['max_ms']:.0f} ms (ms resolution)")
    print()
    print(f"(b) short connections (connect, one line echoed, close), one client loop over {c['services']} services:")
    rows = [("", "seconds", "count", "failed", "p50 ms", "p99 ms", "max ms"),
            ("without reloads", f"{w['seconds']:.1f}", str(w["count"]), str(w["failed"]),
             f"{w['p50_ms']:.3f}", f"{w['p99_ms']:.3f}", f"{w['max_ms']:.3f}"),
            (f"during {c['reloads_applied']} reloads", f"{d['seconds']:.1f}", str(d["count"]), str(d["failed"]),
             f"{d['p50_ms']:.3f}", f"{d['p99_ms']:.3f}", f"{d['max_ms']:.3f}")]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("    " + "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                                 for i, cell in enumerate(row)))
    print(f"    p99 during / without: {c['p99_ratio']:.2f}x (goal <= {P99_RATIO_GOAL:g}x): "
          f"{yes[goals['p99_ratio_at_most_2']]}; failed connections (goal 0): {yes[goals['no_failed_connection']]}")
    print("    slowest during reloads (ms, started ms after the last SIGHUP): "
          + ", ".join(f"{x['ms']:.1f} (+{x['after_sighup_ms']:.0f})" for x in d["slowest"]))
    if "reload_log_line" in c:
        log = c["reload_log_line"]
        print(f"    these reloads (no status polling), SIGHUP to the event=reload log line: median "
              f"{log['median_ms']:.0f} ms, p90 {log['p90_ms']:.0f} ms, max {log['max_ms']:.0f} ms")
    for label, part in (("without", w), ("during", d)):
        for reason in part.get("first_failures", []):
            print(f"    failed {label}: {reason}")
    print()
    result = {
        "case": "reload",
        "services": SERVICES,
        "real_servers_per_service": SERVERS,
        "threads": options.threads,
        "pinning": options.pinning,
        "echo_servers": options.echo_kind,
        "reload": r,
        "connect": c,
        "goals_met": goals,
    }
    line = json.dumps(result, separators=(",", ":"))
    if options.json_out:
        Path(options.json_out).write_text(line + "\n")
    print(line, flush=True)


# ---------------------------------------------------------------------------
# Main


class Interrupted(Exception):
    pass


def parse_options(argv):
    parser = argparse.ArgumentParser(
        prog="reload_bench.py", description="castellan's reload benchmark (see the top of this file).")
    parser.add_argument("--castellan", default=os.environ.get("CASTELLAN_BIN") or str(REPO / "build" / "castellan"),
                        help="the binary [$CASTELLAN_BIN, else build/castellan]")
    parser.add_argument("--echo-server", help="a compiled bench/echo_server [default: a Python echo server]")
    parser.add_argument("--threads", type=int, default=1, help="castellan's worker threads [1]")
    parser.add_argument("--proxy-cpu", type=int, help="CPU for castellan [0 when 2 CPUs or more]")
    parser.add_argument("--load-cpu", type=int, help="CPU for this script, the client and the echo servers [1]")
    parser.add_argument("--no-pin", action="store_true", help="pin nothing")
    parser.add_argument("--reloads", type=int, default=20, help="reloads in each part [20]")
    parser.add_argument("--baseline-s", type=float, default=5.0, help="seconds of connections without reloads [5]")
    parser.add_argument("--json-out", help="also write the JSON result to this file")
    parser.add_argument("--keep-work", action="store_true", help="keep the work folder (config, castellan's log)")
    options = parser.parse_args(argv)
    if not 1 <= options.reloads <= 40:
        parser.error("--reloads must be 1-40 (the run must stay under 90 s)")
    if not 1.0 <= options.baseline_s <= 15.0:
        parser.error("--baseline-s must be 1-15")
    if options.threads < 1:
        parser.error("--threads must be at least 1")
    allowed = os.sched_getaffinity(0)
    if options.no_pin or len(allowed) < 2:
        options.proxy_cpu = options.load_cpu = None
    else:
        ordered = sorted(allowed)
        if options.proxy_cpu is None:
            options.proxy_cpu = ordered[0]
        if options.load_cpu is None:
            options.load_cpu = ordered[1] if ordered[1] != options.proxy_cpu else ordered[0]
        if options.proxy_cpu not in allowed or options.load_cpu not in allowed:
            parser.error(f"--proxy-cpu/--load-cpu must be among the usable CPUs {ordered}")
    options.pinning = ("none" if options.proxy_cpu is None
                       else f"castellan on CPU {options.proxy_cpu}, client and servers on CPU {options.load_cpu}")
    if options.echo_server and not os.access(options.echo_server, os.X_OK):
        parser.error(f"--echo-server {options.echo_server}: not an executable file")
    options.echo_kind = "bench/echo_server (C, epoll)" if options.echo_server else "Python, threaded"
    return options


def main(argv):
    if argv and argv[0] == "_echo":
        return echo_main(argv[1:])
    if argv and argv[0] == "_client":
        return client_main(argv[1:])
    options = parse_options(argv)
    if not os.access(options.castellan, os.X_OK):
        say(f"castellan binary not found at {options.castellan} (build it, or set CASTELLAN_BIN / --castellan)")
        return 1

    # Descriptors: castellan holds 100 listeners and up to 1000 health-check
    # sockets at once, the client a few; far under the 20000 cap, but a soft limit
    # of 1024 would be too tight: children inherit the raised one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4096:
        wanted = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        if wanted < 2048:
            say(f"the file limit is {wanted}; 2048 are needed")
            return 1

    def on_signal(number, _frame):
        raise Interrupted(signal.Signals(number).name)

    def on_alarm(_number, _frame):
        raise BenchError(f"the run took longer than {TIME_LIMIT_S} s")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    if options.load_cpu is not None:
        os.sched_setaffinity(0, {options.load_cpu})

    work = Path(tempfile.mkdtemp(prefix="castellan-reload-bench."))
    bench = None
    status = 1
    signal.alarm(TIME_LIMIT_S)
    try:
        bench = ReloadBench(options, work)
        say(f"starting {SERVICES} services x {SERVERS} real servers ({options.echo_kind} echo servers), "
            f"castellan {options.castellan}, pinning: {options.pinning}")
        bench.start_echo_servers()
        bench.start_castellan()
        bench.check_every_service()
        reload_result = bench.measure_reload_latency()
        connect_result = bench.measure_connect_latency()
        bench.ensure_running()
        signal.alarm(0)
        report(options, reload_result, connect_result)
        status = 0
    except BenchError as error:
        signal.alarm(0)
        say(f"FAILED: {error}")
        if bench is not None and bench.castellan is not None:
            tail = bench.log_tail()
            if tail:
                say(f"castellan's log, last lines ({bench.log_file}):\n{tail}")
    except Interrupted as error:
        signal.alarm(0)
        say(f"interrupted ({error})")
        status = 130
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # no second interruption mid clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if bench is not None:
            if bench.admin is not None:
                bench.admin.close()
            bench.children.stop_all()
        if options.keep_work or (status == 1 and bench is not None and bench.castellan is not None):
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
