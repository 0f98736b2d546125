#!/usr/bin/env python3
"""castellan's capacity benchmark: what many idle connections cost a proxy,
castellan (tcp mode) against HAProxy (mode tcp), in one run, on 127.0.0.0/8 only.

What it measures. Each proxy holds N concurrent connections (by default
N = 1,000, then 4,000, then 8,000: --steps) that have each carried 1 MiB once
each way (so that both directions spliced, through pipes, as bulk transfers
do) and then idle, as the connections of an Outlook or ActiveSync population
mostly do. For each N, per proxy:
  - memory per connection: VmRSS growth over the proxy's baseline, / N;
  - descriptors per connection: growth of its /proc/PID/fd count, / N
    (two sockets is the floor: a pipe kept by an idle connection shows here);
  - CPU while idle: the proxy's CPU time (all its threads, from schedstat, in
    ns) over an --idle-s window (10 s) in which nothing moves;
  - the 99th percentile (and median) time of a new short connection made while
    the N are held: connect, 64 bytes echoed, close, by bench/connrate, one at
    a time for --probe-s seconds (2: a few thousand connections);
and the same at N = 0 (the baseline: idle CPU and short-connection times with
nothing held). It prints a table with the castellan/HAProxy ratio of each
figure per N, and says for each proxy and figure whether it stays flat as N
grows (the per-connection figures at the largest N against the smallest; the
idle CPU and the p99 against N = 0).

How. Four echo servers (bench/echo_server, C, epoll) on 127.250.0.1,
127.251.0.1, 127.252.0.1 and 127.253.0.1; the client (this file, role
`_hold`) binds every connection to its own source address, spread over
127.0.0.0/8 (127.a.b.c with a in 1..200), so that no address's ports run out
and the proxies see a population of clients. Each proxy is started afresh and
warmed up (64 connections carrying 1 MiB at once, then a short-connection
probe, so that its buffers, pipe pool and first allocations exist before the
baseline), its baseline is read, and then the connections are added step by
step in the same process: each step's figures are growth over that baseline
divided by the N held. Each client process opens 64 connections at a time,
moves 1 MiB through each both ways (checking every byte of the echo), keeps
them open and moves to the next 64; it holds at most its file limit's worth,
so larger N start more client processes. After the last step the clients close,
the proxy is stopped and the next one starts with the same echo servers.

Why fair. Same threads (castellan "threads", HAProxy nbthread), both pinned to
the same CPU (--proxy-cpu), the client and the servers on the other
(--load-cpu). Neither logs connections (castellan "access_log": "off";
HAProxy has no log line). Both round robin over the same four servers with no
health check, timeouts of 2 h (castellan's idle_s default, HAProxy timeout
client/server), and splice both ways (castellan splices a bulk direction by
itself; HAProxy option splice-request and splice-response). Both see the same
clients, in the same order, the same bytes. HAProxy's maxconn is the largest N
plus the probe's and warm-up's connections; its maxpipes is set to 256 (four
times what the 64 transfers at once can use): its default (maxconn / 4 pipes)
would make it reserve more descriptors than the 20,000 this machine allows
and refuse to start, and a pool larger than the pipes in use changes nothing.
castellan keeps at most 64 spare pipes per thread. The rounds (--rounds)
alternate which proxy goes first. What neither figure counts: kernel memory
(socket buffers, pipe pages) is outside VmRSS for both.

Limits. A proxy needs two descriptors per connection: with a file limit of
20,000 castellan holds about 9,200 (its `session_capacity` log line), HAProxy
as many. Steps beyond what the limit allows are left out with a warning.
Memory and descriptors come out the same run after run; the idle CPU and the
short-connection times are small figures that other work on the machine moves
(run --rounds 3 for medians and spreads). About 2.5 minutes with the defaults
on a 2-CPU machine, 80 s per proxy per round.

Prints its progress on stderr, then the table and, as the last line, the
results as one JSON object on stdout. Exit status: 0 when measured, 1 when it
could not measure (a proxy did not start or died, a connection failed), 2 for a
wrong command line. Every child is ended on every way out (and through
PR_SET_PDEATHSIG when this script dies).

usage: bench/capacity_bench.py [--castellan BIN] [--haproxy BIN] [--echo-server BIN]
                               [--connrate BIN] [--threads N] [--steps N,N,...]
                               [--proxy-cpu N --load-cpu N | --no-pin] [--rounds N]
                               [--idle-s S] [--probe-s S] [--targets castellan,haproxy]
                               [--json-out FILE] [--keep-work]

Python 3 standard library only; bench/run.sh capacity compiles the helpers
and runs it.
"""

import argparse
import ctypes
import json
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
SERVER_ADDRESSES = ("127.250.0.1", "127.251.0.1", "127.252.0.1", "127.253.0.1")
DEFAULT_STEPS = (1000, 4000, 8000)
CARRY_BYTES = 1 << 20  # what each held connection carries once, each way
PARALLEL = 64  # connections carrying their MiB at the same time
WARM_UP = PARALLEL  # connections of the warm-up
PROBE_CONCURRENCY = 1  # short connections in flight during the probe
PROBE_BYTES = 64
HAPROXY_MAXPIPES = 4 * PARALLEL
CLIENT_RESERVE = 256  # descriptors a client process keeps for itself
TRANSFER_TIMEOUT_S = 60.0  # one batch of PARALLEL connections, connect to last byte
CONNECT_TIMEOUT_S = 10.0
SETTLE_S = 1.0  # after a step's last transfer, before its figures
READY_TIMEOUT_S = 10.0
REPO = Path(__file__).resolve().parents[1]


class BenchError(Exception):
    """A measurement that could not be made; the message says why."""


STARTED = time.monotonic()


def say(message):
    print(f"capacity_bench [{time.monotonic() - STARTED:5.0f} s]: {message}", file=sys.stderr, flush=True)


def source_address(index):
    """The source address of held connection number index: spread over
    127.0.0.0/8, never 127.0.0.x nor a server's (distinct for the first
    200 * 256 * 254 indexes)."""
    return f"127.{1 + index % 200}.{(index // 200) % 256}.{1 + (index // (200 * 256)) % 254}"


def carry_pattern():
    """The 1 MiB every held connection sends and must get back: fixed
    pseudo-random bytes (a byte out of place shows)."""
    return random.Random(0xCA5E11A).randbytes(CARRY_BYTES)


# ---------------------------------------------------------------------------
# Child processes


def _set_parent_death_signal():
    """In a child, before exec: SIGKILL when the parent dies, so that no child
    outlives a killed benchmark."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def child_setup(cpu):
    def setup():
        _set_parent_death_signal()
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


class Children:
    """The processes this script started; stop() ends some, stop_all() every one."""

    def __init__(self):
        self.processes = []

    def start(self, argv, cpu=None, **kwargs):
        process = subprocess.Popen(argv, preexec_fn=child_setup(cpu), **kwargs)
        self.processes.append(process)
        return process

    def stop(self, processes, timeout=10.0):
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(timeout=max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        self.processes = [p for p in self.processes if p not in processes]

    def stop_all(self):
        self.stop(list(self.processes), timeout=3.0)


def reserve_ports(address, count, avoid=()):
    """count distinct TCP ports free on address, below the ephemeral range, from
    a random start at 23000 or above (bench/run.sh's other cases use 21000-21199,
    reload_bench 22000 and up from a random start too; a clash is caught when
    the servers bind). Not port 0: see reload_bench.reserve_ports."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as file:
            ephemeral_low = int(file.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low, high = 23000, ephemeral_low
    port = low + int.from_bytes(os.urandom(2), "big") % (high - low - 4 * count)
    found = []
    while len(found) < count and port < high:
        if port not in avoid:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((address, port))
                    found.append(port)
                except OSError:
                    pass
        port += 1
    if len(found) < count:
        raise BenchError(f"found only {len(found)} free ports of {count} on {address}")
    return found


def wait_accepting(address, port, process, what, timeout=READY_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited at start (status {process.returncode})")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise BenchError(f"{what} does not accept on {address}:{port} after {timeout:.0f} s")


# ---------------------------------------------------------------------------
# Internal role `_hold PORT FIRST COUNT`: opens COUNT connections to
# 127.0.0.1:PORT from source_address(FIRST) on, PARALLEL at a time; through each
# sends CARRY_BYTES and reads their echo, byte for byte; keeps them open. Then
# prints "ready COUNT SECONDS" and holds them until its stdin closes (or
# SIGTERM); then closes them all. On a failure prints "error ..." and exits 1.


def _carry_batch(batch, pattern, deadline):
    """Moves pattern through every socket of batch (sockets, non-blocking) both
    ways; raises OSError or ValueError."""
    view = memoryview(pattern)
    scratch = bytearray(256 * 1024)
    scratch_view = memoryview(scratch)
    selector = selectors.DefaultSelector()
    state = {}
    for sock in batch:
        state[sock] = [0, 0]  # sent, received
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    try:
        while state:
            if time.monotonic() > deadline:
                raise ValueError(f"{len(state)} connections of a batch still carrying after "
                                 f"{TRANSFER_TIMEOUT_S:.0f} s")
            for key, events in selector.select(timeout=1.0):
                sock = key.fileobj
                progress = state[sock]
                if events & selectors.EVENT_WRITE and progress[0] < CARRY_BYTES:
                    try:
                        progress[0] += sock.send(view[progress[0]:progress[0] + 256 * 1024])
                    except BlockingIOError:
                        pass
                    if progress[0] == CARRY_BYTES:
                        selector.modify(sock, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    try:
                        got = sock.recv_into(scratch_view, min(len(scratch), CARRY_BYTES - progress[1]))
                    except BlockingIOError:
                        continue
                    if got == 0:
                        raise ValueError(f"closed after {progress[1]} of {CARRY_BYTES} bytes of the echo")
                    if scratch_view[:got] != view[progress[1]:progress[1] + got]:
                        raise ValueError(f"the echo differs from what was sent, at byte {progress[1]}")
                    progress[1] += got
                if progress[1] == CARRY_BYTES and progress[0] == CARRY_BYTES:
                    selector.unregister(sock)
                    del state[sock]
    finally:
        selector.close()


def hold_main(argv):
    if len(argv) != 3:
        print("usage: capacity_bench.py _hold PORT FIRST COUNT", file=sys.stderr)
        return 2
    port, first, count = (int(a) for a in argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    pattern = carry_pattern()
    held = []
    started = time.monotonic()
    try:
        for batch_first in range(first, first + count, PARALLEL):
            batch = []
            for index in range(batch_first, min(batch_first + PARALLEL, first + count)):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.settimeout(CONNECT_TIMEOUT_S)
                sock.bind((source_address(index), 0))
                sock.connect((HOST, port))
                sock.setblocking(False)
                batch.append(sock)
            _carry_batch(batch, pattern, time.monotonic() + TRANSFER_TIMEOUT_S)
            if stop:
                return 1
    except (OSError, ValueError) as error:
        print(f"error at connection {len(held)} of {count} (source {source_address(first + len(held) - 1)}): "
              f"{type(error).__name__}: {error}", flush=True)
        return 1
    print(f"ready {len(held)} {time.monotonic() - started:.2f}", flush=True)
    # Idle: nothing but a blocking read of stdin until the parent closes it.
    try:
        while not stop and sys.stdin.buffer.read(1):
            pass
    except (OSError, ValueError):
        pass
    for sock in held:
        sock.close()
    return 0


# ---------------------------------------------------------------------------
# /proc figures


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def descriptor_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_ns(pid):
    """CPU time of every thread of pid, in ns: the first field of each thread's
    schedstat (ns resolution; /proc/PID/stat's ticks are 10 ms, too coarse for
    an idle process); the ticks where schedstat is missing."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as file:
                total += int(file.read().split()[0])
        return total
    except (OSError, ValueError, IndexError):
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def established_to(ports):
    """Established TCP connections whose destination port is one of ports."""
    expression = " or ".join(f"dport = :{port}" for port in ports)
    result = subprocess.run(["ss", "-Htn", "state", "established", f"( {expression} )"],
                            capture_output=True, text=True, timeout=30, check=True)
    return sum(1 for line in result.stdout.splitlines() if line.strip())


def session_capacity(file_limit, open_now, workers):
    """castellan's own formula (proxy/system_limits.cpp): how many connections a
    file limit lets it hold. Used to leave out the steps it cannot reach."""
    spare = min(64, file_limit // 16 // max(workers, 1) // 2)
    reserved = open_now + 2 * spare * workers + 16 + file_limit // 16
    return 1 if file_limit <= reserved + 2 else (file_limit - reserved) // 2


# ---------------------------------------------------------------------------
# The benchmark


class CapacityBench:
    def __init__(self, options, work):
        self.options = options
        self.work = work
        self.children = Children()
        self.server_ports = []
        self.proxy = None
        self.proxy_name = None
        self.log_file = None

    # --- servers, proxies -------------------------------------------------------

    def start_echo_servers(self):
        used = set()
        for address in SERVER_ADDRESSES:
            (port,) = reserve_ports(address, 1, avoid=used)
            used.add(port)
            log = open(self.work / f"echo-{address}.log", "wb")
            process = self.children.start([self.options.echo_server, address, str(port)], cpu=self.options.load_cpu,
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            wait_accepting(address, port, process, f"echo server {address}:{port}")
            self.server_ports.append(port)

    def castellan_config(self, port):
        return {
            "threads": self.options.threads,
            "shutdown_grace_s": 0,
            "access_log": "off",
            "virtual_services": [{
                "name": "capacity",
                "listen": f"{HOST}:{port}",
                "mode": "tcp",
                "scheduler": "round_robin",
                "real_servers": [{"name": f"echo{number + 1}", "address": f"{address}:{server_port}"}
                                 for number, (address, server_port)
                                 in enumerate(zip(SERVER_ADDRESSES, self.server_ports))],
                "health_check": {"type": "none"},
            }],
        }

    def haproxy_config(self, port):
        servers = "\n".join(f"    server echo{number + 1} {address}:{server_port}"
                            for number, (address, server_port)
                            in enumerate(zip(SERVER_ADDRESSES, self.server_ports)))
        return f"""# Generated by castellan's bench/capacity_bench.py: HAProxy as in bench/run.sh
# (same thread count as castellan, kernel splicing both ways, no logging);
# maxpipes bounded so that its descriptor reservation fits the file limit.
global
    nbthread {self.options.threads}
    maxconn {self.options.haproxy_maxconn}
    maxpipes {HAPROXY_MAXPIPES}

defaults
    mode tcp
    option splice-request
    option splice-response
    timeout connect 3s
    timeout client 2h
    timeout server 2h

frontend capacity
    bind {HOST}:{port}
    default_backend capacity

backend capacity
    balance roundrobin
{servers}
"""

    def start_proxy(self, name):
        (port,) = reserve_ports(HOST, 1, avoid=set(self.server_ports))
        self.log_file = self.work / f"{name}.log"
        if name == "castellan":
            config = self.work / "castellan.json"
            config.write_text(json.dumps(self.castellan_config(port), indent=2))
            argv = [self.options.castellan, "--config", str(config)]
        else:
            config = self.work / "haproxy.cfg"
            config.write_text(self.haproxy_config(port))
            check = subprocess.run([self.options.haproxy, "-c", "-q", "-f", str(config)],
                                   capture_output=True, text=True, timeout=30)
            if check.returncode != 0:
                raise BenchError(f"haproxy rejects {config}: {check.stdout}{check.stderr}")
            argv = [self.options.haproxy, "-db", "-f", str(config)]
        log = open(self.log_file, "wb")
        env = dict(os.environ)
        env.pop("CASTELLAN_PUMP", None)  # castellan's own choice of pump, as in production
        self.proxy = self.children.start(argv, cpu=self.options.proxy_cpu, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        self.proxy_name = name
        self.port = port
        wait_accepting(HOST, port, self.proxy, name)

    def stop_proxy(self):
        if self.proxy is not None:
            self.children.stop([self.proxy])
        self.proxy = None

    def ensure_running(self):
        if self.proxy.poll() is not None:
            raise BenchError(f"{self.proxy_name} exited (status {self.proxy.returncode})")

    def log_tail(self, lines=15):
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AttributeError):
            return ""

    # --- clients ----------------------------------------------------------------

    def hold(self, first, count):
        """Starts client processes holding connections first..first+count-1
        (each at most its file limit's worth); waits until every one has carried
        its MiB. Returns (processes, seconds)."""
        per_process = self.options.per_client
        processes = []
        started = time.monotonic()
        for start in range(first, first + count, per_process):
            n = min(per_process, first + count - start)
            process = self.children.start(
                [sys.executable, str(Path(__file__).resolve()), "_hold", str(self.port), str(start), str(n)],
                cpu=self.options.load_cpu, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            processes.append(process)
            # Each batch has its own deadline; this bounds a client that hangs.
            limit = 30.0 + n / PARALLEL * TRANSFER_TIMEOUT_S
            line = self.read_line(process, limit)
            if not line.startswith("ready"):
                raise BenchError(f"{self.proxy_name}: client {start}..{start + n - 1}: "
                                 f"{line.strip() or 'exited without a word'}")
        return processes, time.monotonic() - started

    @staticmethod
    def read_line(process, timeout):
        ready = selectors.DefaultSelector()
        ready.register(process.stdout, selectors.EVENT_READ)
        try:
            if not ready.select(timeout):
                return f"no answer in {timeout:.0f} s"
        finally:
            ready.close()
        return process.stdout.readline()

    def release(self, processes):
        """Closes the clients' stdin (they close their connections and exit)."""
        for process in processes:
            try:
                process.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + 15.0
        for process in processes:
            try:
                process.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self.children.stop(processes)

    def wait_servers_idle(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while established_to(self.server_ports) > 0:
            if time.monotonic() > deadline:
                raise BenchError(f"{established_to(self.server_ports)} connections to the echo servers "
                                 f"still open {timeout:.0f} s after the clients closed")
            time.sleep(0.1)

    def probe(self):
        """Short connections, one at a time, for probe_s: (count, errors, p50 us, p99 us)."""
        argv = [self.options.connrate, HOST, str(self.port), str(self.options.probe_s),
                str(PROBE_CONCURRENCY), str(PROBE_BYTES)]
        process = self.children.start(argv, cpu=self.options.load_cpu, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
        try:
            output, _ = process.communicate(timeout=self.options.probe_s + 30)
        except subprocess.TimeoutExpired:
            self.children.stop([process])
            raise BenchError(f"{self.proxy_name}: connrate did not finish")
        self.children.processes.remove(process)
        match = re.search(r"connections=(\d+) .* errors=(\d+) p50_us=(\d+) p99_us=(\d+)", output)
        if not match:
            raise BenchError(f"{self.proxy_name}: connrate: {output.strip()}")
        return tuple(int(x) for x in match.groups())

    # --- one proxy, every step ----------------------------------------------------

    def measure(self, name):
        """Starts proxy name, warms it up, reads its baseline, then holds each
        step's N and reads its figures. Returns {N: figures}, N = 0 the baseline."""
        self.start_proxy(name)
        results = {}
        held = []
        finished = False
        try:
            warm, _ = self.hold(10_000_000, WARM_UP)  # indexes far from the held ones'
            self.release(warm)
            self.wait_servers_idle()
            self.probe()
            time.sleep(SETTLE_S)
            rss0, fds0 = vm_rss_kib(self.proxy.pid), descriptor_count(self.proxy.pid)
            results[0] = self.idle_and_probe(name, 0, {"rss_kib": rss0, "descriptors": fds0})
            count = 0
            for step in self.options.steps:
                processes, seconds = self.hold(count, step - count)
                held += processes
                count = step
                self.ensure_running()
                time.sleep(SETTLE_S)
                upstream = established_to(self.server_ports)
                if upstream != count:
                    raise BenchError(f"{name}: {upstream} connections to the servers, {count} expected")
                rss, fds = vm_rss_kib(self.proxy.pid), descriptor_count(self.proxy.pid)
                figures = {
                    "rss_kib": rss,
                    "descriptors": fds,
                    "bytes_per_connection": round((rss - rss0) * 1024 / count),
                    "descriptors_per_connection": round((fds - fds0) / count, 3),
                    "fill_s": round(seconds, 1),
                }
                results[step] = self.idle_and_probe(name, step, figures)
            self.ensure_running()
            finished = True
        finally:
            self.release(held)
            self.stop_proxy()
        if finished:
            self.wait_servers_idle()  # before the next proxy's baseline
        return results

    def idle_and_probe(self, name, count, figures):
        before = cpu_ns(self.proxy.pid)
        time.sleep(self.options.idle_s)
        figures["idle_cpu_ms"] = round((cpu_ns(self.proxy.pid) - before) / 1e6, 2)
        connections, errors, p50, p99 = self.probe()
        figures.update(probe_connections=connections, probe_errors=errors, p50_us=p50, p99_us=p99)
        if errors:
            say(f"warning: {name}: {errors} short connections failed with {count} held")
        per = (f", {figures['bytes_per_connection']} B and {figures['descriptors_per_connection']:.2f} "
               f"descriptors per connection (filled in {figures['fill_s']} s)" if count else "")
        say(f"{name}, {count} held: VmRSS {figures['rss_kib']} KiB, {figures['descriptors']} descriptors{per}; "
            f"idle CPU {figures['idle_cpu_ms']:.2f} ms in {self.options.idle_s:g} s; "
            f"{connections} short connections: p50 {p50} us, p99 {p99} us")
        return figures


# ---------------------------------------------------------------------------
# Report

FIGURES = (
    # key, label, unit, decimals, flat when within this fraction; judged against
    # the smallest N ("first") or against N = 0 ("zero")
    ("bytes_per_connection", "memory per connection (VmRSS growth / N)", "bytes", 0, 0.15, "first"),
    ("descriptors_per_connection", "descriptors per connection (fd growth / N)", "fds", 2, 0.05, "first"),
    ("idle_cpu_ms", "CPU while idle", "ms per window", 2, None, "zero"),
    ("p99_us", "new short connection, p99", "us", 0, 0.25, "zero"),
    ("p50_us", "new short connection, median", "us", 0, 0.25, "zero"),
)
# Idle CPU: "flat" unless it grows by more than this many ms per window and
# doubles (a few timer wake-ups are noise, not a cost per connection).
IDLE_CPU_FLOOR_MS = 5.0


def median_of(rounds, name, count, key):
    values = [r[name][count][key] for r in rounds if count in r.get(name, {})]
    return statistics.median(values) if values else None, values


def cell(value, values, decimals):
    if value is None:
        return "-"
    text = f"{value:.{decimals}f}"
    if len(values) > 1:
        text += f" ({min(values):.{decimals}f}-{max(values):.{decimals}f})"
    return text


def flatness(rounds, name, key, tolerance, against, steps, decimals):
    base_count = 0 if against == "zero" else steps[0]
    base, _ = median_of(rounds, name, base_count, key)
    last, _ = median_of(rounds, name, steps[-1], key)
    if base is None or last is None:
        return "-"
    change = f"{base:.{decimals}f} at {base_count} -> {last:.{decimals}f} at {steps[-1]}"
    if tolerance is None:
        grows = last - base > IDLE_CPU_FLOOR_MS and last > 2 * base
    else:
        grows = abs(last - base) > tolerance * max(abs(base), 1e-9)
    return f"{('GROWS' if last > base else 'falls') if grows else 'flat'} ({change})"


def report(options, rounds):
    names = options.targets
    steps = options.steps
    print(f"capacity case: N connections held through each proxy, each carried {CARRY_BYTES >> 20} MiB each way "
          f"once, then idle; {len(SERVER_ADDRESSES)} echo servers, clients from 127.0.0.0/8; "
          f"threads {options.threads}; {options.pinning}; {len(rounds)} round(s); idle window {options.idle_s:g} s; "
          f"short connections: {options.probe_s:g} s, {PROBE_CONCURRENCY} at a time, {PROBE_BYTES} B echoed")
    print()
    header = ["", "N"] + [n if n != "haproxy" else "HAProxy" for n in names]
    if names == ["castellan", "haproxy"]:
        header.append("castellan / HAProxy")
    rows = [header]
    for key, label, unit, decimals, _, against in FIGURES:
        counts = ([0] if against == "zero" else []) + list(steps)
        for position, count in enumerate(counts):
            row = [f"{label}, {unit}" if position == 0 else "", str(count)]
            medians = []
            for name in names:
                value, values = median_of(rounds, name, count, key)
                medians.append(value)
                row.append(cell(value, values, decimals))
            if len(header) > len(names) + 2:
                castellan, haproxy = medians
                row.append(f"{castellan / haproxy:.2f}x" if castellan is not None and haproxy else "-")
            rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
    print()
    print("flat as N grows? (memory and descriptors: the largest N against the smallest, within 15 % / 5 %;")
    print(f" idle CPU: grows if up by more than {IDLE_CPU_FLOOR_MS:g} ms and doubled against N = 0; "
          "short connections: within 25 % of N = 0)")
    for key, label, _, decimals, tolerance, against in FIGURES:
        for name in names:
            print(f"  {label}, {name}: {flatness(rounds, name, key, tolerance, against, steps, decimals)}")
    errors = {name: sum(r[name][c]["probe_errors"] for r in rounds for c in r.get(name, {})) for name in names}
    print(f"  failed short connections: {', '.join(f'{n} {e}' for n, e in errors.items())}")
    print(f"(measured in {time.monotonic() - STARTED:.0f} s)")
    print()
    result = {
        "case": "capacity",
        "steps": steps,
        "threads": options.threads,
        "pinning": options.pinning,
        "idle_s": options.idle_s,
        "probe_s": options.probe_s,
        "carry_bytes": CARRY_BYTES,
        "seconds": round(time.monotonic() - STARTED),
        "rounds": [{name: {str(c): f for c, f in r[name].items()} for name in r} for r in rounds],
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
        prog="capacity_bench.py", description="castellan's capacity benchmark (see the top of this file).")
    parser.add_argument("--castellan", default=os.environ.get("CASTELLAN_BIN") or str(REPO / "build" / "castellan"),
                        help="the binary [$CASTELLAN_BIN, else build/castellan]")
    parser.add_argument("--haproxy", default=shutil.which("haproxy") or "haproxy", help="HAProxy [haproxy]")
    parser.add_argument("--echo-server", default=str(REPO / "build-bench" / "echo_server"),
                        help="compiled bench/echo_server [build-bench/echo_server]")
    parser.add_argument("--connrate", default=str(REPO / "build-bench" / "connrate"),
                        help="compiled bench/connrate [build-bench/connrate]")
    parser.add_argument("--threads", type=int, default=1, help="proxy threads, both [1]")
    parser.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)),
                        help="the N held, increasing [1000,4000,8000]")
    parser.add_argument("--targets", default="castellan,haproxy", help="castellan,haproxy or one of them")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, alternating which proxy goes first [1]")
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle CPU window, seconds [10]")
    parser.add_argument("--probe-s", type=float, default=2.0, help="short-connection probe, seconds [2]")
    parser.add_argument("--proxy-cpu", type=int, help="CPU for the proxies [the first usable]")
    parser.add_argument("--load-cpu", type=int, help="CPU for this script, clients and servers [the second]")
    parser.add_argument("--no-pin", action="store_true", help="pin nothing")
    parser.add_argument("--json-out", help="also write the JSON result to this file")
    parser.add_argument("--keep-work", action="store_true", help="keep the work folder (configs, logs)")
    options = parser.parse_args(argv)

    options.targets = [t for t in options.targets.split(",") if t]
    if not options.targets or any(t not in ("castellan", "haproxy") for t in options.targets):
        parser.error("--targets: castellan, haproxy or both")
    options.targets.sort()  # castellan, haproxy: the ratio's order
    try:
        options.steps = [int(s) for s in options.steps.split(",")]
    except ValueError:
        parser.error("--steps: integers separated by commas")
    if not options.steps or any(b <= a for a, b in zip(options.steps, options.steps[1:])) or options.steps[0] < 1:
        parser.error("--steps must be positive and increasing")
    if options.threads < 1 or options.rounds < 1:
        parser.error("--threads and --rounds must be at least 1")
    if not 1.0 <= options.idle_s <= 60.0 or not 0.2 <= options.probe_s <= 10.0:
        parser.error("--idle-s must be 1-60, --probe-s 0.2-10")
    for tool in (options.echo_server, options.connrate):
        if not os.access(tool, os.X_OK):
            parser.error(f"{tool}: not an executable file (bench/run.sh capacity compiles it)")
    if "castellan" in options.targets and not os.access(options.castellan, os.X_OK):
        parser.error(f"castellan binary not found at {options.castellan}")
    if "haproxy" in options.targets and not shutil.which(options.haproxy):
        parser.error("haproxy not found (scripts/setup.sh installs it)")

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
    options.pinning = ("no pinning" if options.proxy_cpu is None
                       else f"proxies on CPU {options.proxy_cpu}, clients and servers on CPU {options.load_cpu}")
    return options


def fit_steps(options):
    """Leaves out the steps the file limit cannot hold (this script's hard limit,
    which every child inherits); sets the clients' share and HAProxy's maxconn."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    extra = WARM_UP + PROBE_CONCURRENCY + 16  # what a proxy may hold beside the N
    most = session_capacity(limit, 32, options.threads) - extra  # castellan's two per connection, its reserve
    most = min(most, (limit - 2 * HAPROXY_MAXPIPES - 200) // 2 - extra)  # HAProxy's maxsock
    most = min(most, len(SERVER_ADDRESSES) * (limit - 64))  # each echo server's share
    kept = [n for n in options.steps if n <= most]
    for n in options.steps:
        if n > most:
            say(f"warning: the file limit {limit} allows at most {most} connections: leaving out N = {n}")
    if not kept:
        raise BenchError(f"the file limit {limit} allows only {most} connections")
    options.steps = kept
    options.per_client = limit - CLIENT_RESERVE
    options.haproxy_maxconn = kept[-1] + extra
    options.file_limit = limit


def main(argv):
    if argv and argv[0] == "_hold":
        return hold_main(argv[1:])
    options = parse_options(argv)

    def on_signal(number, _frame):
        raise Interrupted(signal.Signals(number).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if options.load_cpu is not None:
        os.sched_setaffinity(0, {options.load_cpu})

    work = Path(tempfile.mkdtemp(prefix="castellan-capacity-bench."))
    bench = None
    status = 1
    try:
        fit_steps(options)
        say(f"steps {options.steps}, targets {options.targets}, threads {options.threads}, {options.pinning}, "
            f"file limit {options.file_limit}")
        bench = CapacityBench(options, work)
        bench.start_echo_servers()
        rounds = []
        for number in range(options.rounds):
            order = options.targets if number % 2 == 0 else list(reversed(options.targets))
            results = {}
            for name in order:
                say(f"round {number + 1}: {name}")
                results[name] = bench.measure(name)
            rounds.append(results)
        report(options, rounds)
        status = 0
    except BenchError as error:
        say(f"FAILED: {error}")
        if bench is not None and bench.log_file is not None:
            tail = bench.log_tail()
            if tail:
                say(f"{bench.proxy_name}'s log, last lines ({bench.log_file}):\n{tail}")
    except Interrupted as error:
        say(f"interrupted ({error})")
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # no second interruption mid clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if bench is not None:
            bench.children.stop_all()
        if options.keep_work or status == 1:
            say(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
