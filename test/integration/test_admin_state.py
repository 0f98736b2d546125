"""Drain, disable and enable a real server through the admin API (INTERFACE.md)."""

import collections
import json
import os
import shutil
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import (
    IntegrationTest,
    addr,
    admin_call,
    free_port,
    is_closed,
    make_config,
    name_of_connection,
    read_name,
    recv_exactly,
    tcp_service,
    wait_for,
)

TOKEN = "demo-token-123"


class AdminStateTest(IntegrationTest):
    def setUp(self):
        super().setUp()
        self.folder = tempfile.mkdtemp(prefix="castellan-admin-")
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.token_file = os.path.join(self.folder, "admin.token")
        with open(self.token_file, "w") as out:
            out.write(f"  {TOKEN}\n")  # surrounding whitespace is stripped
        self.admin_port = free_port()
        self.port = free_port()
        cas1, cas2 = self.named("cas1", "cas2")
        self.start(
            make_config(
                [tcp_service("rpc", self.port, [("cas1", cas1.port), ("cas2", cas2.port)])],
                admin={"listen": addr(self.admin_port), "token_file": self.token_file},
            )
        )

    def call(self, service, server, body, token=TOKEN):
        path = f"/api/v1/virtual-services/{service}/real-servers/{server}/state"
        status, raw = admin_call(self.admin_port, "POST", path, body, token, timeout=5)
        return status, json.loads(raw or b"null")

    def server_state(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/api/v1/status", timeout=5) as response:
            status = json.loads(response.read())
        (service,) = status["virtual_services"]
        return {s["name"]: s["state"] for s in service["real_servers"]}[name]

    def spread(self, count):
        return collections.Counter(name_of_connection(self.port) for _ in range(count))

    def test_drain_takes_no_new_clients_and_enable_brings_it_back(self):
        held = self.client(self.port)  # an open connection survives the drain of its server
        drained = read_name(held)
        other = {"cas1": "cas2", "cas2": "cas1"}[drained]
        status, body = self.call("rpc", drained, {"state": "drain"})
        self.assertEqual((status, body["state"]), (200, "draining"))
        self.assertEqual(self.server_state(drained), "draining")
        self.assertEqual(self.spread(10), {other: 10})
        held.sendall(b"still here")
        self.assertEqual(recv_exactly(held, len(b"still here")), b"still here")
        status, _ = self.call("rpc", drained, {"state": "enabled"})
        self.assertEqual(status, 200)
        self.assertEqual(self.server_state(drained), "up")
        self.assertEqual(self.spread(10), {"cas1": 5, "cas2": 5})

    def test_drain_timeout_closes_what_is_left(self):
        # A service of its own with drain_timeout_s 1: the held connection outlives
        # the drain by about a second, then castellan closes it.
        port = free_port()
        (cas3,) = self.named("cas3")
        self.proxy.stop()
        self.start(
            make_config(
                [tcp_service("smtp", port, [("cas3", cas3.port)], drain_timeout_s=1)],
                admin={"listen": addr(self.admin_port), "token_file": self.token_file},
            )
        )
        held = self.client(port)
        self.assertEqual(read_name(held), "cas3")
        drained_at = time.monotonic()
        self.assertEqual(self.call("smtp", "cas3", {"state": "drain"})[0], 200)
        self.assertFalse(is_closed(held, wait=0.6), "closed before drain_timeout_s")
        self.assertTrue(is_closed(held, wait=2.0), "still open after drain_timeout_s" + self.log_tail())
        self.assertLess(time.monotonic() - drained_at, 2.5)
        closes = lambda: [e for e in self.proxy.log_events("close") if e.get("reason") == "drain_timeout"]
        self.assertTrue(wait_for(closes, timeout=2.0), self.log_tail())

    def test_metrics_show_counters_and_states(self):
        self.assertEqual(sum(self.spread(4).values()), 4)
        self.assertEqual(self.call("rpc", "cas2", {"state": "drain"})[0], 200)
        url = f"http://127.0.0.1:{self.admin_port}/metrics"

        def metrics():
            with urllib.request.urlopen(url, timeout=5) as response:
                self.assertTrue(response.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
                return response.read().decode().splitlines()

        # The counters are added when each connection closes: wait for the fourth.
        total = 'castellan_virtual_service_connections_total{virtual_service="rpc"} 4'
        self.assertTrue(wait_for(lambda: total in metrics(), timeout=3.0), "\n".join(metrics()))
        lines = metrics()
        self.assertIn('castellan_real_server_connections_total{virtual_service="rpc",real_server="cas1"} 2', lines)
        self.assertIn('castellan_real_server_state{virtual_service="rpc",real_server="cas2",state="draining"} 1', lines)
        self.assertIn('castellan_real_server_state{virtual_service="rpc",real_server="cas1",state="up"} 1', lines)
        self.assertIn("# TYPE castellan_virtual_service_bytes_in_total counter", lines)
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=5)
        self.assertEqual(refused.exception.code, 405)

    def test_disabled(self):
        status, body = self.call("rpc", "cas2", {"state": "disabled"})
        self.assertEqual((status, body["state"]), (200, "disabled"))
        self.assertEqual(self.spread(6), {"cas1": 6})

    def test_errors(self):
        self.assertEqual(self.call("rpc", "cas1", {"state": "drain"}, token=None)[0], 401)
        self.assertEqual(self.call("rpc", "cas1", {"state": "drain"}, token="wrong")[0], 401)
        self.assertEqual(self.call("nope", "cas1", {"state": "drain"})[0], 404)
        self.assertEqual(self.call("rpc", "cas9", {"state": "drain"})[0], 404)
        self.assertEqual(self.call("rpc", "cas1", {"state": "asleep"})[0], 400)
        self.assertEqual(self.call("rpc", "cas1", b"{not json")[0], 400)
        # None of those changed anything.
        self.assertEqual(self.server_state("cas1"), "up")


if __name__ == "__main__":
    unittest.main()
