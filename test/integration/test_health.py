"""Active health checks against real servers on 127.0.0.1 (INTERFACE.md `health_check`).

Every scenario uses the timing of the health-check issue: interval 500 ms, timeout
300 ms, fall 2, rise 2. With 10 % jitter the second failed check of a server that
died just after a check lands at most 2 × 550 ms later, so "down within 1.5 s" holds
with room for a slow (sanitizer) build.
"""

import collections
import json
import threading
import time
import unittest
import urllib.request

from harness import (
    HOST,
    IntegrationTest,
    NamedServer,
    TcpServer,
    addr,
    connect_via,
    free_port,
    is_closed,
    make_config,
    name_of_connection,
    read_name,
    tcp_service,
    wait_for,
)

FAST_CHECK = {"interval_ms": 500, "timeout_ms": 300, "fall": 2, "rise": 2}
STATE_CHANGE_LIMIT = 1.5  # seconds, from the "Done when"
POLL = 0.02


def check(kind, **extra):
    return {"type": kind, **FAST_CHECK, **extra}


class HttpServer(TcpServer):
    """Answers every request with `status`, or never answers when status is None."""

    def __init__(self, status):
        self.status = status
        self.requests = []
        super().__init__()

    def handle(self, conn):
        head = bytearray()
        while b"\r\n\r\n" not in head:
            chunk = self.recv(conn, 4096)
            if not chunk:
                return
            head += chunk
        with self._lock:
            self.requests.append(bytes(head))
        if self.status is None:  # hang: hold the connection, answer nothing
            while self.recv(conn, 4096):
                pass
            return
        body = b"castellan test\n"
        reply = f"HTTP/1.1 {self.status} Test\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        self.sendall(conn, reply.encode() + body)


class SmtpServer(TcpServer):
    """Greets with `banner`, answers QUIT with 221, and counts the QUITs it got."""

    def __init__(self, banner):
        self.banner = banner
        self.quits = 0
        super().__init__()

    def handle(self, conn):
        if not self.sendall(conn, self.banner):
            return
        data = bytearray()
        while b"\n" not in data:
            chunk = self.recv(conn, 1024)
            if not chunk:
                return
            data += chunk
        if data.upper().startswith(b"QUIT"):
            with self._lock:
                self.quits += 1
            self.sendall(conn, b"221 2.0.0 Bye\r\n")


class HealthTest(IntegrationTest):
    def start_with_admin(self, services, **extra):
        self.admin_port = free_port()
        return self.start(make_config(services, admin={"listen": addr(self.admin_port)}, **extra))

    def status(self):
        url = f"http://127.0.0.1:{self.admin_port}/api/v1/status"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def server_status(self, service, server):
        for vs in self.status()["virtual_services"]:
            if vs["name"] == service:
                for rs in vs["real_servers"]:
                    if rs["name"] == server:
                        return rs
        raise AssertionError(f"no real server {service}/{server} in the status")

    def wait_state(self, service, server, state, limit=STATE_CHANGE_LIMIT):
        """Waits until status shows `state`; returns the seconds it took."""
        started = time.monotonic()
        shown = wait_for(lambda: self.server_status(service, server)["state"] == state, timeout=limit, interval=POLL)
        took = time.monotonic() - started
        self.assertTrue(
            shown,
            f"{service}/{server} not {state} after {limit} s: {self.server_status(service, server)}" + self.log_tail(),
        )
        return took

    def wait_checked(self, service, server, limit=3.0):
        """Waits for the first check result of a server; returns its health object."""
        wait_for(lambda: self.server_status(service, server)["health"] is not None, timeout=limit, interval=POLL)
        health = self.server_status(service, server)["health"]
        self.assertIsNotNone(health, f"{service}/{server} never checked" + self.log_tail())
        return health

    def spread(self, port, count, source_ip=HOST):
        return collections.Counter(name_of_connection(port, source_ip) for _ in range(count))

    def restart(self, server):
        """A new NamedServer with the same name on the same port (the old one is stopped)."""
        return self.serve(NamedServer(server.name, port=server.port))


class StoppedServerTest(HealthTest):
    def test_stopped_server_goes_down_then_up_and_gets_traffic_again(self):
        port = free_port()
        cas1, cas2 = self.named("cas1", "cas2")
        self.start_with_admin(
            [tcp_service("rpc", port, [("cas1", cas1.port), ("cas2", cas2.port)], health_check=check("tcp"))]
        )
        health = self.wait_checked("rpc", "cas1")
        self.assertTrue(health["ok"], health)
        self.assertIsInstance(health["latency_ms"], int)
        self.assertRegex(health["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

        cas1.stop()
        self.wait_state("rpc", "cas1", "down")
        self.assertFalse(self.server_status("rpc", "cas1")["health"]["ok"])
        self.assertEqual(self.spread(port, 10), {"cas2": 10})
        self.assertEqual(self.server_status("rpc", "cas1")["connect_failures"], 0,
                         "a down server must not even be tried")

        self.restart(cas1)
        self.wait_state("rpc", "cas1", "up")
        self.assertEqual(self.spread(port, 10), {"cas1": 5, "cas2": 5})

        changes = lambda: {(e.get("from"), e.get("to")) for e in self.proxy.log_events("server_state")}
        self.assertTrue(wait_for(lambda: {("up", "down"), ("down", "up")} <= changes(), timeout=2.0), self.log_tail())
        went_down = [e for e in self.proxy.log_events("server_state") if e.get("to") == "down"][0]
        self.assertIn("refused", went_down.get("reason", ""), went_down)

    def test_service_without_health_check_gets_a_tcp_check(self):
        port = free_port()
        (cas1,) = self.named("cas1")
        service = tcp_service("smtp", port, [("cas1", cas1.port)])
        del service["health_check"]  # the default: {"type": "tcp"}, every 2000 ms
        self.start_with_admin([service])
        health = self.wait_checked("smtp", "cas1", limit=3.0)
        self.assertTrue(health["ok"], health)
        cas1.stop()
        # fall 2 at the default 2000 ms interval (+10 % jitter): down within ~4.4 s.
        self.wait_state("smtp", "cas1", "down", limit=6.0)
        # Every real server is down: a tcp service closes new connections at once.
        with connect_via(port) as client:
            self.assertTrue(is_closed(client, wait=2.0))
        self.assertTrue(wait_for(lambda: self.proxy.log_events("service_unavailable"), timeout=2.0), self.log_tail())


class CheckerTest(HealthTest):
    def test_http_hang_and_500_are_down_while_200_stays_up(self):
        hang, error, fine = (self.serve(HttpServer(s)) for s in (None, 500, 200))
        port = free_port()
        self.start_with_admin(
            [
                tcp_service(
                    "owa",
                    port,
                    [("hang", hang.port), ("error", error.port), ("fine", fine.port)],
                    health_check=check("http", path="/owa/healthcheck.htm", expect_status=[200]),
                )
            ]
        )
        self.wait_state("owa", "hang", "down", limit=3.0)
        self.wait_state("owa", "error", "down", limit=3.0)
        self.assertEqual(self.server_status("owa", "error")["health"]["detail"], "status 500")
        self.assertIn("timeout", self.server_status("owa", "hang")["health"]["detail"])
        time.sleep(0.6)  # at least one more check of `fine`
        fine_status = self.server_status("owa", "fine")
        self.assertEqual(fine_status["state"], "up")
        self.assertEqual(fine_status["health"]["detail"], "status 200")
        request = fine.requests[0].decode()
        self.assertTrue(request.startswith("GET /owa/healthcheck.htm HTTP/1.1\r\n"), request)
        self.assertIn(f"\r\nHost: 127.0.0.1:{fine.port}\r\n", request)
        self.assertIn("\r\nUser-Agent: castellan-health\r\n", request)

    def test_smtp_220_is_up_and_554_is_down(self):
        good = self.serve(SmtpServer(b"220 cas1.example.org Microsoft ESMTP MAIL Service ready\r\n"))
        bad = self.serve(SmtpServer(b"554 5.7.1 No SMTP service here\r\n"))
        port = free_port()
        self.start_with_admin(
            [tcp_service("smtp", port, [("good", good.port), ("bad", bad.port)], health_check=check("smtp"))]
        )
        self.wait_state("smtp", "bad", "down", limit=3.0)
        self.assertEqual(self.server_status("smtp", "bad")["health"]["detail"], "banner 554")
        self.assertTrue(wait_for(lambda: good.quits >= 2, timeout=3.0), "the smtp check must say QUIT")
        good_status = self.server_status("smtp", "good")
        self.assertEqual(good_status["state"], "up")
        self.assertTrue(good_status["health"]["ok"])


class KillUnderLoadTest(HealthTest):
    CLIENTS = 4
    AFTER_DOWN = 1.0  # seconds of load after the server is marked down

    def test_no_failed_connection_after_the_server_is_marked_down(self):
        port = free_port()
        cas1, cas2 = self.named("cas1", "cas2")
        self.start_with_admin(
            [tcp_service("rpc", port, [("cas1", cas1.port), ("cas2", cas2.port)], health_check=check("tcp"))]
        )
        self.wait_checked("rpc", "cas1")
        stop = threading.Event()
        results = []  # (started, finished, name or None)
        lock = threading.Lock()

        def client_loop():
            deadline = time.monotonic() + 20.0
            for _ in range(5000):
                if stop.is_set() or time.monotonic() > deadline:
                    return
                started = time.monotonic()
                try:
                    name = name_of_connection(port, timeout=2.0)
                except (OSError, EOFError):
                    name = None
                with lock:
                    results.append((started, time.monotonic(), name))

        threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(self.CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.3)
            killed_at = time.monotonic()
            cas1.stop()
            self.wait_state("rpc", "cas1", "down")
            marked_down = time.monotonic()  # the mark happened at or before this moment
            time.sleep(self.AFTER_DOWN)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)

        with lock:
            done = list(results)
        after = [r for r in done if r[0] >= marked_down]
        self.assertGreater(len(after), 20, "the clients must keep connecting after the mark")
        self.assertEqual([r for r in after if r[2] is None], [], "failed connections after the mark")
        self.assertEqual({r[2] for r in after}, {"cas2"})
        # Before the mark only connections already in flight at the kill may fail:
        # a refused connect is retried on cas2 before the client sees anything.
        late_failures = [r for r in done if r[2] is None and r[0] > killed_at + 0.05]
        self.assertEqual(late_failures, [], "connect failover must hide the dead server")


class PersistenceTest(HealthTest):
    def test_persistent_client_of_a_dead_server_moves_and_stays(self):
        port = free_port()
        servers = dict(zip(("cas1", "cas2"), self.named("cas1", "cas2")))
        self.start_with_admin(
            [
                tcp_service(
                    "rpc",
                    port,
                    [(name, server.port) for name, server in servers.items()],
                    health_check=check("tcp"),
                    persistence={"type": "source_ip", "timeout_s": 600},
                )
            ]
        )
        client = "127.0.0.5"
        first = name_of_connection(port, client)
        self.assertEqual(self.spread(port, 4, client), {first: 4})
        other = {"cas1": "cas2", "cas2": "cas1"}[first]

        servers[first].stop()
        self.wait_state("rpc", first, "down")
        self.assertEqual(self.spread(port, 4, client), {other: 4})

        self.restart(servers[first])
        self.wait_state("rpc", first, "up")
        self.assertEqual(self.spread(port, 4, client), {other: 4}, "the moved client stays where it went")


class PersistenceGroupTest(HealthTest):
    SERVICES = ("rpc-epm", "rpc-mbx", "rpc-ab")

    def test_cas1_down_on_one_service_sends_every_new_client_of_all_three_to_cas2(self):
        ports = {name: free_port() for name in self.SERVICES}
        backends = {name: dict(zip(("cas1", "cas2"), self.named("cas1", "cas2"))) for name in self.SERVICES}
        services = [
            tcp_service(
                name,
                ports[name],
                [(rs, server.port) for rs, server in backends[name].items()],
                health_check=check("tcp"),
                persistence={"type": "source_ip", "group": "outlook"},
            )
            for name in self.SERVICES
        ]
        self.start_with_admin(services, persistence_groups={"outlook": {"timeout_s": 600}})
        for name in self.SERVICES:
            self.wait_checked(name, "cas1")

        backends["rpc-mbx"]["cas1"].stop()  # only the mailbox port of cas1 dies
        self.wait_state("rpc-mbx", "cas1", "down")
        for name in ("rpc-epm", "rpc-ab"):
            shown = self.server_status(name, "cas1")
            self.assertEqual(shown["state"], "down", shown)
            self.assertEqual(shown.get("detail"), "down in rpc-mbx", shown)
            self.assertTrue(shown["health"]["ok"], "its own check still passes")

        for i in range(10, 40):
            source = f"127.0.0.{i}"
            for name in self.SERVICES:
                self.assertEqual(name_of_connection(ports[name], source), "cas2", f"{source} on {name}")


class OnServerDownTest(HealthTest):
    def start_pair(self, on_server_down):
        port = free_port()
        cas1, cas2 = self.named("cas1", "cas2")
        self.start_with_admin(
            [
                tcp_service(
                    "rpc",
                    port,
                    [("cas1", cas1.port), ("cas2", cas2.port)],
                    health_check=check("tcp"),
                    on_server_down=on_server_down,
                )
            ]
        )
        self.wait_checked("rpc", "cas1")
        return port, {"cas1": cas1, "cas2": cas2}

    def hold_connection(self, port):
        held = self.client(port)
        return held, read_name(held)

    @staticmethod
    def stop_accepting(server):
        """The port closes but open connections stay up: only castellan can end them."""
        server.listener.close()

    def test_close_ends_the_connections_of_a_server_marked_down(self):
        port, servers = self.start_pair("close")
        held, name = self.hold_connection(port)
        self.stop_accepting(servers[name])
        self.wait_state("rpc", name, "down")
        self.assertTrue(is_closed(held, wait=0.5), "closed within one check interval" + self.log_tail())
        closed_by_us = lambda: [e for e in self.proxy.log_events("close") if e.get("reason") == "server_down"]
        self.assertTrue(wait_for(closed_by_us, timeout=2.0), self.log_tail())

    def test_keep_leaves_open_connections_alone(self):
        port, servers = self.start_pair("keep")
        held, name = self.hold_connection(port)
        self.stop_accepting(servers[name])
        self.wait_state("rpc", name, "down")
        self.assertFalse(is_closed(held, wait=0.7))
        held.sendall(b"ping")
        self.assertEqual(held.recv(4), b"ping")


if __name__ == "__main__":
    unittest.main()
