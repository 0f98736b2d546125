"""source_addresses, and castellan running out of local ports, in a private network namespace.

Each test makes a network namespace of its own (`ip netns add`, deleted in its
cleanup), brings its loopback up and narrows its ephemeral port range to ten ports
(net.ipv4.ip_local_port_range is per namespace: setUp checks that the host's range
did not change). The real server, castellan and every client live in that
namespace: the test's thread enters it (setns) to make their sockets and to start
castellan, and leaves it at once. Loopback answers all of 127/8, so 127.0.0.2-4
are three more local addresses with no setup.

The listeners use fixed ports below the ephemeral range: nothing else lives in a
fresh namespace, and a port 0 listener would take one of the ten ports. Clients
bind fixed source ports below the range too, so that only castellan's connects to
the real server draw on the ten. The admin API is read over such a client as well.

Skipped, with the reason, when not root or when namespaces cannot be made here.
"""

import collections
import itertools
import json
import os
import shutil
import socket
import time
import unittest

from harness import (
    SOCKET_TIMEOUT,
    IntegrationTest,
    NamedServer,
    TcpServer,
    make_config,
    read_name,
    read_to_end,
    tcp_service,
    wait_for,
)
from netns_topology import Namespace

RANGE = (40000, 40009)  # ten ephemeral ports
RANGE_SIZE = RANGE[1] - RANGE[0] + 1
SERVER_PORT, LISTEN_PORT, ADMIN_PORT = 30001, 30002, 30003
FIRST_CLIENT_PORT = 32000  # clients' source ports: below the range, above the listeners
SOURCES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
_names = itertools.count()


def host_port_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return tuple(int(x) for x in f.read().split())


class NetNamespace(Namespace):
    """A named network namespace with loopback up and a ten-port ephemeral range; close() deletes it."""

    def __init__(self):
        super().__init__(f"castellan-it-{os.getpid()}-{next(_names)}")
        try:
            self.exec("sysctl", "-qw", f"net.ipv4.ip_local_port_range={RANGE[0]} {RANGE[1]}")
        except BaseException:
            self.close()
            raise

    def port_range(self):
        """The range as the namespace sees it."""
        done = self.exec("sysctl", "-n", "net.ipv4.ip_local_port_range")
        return tuple(int(x) for x in done.stdout.split())


class KeepAliveHttpServer(TcpServer):
    """Answers every GET on a connection with 200 and its name, keeping the connection open."""

    def __init__(self, name, port):
        self.name = name
        super().__init__(port)

    def handle(self, conn):
        pending = b""
        while True:
            while b"\r\n\r\n" not in pending:
                chunk = self.recv(conn, 4096)
                if not chunk:
                    return
                pending += chunk
            _, pending = pending.split(b"\r\n\r\n", 1)
            body = (self.name + "\n").encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            if not self.sendall(conn, head + body):
                return


def read_http_response(sock, timeout=SOCKET_TIMEOUT):
    """(status, body) of one response with a Content-Length, or (None, b"") if the connection ends first."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _content_length(data):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout(f"no complete response within {timeout} s: {data!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = b""
        if not chunk:
            return None, b""
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split(b" ", 2)[1]), body


def _content_length(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            return int(value.strip())
    return 0


@unittest.skipUnless(hasattr(os, "geteuid") and os.geteuid() == 0, "needs root to make network namespaces")
@unittest.skipUnless(shutil.which("ip"), "needs iproute2's ip to make network namespaces")
class SourceAddressesTest(IntegrationTest):
    def setUp(self):
        host_range = host_port_range()
        self.ns = NetNamespace()
        self.addCleanup(self.ns.close)
        self.assertEqual(self.ns.port_range(), RANGE)
        self.assertEqual(host_port_range(), host_range, "the range must change in the namespace only")
        self._client_ports = itertools.count(FIRST_CLIENT_PORT)

    # -- in the namespace ---------------------------------------------------

    def ns_socket(self, timeout=SOCKET_TIMEOUT):
        """A TCP socket in the namespace, bound to 127.0.0.1 and a source port below the range."""
        with self.ns.entered():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", next(self._client_ports)))
        except BaseException:
            sock.close()
            raise
        self.addCleanup(sock.close)
        return sock

    def ns_serve(self, make):
        with self.ns.entered():
            server = make()
        return self.serve(server)

    def ns_start(self, config):
        with self.ns.entered():
            return self.start(config)

    def admin_get(self, path):
        sock = self.ns_socket()
        try:
            sock.connect(("127.0.0.1", ADMIN_PORT))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            data, how = read_to_end(sock)
        finally:
            sock.close()
        self.assertEqual(how, "eof", f"admin {path}: {data[:200]!r}")
        head, body = data.split(b"\r\n\r\n", 1)
        self.assertIn(b" 200 ", head.split(b"\r\n")[0])
        return body.decode()

    def server_status(self, vs="rpc", rs="cas1"):
        status = json.loads(self.admin_get("/api/v1/status"))
        (service,) = [s for s in status["virtual_services"] if s["name"] == vs]
        (server,) = [s for s in service["real_servers"] if s["name"] == rs]
        return service, server

    def metric(self, name, vs="rpc", rs="cas1"):
        prefix = f'{name}{{virtual_service="{vs}",real_server="{rs}"}} '
        for line in self.admin_get("/metrics").splitlines():
            if line.startswith(prefix):
                return int(line[len(prefix):])
        self.fail(f"no {prefix!r} in /metrics")

    # -- clients --------------------------------------------------------------

    def tcp_client(self, names=("cas1",)):
        """A tcp-mode client: its socket once a real server's name came through, else None (closed by castellan)."""
        sock = self.ns_socket()
        sock.connect(("127.0.0.1", LISTEN_PORT))
        try:
            name = read_name(sock)
        except EOFError:
            data, how = read_to_end(sock, timeout=1)
            self.assertEqual(data, b"", "a refused client gets no byte")
            sock.close()
            return None
        except ConnectionResetError:
            sock.close()
            return None
        self.assertIn(name, names)
        return sock

    def http_client(self):
        """An http-mode client with one answered request on its connection, else None (it got a 503)."""
        sock = self.ns_socket()
        sock.connect(("127.0.0.1", LISTEN_PORT))
        sock.sendall(b"GET /owa/ HTTP/1.1\r\nHost: mail.contoso.com\r\n\r\n")
        status, body = read_http_response(sock)
        if status == 200:
            self.assertEqual(body, b"cas1\n")
            return sock
        self.assertEqual(status, 503, self.log_tail())
        sock.close()
        return None

    def hold_until_refused(self, client, limit=RANGE_SIZE * len(SOURCES) + 5):
        """Opens clients and keeps them open until castellan refuses one; gives the ones held."""
        held = []
        for _ in range(limit):
            sock = client()
            if sock is None:
                return held
            held.append(sock)
        self.fail(f"{limit} clients held and none refused" + self.log_tail())

    def fill(self, client, want, seconds=20.0):
        """Opens clients until `want` are held, retrying after refusals (ports that other
        connects left in TIME_WAIT come free after a second); gives (held, refused)."""
        held, refused = [], 0
        deadline = time.monotonic() + seconds
        while len(held) < want and time.monotonic() < deadline:
            sock = client()
            if sock is None:
                refused += 1
                time.sleep(0.25)
            else:
                held.append(sock)
        self.assertEqual(len(held), want, f"only {len(held)} held in {seconds} s" + self.log_tail())
        return held, refused

    def config(self, service, **extra):
        return make_config([service], admin={"listen": f"127.0.0.1:{ADMIN_PORT}"}, **extra)

    def rpc_service(self, **extra):
        return tcp_service("rpc", LISTEN_PORT, [("cas1", SERVER_PORT)], **extra)

    # -- the tests ------------------------------------------------------------

    def test_out_of_local_ports_fails_the_client_and_not_the_server(self):
        real = self.ns_serve(lambda: NamedServer("cas1", port=SERVER_PORT))
        # The check shares the ten ports with the clients' connections (the
        # kernel's choice of address, the server's own port); fall 1 would mark
        # the server down at the first check counted as failed.
        check = {"type": "tcp", "interval_ms": 300, "timeout_ms": 200, "fall": 1, "rise": 1}
        proxy = self.ns_start(self.config(self.rpc_service(health_check=check), threads=2))
        started = time.monotonic()

        # All ten ports held by clients' connections (a check that took one for
        # a moment leaves it in TIME_WAIT for a second: fill retries).
        held, refused_while_filling = self.fill(self.tcp_client, RANGE_SIZE)
        self.assertEqual(real.active, RANGE_SIZE)

        # Now every new client fails, closed without a byte, and so does every check.
        for i in range(3):
            self.assertIsNone(self.tcp_client(), f"client {i} beyond the range was served" + self.log_tail())
        time.sleep(1.2)  # four checks' worth

        service, server = self.server_status()
        self.assertEqual(server["state"], "up", self.log_tail())
        self.assertEqual(server["connect_failures"], 0, self.log_tail())
        self.assertGreaterEqual(server["local_connect_failures"], 3 + refused_while_filling)
        self.assertEqual(server["connections_active"], RANGE_SIZE)
        self.assertEqual(
            self.metric("castellan_real_server_local_connect_failures_total"), server["local_connect_failures"]
        )
        self.assertEqual(self.metric("castellan_real_server_connect_failures_total"), 0)
        self.assertEqual(proxy.log_events("server_state"), [], self.log_tail())
        self.assertEqual(proxy.log_events("connect_failed"), [], self.log_tail())
        self.assertEqual(proxy.log_events("service_unavailable"), [], self.log_tail())

        # Logged as castellan's own shortage, once per 10 s however many clients failed.
        closes = lambda: [e for e in proxy.log_events("close") if e.get("reason") == "local_ports_exhausted"]
        self.assertTrue(wait_for(lambda: len(closes()) >= 3, timeout=5.0), self.log_tail())
        lines = [e for e in proxy.log_events("local_ports_exhausted") if e.get("vs") == "rpc"]
        self.assertGreaterEqual(len(lines), 1, self.log_tail())
        self.assertLessEqual(len(lines), 1 + int((time.monotonic() - started) // 10), self.log_tail())
        first = lines[0]
        self.assertEqual(first["server"], "cas1")
        self.assertEqual(first["address"], f"127.0.0.1:{SERVER_PORT}")
        self.assertEqual(first["source"], "kernel")
        self.assertEqual(first["suppressed"], "0")
        self.assertIn("ip_local_port_range", first["remedy"])
        self.assertIn("source_addresses", first["remedy"])
        self.assertIn("level=error", [l for l in proxy.stderr_lines() if "event=local_ports_exhausted" in l][0])
        # The checks that found no port were not counted, and said so.
        checks = [e for e in proxy.log_events("local_ports_exhausted") if e.get("check") == "tcp"]
        self.assertGreaterEqual(len(checks), 1, self.log_tail())
        self.assertEqual(checks[0]["counted"], "no")
        self.assertEqual(checks[0]["server"], f"cas1@127.0.0.1:{SERVER_PORT}")

        # Ports come back as clients leave: served again, and the checks pass again.
        for sock in held[:3]:
            sock.close()
        served = wait_for(self.tcp_client, timeout=5.0, interval=0.25)
        self.assertIsNotNone(served, "not served again after clients left" + self.log_tail())
        passed = lambda: (self.server_status()[1]["health"] or {}).get("ok")
        self.assertTrue(wait_for(passed, timeout=5.0, interval=0.3), "no check passed again" + self.log_tail())
        self.assertEqual(self.server_status()[1]["state"], "up")

    def test_three_source_addresses_take_three_times_the_connections_to_one_server(self):
        real = self.ns_serve(lambda: NamedServer("cas1", port=SERVER_PORT))
        no_check = {"type": "none", "fall": 1}

        proxy = self.ns_start(self.config(self.rpc_service(health_check=no_check), threads=2))
        alone = self.hold_until_refused(self.tcp_client)
        self.assertEqual(len(alone), RANGE_SIZE, self.log_tail())
        for sock in alone:
            sock.close()
        proxy.stop()
        wait_for(lambda: real.active == 0, timeout=5.0)
        real.peers.clear()

        # Two workers, each connection to cas1 taking the next address; one
        # with no port left on its address goes on to the next.
        proxy = self.ns_start(self.config(self.rpc_service(health_check=no_check, source_addresses=SOURCES), threads=2))
        held = self.hold_until_refused(self.tcp_client)
        self.assertEqual(len(held), len(SOURCES) * len(alone), self.log_tail())
        self.assertEqual(real.active, len(held))
        by_source = collections.Counter(host for host, _ in real.peers)
        self.assertEqual(by_source, {source: RANGE_SIZE for source in SOURCES})

        _, server = self.server_status()
        self.assertEqual(server["state"], "up")
        self.assertEqual(server["connect_failures"], 0)
        self.assertEqual(server["local_connect_failures"], 1)
        self.assertTrue(wait_for(lambda: proxy.log_events("local_ports_exhausted"), timeout=5.0), self.log_tail())
        (line,) = proxy.log_events("local_ports_exhausted")
        self.assertEqual(line["sources_tried"], "3", self.log_tail())
        self.assertIn(line["source"], SOURCES)
        self.assertEqual(proxy.log_events("server_state"), [])

    def test_each_source_address_gives_a_full_range_per_real_server(self):
        # IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect() for each real
        # server, not reserved by bind() against every destination (which would
        # share the ten ports between the two servers).
        servers = [
            self.ns_serve(lambda p=port, n=name: NamedServer(n, port=p))
            for name, port in (("cas1", SERVER_PORT), ("cas2", SERVER_PORT + 3))
        ]
        service = tcp_service(
            "rpc",
            LISTEN_PORT,
            [("cas1", SERVER_PORT), ("cas2", SERVER_PORT + 3)],
            health_check={"type": "none", "fall": 1},
            source_addresses=["127.0.0.2"],
        )
        self.ns_start(self.config(service, threads=1))
        held = self.hold_until_refused(lambda: self.tcp_client(names=("cas1", "cas2")))
        self.assertEqual(len(held), 2 * RANGE_SIZE, self.log_tail())
        for server in servers:
            self.assertEqual(server.active, RANGE_SIZE)
            self.assertEqual({host for host, _ in server.peers}, {"127.0.0.2"})

    def test_a_source_address_not_on_this_host_is_skipped_and_logged(self):
        real = self.ns_serve(lambda: NamedServer("cas1", port=SERVER_PORT))
        # 192.0.2.77 (TEST-NET-1) is on no interface of the namespace: bind() refuses it.
        service = self.rpc_service(health_check={"type": "none", "fall": 1}, source_addresses=["192.0.2.77", "127.0.0.2"])
        proxy = self.ns_start(self.config(service, threads=1))
        held = [self.tcp_client() for _ in range(4)]
        self.assertNotIn(None, held, self.log_tail())
        self.assertEqual({host for host, _ in real.peers}, {"127.0.0.2"})
        _, server = self.server_status()
        self.assertEqual((server["state"], server["connect_failures"], server["local_connect_failures"]), ("up", 0, 0))
        self.assertTrue(wait_for(lambda: proxy.log_events("source_address_unavailable"), timeout=5.0), self.log_tail())
        (line,) = proxy.log_events("source_address_unavailable")  # four bind failures, one line
        self.assertEqual(line["source"], "192.0.2.77")
        self.assertEqual(line["server"], "cas1")
        self.assertIn("remove it from source_addresses", line["remedy"])

    def test_http_mode_answers_503_when_out_of_local_ports(self):
        self.ns_serve(lambda: KeepAliveHttpServer("cas1", port=SERVER_PORT))
        service = self.rpc_service(mode="http", health_check={"type": "none", "fall": 1})
        proxy = self.ns_start(self.config(service, threads=2))
        # Each client connection keeps its own connection to the real server.
        held = self.hold_until_refused(self.http_client)
        self.assertEqual(len(held), RANGE_SIZE, self.log_tail())
        self.assertIsNone(self.http_client())
        _, server = self.server_status()
        self.assertEqual((server["state"], server["connect_failures"]), ("up", 0))
        self.assertEqual(server["local_connect_failures"], 2)
        refusals = lambda: [e for e in proxy.log_events("request") if e.get("status") == "503"]
        self.assertTrue(wait_for(lambda: len(refusals()) == 2, timeout=5.0), self.log_tail())
        self.assertEqual([e.get("reason") for e in refusals()], ["local_ports_exhausted"] * 2)
        # A held connection still works: its server connection was never at stake.
        held[0].sendall(b"GET /owa/ HTTP/1.1\r\nHost: mail.contoso.com\r\n\r\n")
        self.assertEqual(read_http_response(held[0]), (200, b"cas1\n"))


if __name__ == "__main__":
    unittest.main()
