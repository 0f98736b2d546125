"""Reload in place (issue 6): SIGHUP and POST /api/v1/reload against the real binary.

What a reload must keep (INTERFACE.md "Reload rules"): open connections, listeners
whose address did not change, health and drain state of unchanged real servers,
persistence entries; what it must refuse: an invalid file, a listener that cannot be
bound, a mode this build does not implement. Each test rewrites the config file of a
running castellan and reloads it, then looks at clients, /api/v1/status, /metrics and
the log.
"""

import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (
    HOST,
    Castellan,
    ConfigDir,
    EchoServer,
    IntegrationTest,
    SinkServer,
    addr,
    admin_call,
    connect_via,
    free_port,
    is_closed,
    make_config,
    name_of_connection,
    parse_log_line,
    read_name,
    read_to_end,
    real_server,
    recv_exactly,
    run_cli,
    tcp_service,
    wait_for,
)

TOKEN = "reload-token-42"
RELOAD_TIMEOUT = 10.0  # seconds a reload gets to log its event=reload line (sanitizer builds too)
RELOAD_LINE = re.compile(r"\bevent=reload(\s|$)")


def names_path(text, path):
    """True if text names `path`, or its parent path together with the last key."""
    if path in text:
        return True
    parent, _, key = path.rpartition("/")
    return bool(parent) and parent in text and re.search(rf"\b{re.escape(key)}\b", text) is not None


def refused(port):
    """True if a connect to 127.0.0.1:port is refused; False if it is accepted."""
    try:
        sock = connect_via(port, timeout=2.0)
    except ConnectionRefusedError:
        return True
    sock.close()
    return False


def echo_round(sock, payload, timeout=5.0):
    """Sends payload and reads it back; raises AssertionError when the echo differs."""
    sock.settimeout(timeout)
    sock.sendall(payload)
    echoed = recv_exactly(sock, len(payload), timeout)
    if echoed != payload:
        raise AssertionError(f"echo differs: sent {len(payload)} bytes, got back other bytes")


def close_cleanly(test, sock):
    """Half-closes our side and expects the rest of the path to pass on the EOF."""
    sock.settimeout(5.0)
    sock.shutdown(socket.SHUT_WR)
    data, how = read_to_end(sock, timeout=5.0)
    test.assertEqual((data, how), (b"", "eof"), "the connection did not end cleanly")


class Stream:
    """A long-lived connection that echoes 8 KiB chunks both ways until stopped.

    Every chunk is checked byte for byte; the first error ends the loop and is kept.
    Bounded by `max_seconds` and `max_rounds`.
    """

    CHUNK = 8192

    def __init__(self, sock, seed, max_seconds=90.0, max_rounds=1_000_000):
        self.sock = sock
        self.pool = random.Random(seed).randbytes(1 << 16)
        self.max_seconds = max_seconds
        self.max_rounds = max_rounds
        self.rounds = 0
        self.round_times = []  # monotonic time of each completed round
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reload-stream", daemon=True)
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        try:
            while not self._stop.is_set() and self.rounds < self.max_rounds and time.monotonic() < deadline:
                start = (self.rounds * 7919) % (len(self.pool) - self.CHUNK)
                echo_round(self.sock, self.pool[start : start + self.CHUNK])
                self.rounds += 1
                self.round_times.append(time.monotonic())
        except (OSError, EOFError, AssertionError) as error:
            self.error = f"after {self.rounds} rounds: {error!r}"

    def stop(self):
        self._stop.set()
        self._thread.join(10)


class ClientLoop:
    """A thread that connects, echoes a short message and closes, over and over.

    Keeps every failure (with the time it happened); bounded by `max_seconds` and
    `max_connections`; a short pause between connections keeps the ephemeral ports
    and the two cores from running out.
    """

    def __init__(self, port, ident, max_seconds=90.0, max_connections=20000, pause=0.01):
        self.port = port
        self.ident = ident
        self.max_seconds = max_seconds
        self.max_connections = max_connections
        self.pause = pause
        self.successes = 0
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reload-client-{ident}", daemon=True)
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        for n in range(self.max_connections):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            try:
                with connect_via(self.port, timeout=5.0) as sock:
                    echo_round(sock, f"client {self.ident} connection {n}\n".encode())
                self.successes += 1
            except (OSError, EOFError, AssertionError) as error:
                self.failures.append((time.monotonic(), repr(error)))
            time.sleep(self.pause)

    def stop(self):
        self._stop.set()
        self._thread.join(10)


class ReloadTest(IntegrationTest):
    """Starts castellan with an admin API and reloads it by signal or by API."""

    def setUp(self):
        super().setUp()
        self.admin_port = free_port()
        self.token_file = None

    def with_token(self):
        folder = tempfile.mkdtemp(prefix="castellan-reload-")
        self.addCleanup(shutil.rmtree, folder, True)
        self.token_file = os.path.join(folder, "admin.token")
        with open(self.token_file, "w") as out:
            out.write(TOKEN + "\n")

    def config(self, services, **extra):
        """A config of `services` with this test's admin section."""
        admin = {"listen": addr(self.admin_port)}
        if self.token_file:
            admin["token_file"] = self.token_file
        return make_config(services, admin=admin, **extra)

    def rewrite(self, config):
        """Replaces the running castellan's config file (atomically, by rename)."""
        path = self.proxy.config_file
        scratch = path.with_name(path.name + ".new")
        scratch.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
        os.replace(scratch, path)

    # -- admin API

    def request(self, method, path, body=None, token=None):
        """(HTTP status, parsed JSON body or text) of one admin API call."""
        status, raw = admin_call(self.admin_port, method, path, body, token)
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def status(self):
        code, body = self.request("GET", "/api/v1/status")
        self.assertEqual(code, 200, body)
        return body

    def generation(self):
        return self.status()["config"]["generation"]

    def last_reload(self):
        return self.status()["config"]["last_reload"]

    def server_status(self, service, server):
        for vs in self.status()["virtual_services"]:
            if vs["name"] == service:
                for rs in vs["real_servers"]:
                    if rs["name"] == server:
                        return rs
        raise AssertionError(f"no real server {service}/{server} in the status")

    def service_status(self, service):
        for vs in self.status()["virtual_services"]:
            if vs["name"] == service:
                return vs
        raise AssertionError(f"no virtual service {service} in the status")

    def reload_api(self, token=None):
        return self.request("POST", "/api/v1/reload", body=b"", token=token)

    def set_state(self, service, server, state, token=None):
        return self.request("POST", f"/api/v1/virtual-services/{service}/real-servers/{server}/state", {"state": state}, token)

    def metrics(self):
        """{(name, labels text): value} of /metrics."""
        code, text = self.request("GET", "/metrics")
        self.assertEqual(code, 200, text)
        samples = {}
        for line in text.splitlines():
            match = re.match(r"^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", line)
            if match and not line.startswith("#"):
                samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
        return samples

    # -- reload by signal

    def reload_lines(self):
        return [line for line in self.proxy.stderr_lines() if RELOAD_LINE.search(line)]

    def sighup(self):
        """Sends SIGHUP and waits for its event=reload line; returns the parsed line."""
        # A reload's line can reach stderr after its answer to the API (the log
        # is written apart, and slowly under the sanitizers): wait until every
        # reload so far has its line, or an earlier one would pass for this one's.
        reloads = self.status()["config"]["reloads"]
        earlier = reloads["ok"] + reloads["failed"]
        wait_for(lambda: len(self.reload_lines()) >= earlier, timeout=RELOAD_TIMEOUT, interval=0.01)
        before = len(self.reload_lines())
        self.proxy.signal(signal.SIGHUP)
        lines = wait_for(lambda: self.reload_lines()[before:], timeout=RELOAD_TIMEOUT, interval=0.01)
        self.assertTrue(lines, f"no event=reload line within {RELOAD_TIMEOUT} s after SIGHUP" + self.log_tail())
        return parse_log_line(lines[0])

    def spread(self, port, count, source_ip=HOST):
        return collections.Counter(name_of_connection(port, source_ip) for _ in range(count))


# ---------------------------------------------------------------------------
# 1. Reloads under load


class ReloadUnderLoadTest(ReloadTest):
    RELOADS = 20
    SPACING = 0.25  # seconds between two SIGHUPs
    CLIENTS = 4

    def test_20_sighup_reloads_refuse_no_client_and_break_no_stream(self):
        echoes = [self.serve(EchoServer()) for _ in range(3)]
        port = free_port()
        two = [("e1", echoes[0].port), ("e2", echoes[1].port)]
        three = two + [("e3", echoes[2].port)]
        configs = [
            self.config([tcp_service("rpc", port, two)]),
            self.config([tcp_service("rpc", port, three)]),
        ]
        self.start(configs[0])

        streams = [Stream(self.client(port), seed) for seed in (1, 2)]
        for stream in streams:
            self.addCleanup(stream.stop)
        loops = [ClientLoop(port, n) for n in range(self.CLIENTS)]
        for loop in loops:
            self.addCleanup(loop.stop)

        time.sleep(0.3)  # load before the first reload
        events = []
        first_reload = time.monotonic()
        for i in range(1, self.RELOADS + 1):
            sent = time.monotonic()
            self.rewrite(configs[i % 2])  # odd: a third real server; even: back to two
            events.append(self.sighup())
            time.sleep(max(0.0, self.SPACING - (time.monotonic() - sent)))
        last_reload = time.monotonic()
        time.sleep(0.3)  # load after the last reload
        for loop in loops:
            loop.stop()
        for stream in streams:
            stream.stop()

        self.assertEqual([e.get("ok") for e in events], ["true"] * self.RELOADS, self.log_tail())
        self.assertEqual([e.get("generation") for e in events], [str(g) for g in range(2, self.RELOADS + 2)])
        self.assertEqual(self.generation(), self.RELOADS + 1)

        failures = sorted(f for loop in loops for f in loop.failures)
        self.assertEqual(failures, [], "failed or refused client connections" + self.log_tail())
        self.assertGreater(sum(loop.successes for loop in loops), 4 * self.RELOADS, "the clients barely ran")
        self.assertGreater(echoes[2].connections, 0, "the third real server (odd generations) got no traffic")

        for n, stream in enumerate(streams):
            self.assertIsNone(stream.error, f"stream {n}" + self.log_tail())
            during = [t for t in stream.round_times if first_reload <= t <= last_reload]
            self.assertGreater(len(during), self.RELOADS, f"stream {n} stalled during the reloads")
            self.assertTrue(any(t > last_reload for t in stream.round_times), f"stream {n} stalled after the reloads")
            echo_round(stream.sock, b"one more round after the reloads\n")
            close_cleanly(self, stream.sock)


# ---------------------------------------------------------------------------
# 2. An invalid file changes nothing


class InvalidReloadTest(ReloadTest):
    def test_unknown_key_keeps_the_old_config_and_is_reported(self):
        cas1, cas2, cas3 = self.named("cas1", "cas2", "cas3")
        port = free_port()
        self.start(self.config([tcp_service("rpc", port, [("cas1", cas1.port), ("cas2", cas2.port)])]))
        self.assertEqual(self.spread(port, 4), {"cas1": 2, "cas2": 2})
        self.assertIsNone(self.last_reload())

        bad_path = "/virtual_services/0/real_servers/1/wieght"
        servers = [real_server("cas1", cas1.port), real_server("cas2", cas2.port, wieght=2), real_server("cas3", cas3.port)]
        self.rewrite(self.config([tcp_service("rpc", port, servers)]))
        event = self.sighup()
        self.assertEqual(event.get("ok"), "false", event)
        self.assertTrue(names_path(event.get("errors", ""), bad_path), event)
        self.assertTrue(
            any(names_path(line, bad_path) for line in self.proxy.stderr_lines() if "event=config_error" in line),
            "no event=config_error line naming the key" + self.log_tail(),
        )

        last = self.last_reload()
        self.assertIs(last["ok"], False, last)
        self.assertTrue(any(names_path(e, bad_path) for e in last["errors"]), last)
        self.assertRegex(last["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual(self.generation(), 1)
        self.assertEqual(self.spread(port, 4), {"cas1": 2, "cas2": 2}, "the old config must keep serving")

        code, body = self.reload_api()
        self.assertEqual(code, 400, body)
        self.assertIs(body["ok"], False, body)
        self.assertTrue(any(names_path(e, bad_path) for e in body["errors"]), body)
        self.assertEqual(self.generation(), 1)
        self.assertEqual(cas3.connections, 0)

        servers[1] = real_server("cas2", cas2.port, weight=2)
        self.rewrite(self.config([tcp_service("rpc", port, servers)]))
        code, body = self.reload_api()
        self.assertEqual((code, body), (200, {"ok": True, "generation": 2}), self.log_tail())
        last = self.last_reload()
        self.assertIs(last["ok"], True, last)
        self.assertEqual(last["errors"], [])
        self.assertEqual(self.generation(), 2)
        self.assertEqual(self.spread(port, 6), {"cas1": 2, "cas2": 2, "cas3": 2})


# ---------------------------------------------------------------------------
# 3. Adding and removing real servers, moving a listener


class ChangeTest(ReloadTest):
    def test_added_real_server_gets_traffic(self):
        cas1, cas2, cas3 = self.named("cas1", "cas2", "cas3")
        port = free_port()
        pair = [("cas1", cas1.port), ("cas2", cas2.port)]
        self.start(self.config([tcp_service("rpc", port, pair)]))
        self.assertEqual(self.spread(port, 4), {"cas1": 2, "cas2": 2})
        self.rewrite(self.config([tcp_service("rpc", port, pair + [("cas3", cas3.port)])]))
        self.assertEqual(self.sighup().get("ok"), "true", self.log_tail())
        self.assertEqual(self.spread(port, 6), {"cas1": 2, "cas2": 2, "cas3": 2})
        self.assertEqual(self.server_status("rpc", "cas3")["state"], "up")

    def test_new_listen_port_opens_and_the_old_one_closes(self):
        (cas1,) = self.named("cas1")
        old_port, new_port = free_port(), free_port()
        self.start(self.config([tcp_service("rpc", old_port, [("cas1", cas1.port)])]))
        held = self.client(old_port)
        self.assertEqual(read_name(held), "cas1")
        self.assertTrue(refused(new_port))

        self.rewrite(self.config([tcp_service("rpc", new_port, [("cas1", cas1.port)])]))
        code, body = self.reload_api()
        self.assertEqual((code, body), (200, {"ok": True, "generation": 2}), self.log_tail())
        self.assertEqual(name_of_connection(new_port), "cas1")
        self.assertTrue(wait_for(lambda: refused(old_port), timeout=3.0), "the old listener still accepts" + self.log_tail())
        self.assertEqual(self.service_status("rpc")["listen"], addr(new_port))
        echo_round(held, b"the connection through the old listener goes on\n")
        close_cleanly(self, held)

    def test_removed_real_server_keeps_its_open_connection(self):
        servers = dict(zip(("cas1", "cas2"), self.named("cas1", "cas2")))
        port = free_port()
        self.start(self.config([tcp_service("rpc", port, [(n, s.port) for n, s in servers.items()])]))
        held = self.client(port)
        removed = read_name(held)
        kept = {"cas1": "cas2", "cas2": "cas1"}[removed]

        self.rewrite(self.config([tcp_service("rpc", port, [(kept, servers[kept].port)])]))
        self.assertEqual(self.sighup().get("ok"), "true", self.log_tail())
        self.assertEqual(self.spread(port, 4), {kept: 4})
        self.assertNotIn(removed, [rs["name"] for rs in self.service_status("rpc")["real_servers"]])
        for n in range(3):
            echo_round(held, f"still talking to {removed}, round {n}\n".encode())
        self.assertEqual(servers[removed].active, 1, "the removed server's connection must stay open")
        close_cleanly(self, held)
        closes = lambda: [e for e in self.proxy.log_events("close") if e.get("server") == removed]
        self.assertTrue(wait_for(closes, timeout=3.0), self.log_tail())
        self.assertEqual(closes()[0].get("reason"), "closed", closes())


class OlderGenerationTest(ReloadTest):
    """drain_timeout_s and on_server_down: close reach connections opened before a reload."""

    CHECK = {"type": "tcp", "interval_ms": 200, "timeout_ms": 150, "fall": 1, "rise": 1}

    def test_drain_timeout_closes_a_connection_of_the_previous_generation(self):
        (cas1,) = self.named("cas1")
        port = free_port()
        service = lambda weight: tcp_service("rpc", port, [{"name": "cas1", "address": addr(cas1.port), "weight": weight}],
                                             drain_timeout_s=1)
        self.start(self.config([service(1)]))
        held = self.client(port)
        self.assertEqual(read_name(held), "cas1")
        self.rewrite(self.config([service(2)]))  # the held connection stays on generation 1
        self.assertEqual(self.sighup().get("ok"), "true", self.log_tail())
        self.assertEqual(self.set_state("rpc", "cas1", "drain")[0], 200)
        self.assertTrue(is_closed(held, wait=4.0), "drain_timeout did not reach the older generation" + self.log_tail())
        closes = lambda: [e for e in self.proxy.log_events("close") if e.get("reason") == "drain_timeout"]
        self.assertTrue(wait_for(closes, timeout=2.0), self.log_tail())

    def test_server_down_closes_a_connection_of_the_previous_generation(self):
        cas1, cas2 = self.named("cas1", "cas2")
        port = free_port()
        servers = lambda names: [(n, s.port) for n, s in (("cas1", cas1), ("cas2", cas2)) if n in names]
        service = lambda names: tcp_service("rpc", port, servers(names), health_check=self.CHECK, on_server_down="close")
        self.start(self.config([service(["cas1"])]))
        held = self.client(port)
        self.assertEqual(read_name(held), "cas1")
        self.rewrite(self.config([service(["cas1", "cas2"])]))
        self.assertEqual(self.sighup().get("ok"), "true", self.log_tail())
        self.stop_accepting(cas1)
        self.assertTrue(is_closed(held, wait=4.0), "on_server_down did not reach the older generation" + self.log_tail())
        closes = lambda: [e for e in self.proxy.log_events("close") if e.get("reason") == "server_down"]
        self.assertTrue(wait_for(closes, timeout=2.0), self.log_tail())

    @staticmethod
    def stop_accepting(server):
        """The port closes but open connections stay up: only castellan can end them."""
        server.listener.close()


# ---------------------------------------------------------------------------
# 4. State that must survive: persistence, health, drain


class KeptStateTest(ReloadTest):
    CLIENTS = [f"127.0.0.{n}" for n in range(2, 12)]
    CHECK = {"type": "tcp", "interval_ms": 300, "timeout_ms": 200, "fall": 2, "rise": 2}

    def services(self, rpc, smtp, idle_s=None):
        extra = {} if idle_s is None else {"timeouts": {"idle_s": idle_s}}
        return [
            tcp_service(
                "rpc",
                self.rpc_port,
                [(n, s.port) for n, s in rpc.items()],
                scheduler="round_robin",
                persistence={"type": "source_ip", "timeout_s": 600},
                **extra,
            ),
            tcp_service("smtp", self.smtp_port, [(n, s.port) for n, s in smtp.items()], health_check=self.CHECK, **extra),
        ]

    def test_persistence_health_and_drain_survive_a_reload(self):
        self.rpc_port, self.smtp_port = free_port(), free_port()
        rpc = dict(zip(("cas1", "cas2"), self.named("cas1", "cas2")))
        smtp = dict(zip(("mb1", "mb2", "mb3"), self.named("mb1", "mb2", "mb3")))
        smtp["mb2"].stop()  # down from the start: its checks fail
        self.start(self.config(self.services(rpc, smtp)))

        # Round robin gives new clients alternate servers; one extra client after
        # the second breaks the alternation, so a table rebuilt from scratch (which
        # alternates again) cannot give the same assignment by chance.
        assigned = {}
        for n, source in enumerate(self.CLIENTS):
            assigned[source] = name_of_connection(self.rpc_port, source)
            if n == 1:
                name_of_connection(self.rpc_port, "127.0.0.50")
        self.assertEqual(set(assigned.values()), {"cas1", "cas2"}, assigned)

        down = wait_for(lambda: self.server_status("smtp", "mb2")["state"] == "down", timeout=5.0)
        self.assertTrue(down, f"mb2 never went down: {self.server_status('smtp', 'mb2')}" + self.log_tail())
        code, body = self.set_state("smtp", "mb3", "drain")
        self.assertEqual((code, body.get("state")), (200, "draining"), body)

        self.rewrite(self.config(self.services(rpc, smtp, idle_s=3600)))
        event = self.sighup()
        self.assertEqual(event.get("ok"), "true", self.log_tail())
        reload_at = self.proxy.stderr_lines().index(self.reload_lines()[-1])
        self.assertEqual(self.generation(), 2)

        # Watch the states for several check intervals after the reload.
        deadline = time.monotonic() + 1.5
        seen = collections.defaultdict(set)
        while time.monotonic() < deadline:
            for name in ("mb1", "mb2", "mb3"):
                seen[name].add(self.server_status("smtp", name)["state"])
            time.sleep(0.05)
        self.assertEqual(dict(seen), {"mb1": {"up"}, "mb2": {"down"}, "mb3": {"draining"}}, self.log_tail())
        flaps = [l for l in self.proxy.stderr_lines()[reload_at:] if "event=server_state" in l]
        self.assertEqual(flaps, [], "the reload changed the health of an unchanged server")
        self.assertEqual(self.spread(self.smtp_port, 3), {"mb1": 3})

        after = {source: name_of_connection(self.rpc_port, source) for source in self.CLIENTS}
        self.assertEqual(after, assigned, "persistent clients moved across the reload" + self.log_tail())


# ---------------------------------------------------------------------------
# 5. Many reloads leak nothing


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/PID/status")


class LeakTest(ReloadTest):
    RELOADS = 100
    RSS_LIMIT_KIB = 8 * 1024

    def test_100_reloads_leave_descriptors_and_memory_where_they_were(self):
        echoes = [self.serve(EchoServer()) for _ in range(3)]
        rpc_port, smtp_port, extra_port = free_port(), free_port(), free_port()
        check = {"type": "tcp", "interval_ms": 1000, "timeout_ms": 500}
        a = self.config(
            [
                tcp_service("rpc", rpc_port, [("e1", echoes[0].port), ("e2", echoes[1].port)]),
                tcp_service("smtp", smtp_port, [("e1", echoes[0].port)]),
            ]
        )
        b = self.config(
            [
                tcp_service(
                    "rpc",
                    rpc_port,
                    [real_server("e1", echoes[0].port, weight=3), ("e2", echoes[1].port), ("e3", echoes[2].port)],
                    health_check=check,
                ),
                tcp_service("smtp", smtp_port, [("e1", echoes[0].port)], timeouts={"idle_s": 600}),
                tcp_service("extra", extra_port, [("e3", echoes[2].port)], health_check=check),
            ]
        )
        # Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
        # default) and counts in the RSS: keep it small so growth means a leak.
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=1").lstrip(":")
        self.start(a, env={"ASAN_OPTIONS": asan})
        pid = self.proxy.pid

        def reload_to(config, generation):
            self.rewrite(config)
            code, body = self.reload_api()
            self.assertEqual((code, body), (200, {"ok": True, "generation": generation}), self.log_tail())

        # Two reloads first: whatever the first reload creates for good (a thread,
        # a resolver) is in the baseline.
        reload_to(b, 2)
        reload_to(a, 3)
        with connect_via(rpc_port) as sock:
            echo_round(sock, b"warm\n")
        time.sleep(1.0)
        fds_before = min(fd_count(pid) for _ in range(5))
        rss_before = rss_kib(pid)

        for n in range(self.RELOADS):
            reload_to(b if n % 2 == 0 else a, 4 + n)
        with connect_via(rpc_port) as sock:
            echo_round(sock, b"still serving\n")
        self.assertTrue(
            wait_for(lambda: refused(extra_port), timeout=3.0), "the removed service's listener still accepts" + self.log_tail()
        )

        settled = wait_for(lambda: fd_count(pid) <= fds_before, timeout=3.0, interval=0.1)
        fds = sorted(os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
        self.assertTrue(settled, f"{fd_count(pid)} descriptors after {self.RELOADS} reloads, {fds_before} before: {fds}")
        growth = rss_kib(pid) - rss_before
        self.assertLess(growth, self.RSS_LIMIT_KIB, f"VmRSS grew by {growth} KiB over {self.RELOADS} reloads")


# ---------------------------------------------------------------------------
# 6. Counters move while the connection is open


class LiveCountersTest(ReloadTest):
    SIZE = 16 << 20

    def test_16_mib_show_in_the_status_while_the_connection_is_open(self):
        sink = self.serve(SinkServer())
        port = free_port()
        self.start(self.config([tcp_service("bulk", port, [("sink", sink.port)])]))
        client = self.client(port, timeout=60.0)
        client.sendall(random.Random(6).randbytes(1 << 20) * 16)
        arrived = wait_for(lambda: sink.bytes_received >= self.SIZE, timeout=30.0, interval=0.01)
        self.assertTrue(arrived, f"the sink got {sink.bytes_received} of {self.SIZE} bytes" + self.log_tail())

        # Every byte has passed castellan: its counters must show them within 1 s.
        passed = time.monotonic()

        def counted():
            vs = self.service_status("bulk")
            (rs,) = vs["real_servers"]
            return vs["bytes_in"] >= self.SIZE and rs["bytes_in"] >= self.SIZE

        shown = wait_for(counted, timeout=1.0, interval=0.02)
        took = time.monotonic() - passed
        vs = self.service_status("bulk")
        self.assertTrue(shown, f"after {took:.2f} s the status shows {vs}")
        self.assertEqual((vs["bytes_in"], vs["real_servers"][0]["bytes_in"]), (self.SIZE, self.SIZE))
        self.assertEqual(vs["bytes_out"], 0)
        self.assertEqual(vs["connections_active"], 1, "the connection must still be open")
        self.assertFalse(is_closed(client), "castellan closed the streaming connection")
        self.assertEqual(sink.eofs, 0)


# ---------------------------------------------------------------------------
# 7. The API's token, and what /metrics says about reloads


class ReloadApiTest(ReloadTest):
    def test_token_and_reload_metrics(self):
        self.with_token()
        cas1, cas2 = self.named("cas1", "cas2")
        port = free_port()
        one = self.config([tcp_service("rpc", port, [("cas1", cas1.port)])])
        two = self.config([tcp_service("rpc", port, [("cas1", cas1.port), ("cas2", cas2.port)])])
        self.start(one)
        self.assertEqual(self.status()["admin"], {"token_required": True})

        self.rewrite(two)
        self.assertEqual(self.reload_api()[0], 401)
        self.assertEqual(self.reload_api(token="wrong")[0], 401)
        self.assertEqual(self.generation(), 1, "a refused call must not reload")
        self.assertEqual(self.reload_api(token=TOKEN), (200, {"ok": True, "generation": 2}), self.log_tail())

        self.rewrite('{"threads": 2, "virtual_services": [')  # not even JSON
        code, body = self.reload_api(token=TOKEN)
        self.assertEqual((code, body.get("ok") if isinstance(body, dict) else body), (400, False), body)
        self.assertTrue(body["errors"], body)

        self.rewrite(one)
        self.assertEqual(self.sighup().get("ok"), "true", self.log_tail())
        self.assertEqual(self.generation(), 3)

        samples = self.metrics()
        wanted = {
            ("castellan_config_reloads_total", '{result="ok"}'): 2.0,
            ("castellan_config_reloads_total", '{result="failed"}'): 1.0,
            ("castellan_config_generation", ""): 3.0,
        }
        self.assertEqual({key: samples.get(key) for key in wanted}, wanted)


# ---------------------------------------------------------------------------
# 8. --check reads the files and refuses what this build cannot do


class CheckTest(ReloadTest):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="castellan-reload-certs-")
        cls.cert = os.path.join(cls.certs, "cert.pem")
        cls.key = os.path.join(cls.certs, "key.pem")
        cls.other_key = os.path.join(cls.certs, "other-key.pem")  # matches no certificate here
        openssl = shutil.which("openssl")
        cls.have_openssl = openssl is not None
        if openssl:
            subprocess.run(
                [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=x", "-days", "1",
                 "-keyout", cls.key, "-out", cls.cert],
                check=True, capture_output=True, timeout=60,
            )
            subprocess.run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-out", cls.other_key], check=True, capture_output=True, timeout=60)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def tls_service(self, port, server_port, cert=None, key=None):
        return tcp_service(
            "owa",
            port,
            [("cas1", server_port)],
            tls={"mode": "terminate", "certificates": [{"cert": cert or self.cert, "key": key or self.key}]},
        )

    def check(self, config):
        with ConfigDir(config) as folder:
            return run_cli(["--config", str(folder.config_file), "--check"])

    def assert_refused_at_start(self, config, path):
        proxy = Castellan(config, wait_ready=False)
        proxy.start()
        self.addCleanup(proxy.stop)
        code = proxy.wait(15.0)
        self.assertEqual(code, 1, f"start of a config with {path}: exit {code}\n" + proxy.stderr_text())
        named = wait_for(lambda: names_path(proxy.stderr_text(), path), timeout=2.0)
        self.assertTrue(named, f"no error naming {path} at start:\n" + proxy.stderr_text())

    def test_missing_token_file_fails_the_check(self):
        config = make_config(
            [tcp_service("rpc", free_port(), [("cas1", free_port())])],
            admin={"listen": addr(free_port()), "token_file": "no-such.token"},
        )
        result = self.check(config)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("/admin/token_file", result.stderr)
        self.assertIn("no-such.token", result.stderr)

    def test_missing_certificate_file_fails_the_check(self):
        if not self.have_openssl:
            self.skipTest("openssl is not installed")
        missing = os.path.join(self.certs, "no-such-cert.pem")
        result = self.check(make_config([self.tls_service(free_port(), free_port(), cert=missing)]))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("no-such-cert.pem", result.stderr)

    def test_a_key_not_matching_its_certificate_is_refused_at_check_and_start(self):
        if not self.have_openssl:
            self.skipTest("openssl is not installed")
        self.assertEqual(self.check(make_config([self.tls_service(free_port(), free_port())])).returncode, 0)
        config = make_config([self.tls_service(free_port(), free_port(), key=self.other_key)])
        result = self.check(config)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("/virtual_services/0/tls/certificates/0/key", result.stderr)
        self.assert_refused_at_start(config, "/virtual_services/0/tls/certificates/0/key")

    def test_a_missing_cookie_secret_is_refused_at_check_and_start(self):
        config = make_config([tcp_service("owa", free_port(), [("cas1", free_port())], mode="http",
                                          persistence={"type": "cookie", "cookie_secret_file": "/nonexistent/secret"})])
        result = self.check(config)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("/virtual_services/0/persistence/cookie_secret_file", result.stderr)
        self.assert_refused_at_start(config, "/virtual_services/0/persistence/cookie_secret_file")

    def test_a_bad_key_and_a_missing_cookie_secret_are_refused_at_reload(self):
        if not self.have_openssl:
            self.skipTest("openssl is not installed")
        (cas1,) = self.named("cas1")
        port = free_port()
        self.start(self.config([tcp_service("owa", port, [("cas1", cas1.port)])]))
        for service, path in (
            (self.tls_service(port, cas1.port, key=self.other_key), "/virtual_services/0/tls/certificates/0/key"),
            (tcp_service("owa", port, [("cas1", cas1.port)], mode="http",
                         persistence={"type": "cookie", "cookie_secret_file": "/nonexistent/secret"}),
             "/virtual_services/0/persistence/cookie_secret_file"),
        ):
            self.rewrite(self.config([service]))
            code, body = self.reload_api()
            self.assertEqual(code, 400, body)
            self.assertTrue(any(path in e for e in body["errors"]), body)
        self.assertEqual(self.generation(), 1)
        self.assertEqual(name_of_connection(port), "cas1")


# ---------------------------------------------------------------------------
# 9. A listener that cannot be bound refuses the reload


class BindFailureTest(ReloadTest):
    def test_reload_with_a_taken_port_is_refused(self):
        cas1, cas2, cas3 = self.named("cas1", "cas2", "cas3")
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind((HOST, 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        port = free_port()
        pair = [("cas1", cas1.port), ("cas2", cas2.port)]
        self.start(self.config([tcp_service("rpc", port, pair)]))

        # The new file also adds cas3 to rpc: a refused reload must not apply that either.
        self.rewrite(
            self.config(
                [
                    tcp_service("rpc", port, pair + [("cas3", cas3.port)]),
                    tcp_service("smtp", taken, [("cas1", cas1.port)]),
                ]
            )
        )
        event = self.sighup()
        self.assertEqual(event.get("ok"), "false", self.log_tail())
        last = self.last_reload()
        self.assertIs(last["ok"], False, last)
        self.assertTrue(
            any("/virtual_services/1/listen" in e or str(taken) in e for e in last["errors"]),
            f"no error names the listener: {last}",
        )
        self.assertEqual(self.generation(), 1)
        self.assertEqual(self.spread(port, 4), {"cas1": 2, "cas2": 2}, "the old listener must keep serving")
        self.assertEqual(cas3.connections, 0)
        self.assertNotIn("smtp", [vs["name"] for vs in self.status()["virtual_services"]])


if __name__ == "__main__":
    unittest.main()
