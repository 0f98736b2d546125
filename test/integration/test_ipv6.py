"""IPv6: listeners on [::1], real servers on [::1], and IPv6 clients in logs and
source-IP persistence. Skipped where the machine has no IPv6 loopback."""

import collections
import socket
import threading
import unittest

from harness import HOST, IntegrationTest, make_config, read_name, tcp_service, wait_for

V6_HOST = "::1"


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind((V6_HOST, 0))
        return True
    except OSError:
        return False


def free_port_v6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind((V6_HOST, 0))
        return s.getsockname()[1]


class NamedServerV6:
    """Greets each connection with its name and a newline, then closes; on [::1]."""

    def __init__(self, name):
        self.name = name
        self.listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((V6_HOST, 0))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for _ in range(100000):  # bounded; stop() ends it long before
            if self.stopping.is_set():
                return
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.sendall((self.name + "\n").encode())
                except OSError:
                    pass

    def stop(self):
        self.stopping.set()
        self.listener.close()
        self.thread.join(5)


def name_via_v6(port, timeout=5.0):
    with socket.create_connection((V6_HOST, port), timeout=timeout) as sock:
        return read_name(sock, timeout)


@unittest.skipUnless(has_ipv6_loopback(), "no IPv6 loopback on this machine")
class Ipv6Test(IntegrationTest):
    def test_ipv6_listener_in_front_of_ipv4_servers(self):
        cas1, cas2 = self.named("cas1", "cas2")
        port = free_port_v6()
        service = tcp_service("rpc6", port, [("cas1", cas1.port), ("cas2", cas2.port)])
        service["listen"] = f"[{V6_HOST}]:{port}"
        proxy = self.start(make_config([service]))
        counts = collections.Counter(name_via_v6(port) for _ in range(10))
        self.assertEqual(counts, {"cas1": 5, "cas2": 5})
        closes = lambda: [e for e in proxy.log_events("close") if e.get("vs") == "rpc6"]
        self.assertTrue(wait_for(lambda: len(closes()) == 10, timeout=3.0), self.log_tail())
        self.assertTrue(all(e["client"].startswith("[::1]:") for e in closes()), closes())

    def test_ipv4_listener_in_front_of_ipv6_servers(self):
        servers = [NamedServerV6("cas1"), NamedServerV6("cas2")]
        for server in servers:
            self.addCleanup(server.stop)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        real = [{"name": s.name, "address": f"[{V6_HOST}]:{s.port}"} for s in servers]
        self.start(make_config([tcp_service("rpc", port, real)]))
        counts = collections.Counter()
        for _ in range(6):
            with socket.create_connection((HOST, port), timeout=5) as sock:
                counts[read_name(sock)] += 1
        self.assertEqual(counts, {"cas1": 3, "cas2": 3})

    def test_source_ip_persistence_for_an_ipv6_client(self):
        cas1, cas2 = self.named("cas1", "cas2")
        port = free_port_v6()
        service = tcp_service(
            "rpc6", port, [("cas1", cas1.port), ("cas2", cas2.port)], persistence={"type": "source_ip"}
        )
        service["listen"] = f"[{V6_HOST}]:{port}"
        self.start(make_config([service]))
        names = {name_via_v6(port) for _ in range(6)}
        self.assertEqual(len(names), 1, names)


if __name__ == "__main__":
    unittest.main()
