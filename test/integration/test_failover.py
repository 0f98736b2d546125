"""A real server that refuses connections: clients are moved to a live one before they see a byte."""

import collections
import time
import unittest

from harness import (
    IntegrationTest,
    NamedServer,
    closed_port,
    free_port,
    make_config,
    name_of_connection,
    read_to_end,
    tcp_service,
)


class FailoverTest(IntegrationTest):
    def test_one_dead_server_20_of_20_succeed(self):
        (live,) = self.named("live")
        dead = closed_port()
        port = free_port()
        self.start(make_config([tcp_service("rpc", port, [("dead", dead), ("live", live.port)], scheduler="round_robin")]))
        names, failures = [], []
        for i in range(20):
            try:
                names.append(name_of_connection(port))
            except (OSError, EOFError) as error:
                failures.append(f"connection {i}: {error!r}")
        self.assertEqual(failures, [], self.log_tail())
        self.assertEqual(collections.Counter(names), {"live": 20})
        self.assertEqual(live.connections, 20)

    def test_dead_server_first_in_list_with_4_threads(self):
        (live,) = self.named("live")
        port = free_port()
        config = make_config(
            [tcp_service("rpc", port, [("dead1", closed_port()), ("dead2", closed_port()), ("live", live.port)])],
            threads=4,
        )
        self.start(config)
        names = [name_of_connection(port) for _ in range(20)]
        self.assertEqual(collections.Counter(names), {"live": 20}, self.log_tail())

    def test_each_scheduler_fails_over(self):
        for scheduler in ("round_robin", "weighted_round_robin", "least_connections", "source_hash"):
            with self.subTest(scheduler=scheduler):
                (live,) = self.named("live")
                port = free_port()
                servers = [
                    {"name": "dead", "address": f"127.0.0.1:{closed_port()}", "weight": 3},
                    {"name": "live", "address": live.address, "weight": 1},
                ]
                proxy = self.start(make_config([tcp_service("rpc", port, servers, scheduler=scheduler)]))
                try:
                    names = []
                    for i in range(10):
                        # Vary the client address so source_hash lands on the dead one too.
                        names.append(name_of_connection(port, source_ip=f"127.0.0.{10 + i}"))
                    self.assertEqual(collections.Counter(names), {"live": 10}, self.log_tail())
                finally:
                    proxy.stop()
                    live.stop()

    def test_failover_with_persistence_to_a_dead_server(self):
        (live,) = self.named("live")
        port = free_port()
        config = make_config(
            [tcp_service("rpc", port, [("dead", closed_port()), ("live", live.port)], persistence={"type": "source_ip", "timeout_s": 600})]
        )
        self.start(config)
        for i in range(10):
            self.assertEqual(name_of_connection(port, source_ip=f"127.0.0.{20 + i}"), "live", self.log_tail())

    def test_all_servers_dead_closes_the_client_without_data(self):
        port = free_port()
        config = make_config([tcp_service("rpc", port, [("dead1", closed_port()), ("dead2", closed_port())], timeouts={"connect_ms": 500})])
        self.start(config)
        for i in range(3):
            sock = self.client(port)
            started = time.monotonic()
            data, how = read_to_end(sock, timeout=5)
            self.assertEqual(data, b"", f"connection {i}")
            self.assertIn(how, ("eof", "reset"), f"connection {i}: not closed within 5 s" + self.log_tail())
            self.assertLess(time.monotonic() - started, 5)
            sock.close()

    def test_dead_server_is_tried_again_after_it_comes_back(self):
        # With health_check none, a server whose connects failed `fall` times is
        # skipped for 10 s, then tried again: once it listens, it gets clients.
        (live,) = self.named("live")
        revived_port = closed_port()
        port = free_port()
        self.start(make_config([tcp_service("rpc", port, [("a", revived_port), ("live", live.port)])]))
        names = [name_of_connection(port) for _ in range(6)]
        self.assertEqual(set(names), {"live"}, self.log_tail())
        self.serve(NamedServer("a", port=revived_port))
        deadline = time.monotonic() + 20
        seen = set()
        while time.monotonic() < deadline and "a" not in seen:  # at most ~80 connections
            seen.add(name_of_connection(port))
            time.sleep(0.25)
        self.assertIn("a", seen, "the revived server never got a client within 20 s" + self.log_tail())


if __name__ == "__main__":
    unittest.main()
