"""Schedulers seen from outside: who answers each new connection."""

import collections
import threading
import time
import unittest

from harness import IntegrationTest, free_port, make_config, name_of_connection, read_name, tcp_service, wait_for


class RoundRobinTest(IntegrationTest):
    def run_round_robin(self, threads):
        a, b = self.named("a", "b")
        port = free_port()
        self.start(make_config([tcp_service("web", port, [("a", a.port), ("b", b.port)], scheduler="round_robin")], threads=threads))
        names = [name_of_connection(port) for _ in range(20)]
        counts = collections.Counter(names)
        self.assertEqual(counts, {"a": 10, "b": 10}, f"sequence {names}" + self.log_tail())
        # The servers saw the same split the clients did.
        self.assertTrue(wait_for(lambda: a.connections + b.connections == 20, 2.0))
        self.assertEqual((a.connections, b.connections), (10, 10))

    def test_two_servers_10_10_over_20_connections(self):
        self.run_round_robin(threads=2)

    def test_exact_with_4_threads(self):
        self.run_round_robin(threads=4)

    def test_exact_with_1_thread(self):
        self.run_round_robin(threads=1)

    def test_round_robin_ignores_weights(self):
        a, b = self.named("a", "b")
        port = free_port()
        servers = [{"name": "a", "address": a.address, "weight": 3}, {"name": "b", "address": b.address, "weight": 1}]
        self.start(make_config([tcp_service("web", port, servers, scheduler="round_robin")]))
        counts = collections.Counter(name_of_connection(port) for _ in range(20))
        self.assertEqual(counts, {"a": 10, "b": 10}, self.log_tail())

    def test_default_scheduler_is_round_robin(self):
        a, b = self.named("a", "b")
        port = free_port()
        self.start(make_config([tcp_service("web", port, [("a", a.port), ("b", b.port)])]))
        counts = collections.Counter(name_of_connection(port) for _ in range(20))
        self.assertEqual(counts, {"a": 10, "b": 10}, self.log_tail())

    def test_three_servers_alternate(self):
        servers = self.named("a", "b", "c")
        port = free_port()
        self.start(make_config([tcp_service("web", port, [(s.name, s.port) for s in servers], scheduler="round_robin")], threads=4))
        names = [name_of_connection(port) for _ in range(30)]
        self.assertEqual(collections.Counter(names), {"a": 10, "b": 10, "c": 10}, f"sequence {names}")
        # Each window of three consecutive connections visits every server once.
        for i in range(0, 30, 3):
            self.assertEqual(sorted(names[i:i + 3]), ["a", "b", "c"], f"sequence {names}")

    def test_concurrent_clients_still_exact(self):
        # 40 connections opened from 4 client threads at once: the split is still exact.
        a, b = self.named("a", "b")
        port = free_port()
        self.start(make_config([tcp_service("web", port, [("a", a.port), ("b", b.port)])], threads=4))
        names, errors, lock = [], [], threading.Lock()

        def worker():
            for _ in range(10):
                try:
                    name = name_of_connection(port)
                except Exception as error:  # noqa: BLE001 - reported below
                    with lock:
                        errors.append(repr(error))
                    return
                with lock:
                    names.append(name)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(collections.Counter(names), {"a": 20, "b": 20}, self.log_tail())


class WeightedRoundRobinTest(IntegrationTest):
    def test_weights_3_and_1_over_40_connections(self):
        a, b = self.named("a", "b")
        port = free_port()
        servers = [{"name": "a", "address": a.address, "weight": 3}, {"name": "b", "address": b.address, "weight": 1}]
        self.start(make_config([tcp_service("web", port, servers, scheduler="weighted_round_robin")]))
        names = [name_of_connection(port) for _ in range(40)]
        counts = collections.Counter(names)
        self.assertLessEqual(abs(counts["a"] - 30), 2, f"{counts} sequence {names}")
        self.assertLessEqual(abs(counts["b"] - 10), 2, f"{counts} sequence {names}")

    def test_smooth_interleave_5_1_1(self):
        # A smooth weighted round robin never sends 5 in a row to the heavy server.
        servers_ = self.named("a", "b", "c")
        port = free_port()
        weights = {"a": 5, "b": 1, "c": 1}
        servers = [{"name": s.name, "address": s.address, "weight": weights[s.name]} for s in servers_]
        self.start(make_config([tcp_service("web", port, servers, scheduler="weighted_round_robin")], threads=4))
        names = [name_of_connection(port) for _ in range(28)]
        counts = collections.Counter(names)
        self.assertEqual(counts, {"a": 20, "b": 4, "c": 4}, f"sequence {names}")
        run = longest = 0
        previous = None
        for name in names:
            run = run + 1 if name == previous else 1
            previous = name
            longest = max(longest, run)
        self.assertLess(longest, 5, f"sequence {names}")


class LeastConnectionsTest(IntegrationTest):
    def test_new_connection_goes_to_the_less_loaded_server(self):
        a, b = self.named("a", "b")
        servers = {"a": a, "b": b}
        port = free_port()
        self.start(make_config([tcp_service("web", port, [("a", a.port), ("b", b.port)], scheduler="least_connections")]))

        # Two held connections land on different servers.
        c1 = self.client(port)
        n1 = read_name(c1)
        c2 = self.client(port)
        n2 = read_name(c2)
        self.assertNotEqual(n1, n2, self.log_tail())

        # Close the second one; round robin would now pick n1 again, least
        # connections must pick n2 (0 open) over n1 (1 open).
        c2.close()
        self.assertTrue(wait_for(lambda: servers[n2].active == 0, 3.0), "the server did not see the close")
        time.sleep(0.3)  # let the proxy finish the session after the server side closed
        c3 = self.client(port)
        self.assertEqual(read_name(c3), n2, self.log_tail())

    def test_fills_the_emptied_server(self):
        a, b = self.named("a", "b")
        servers = {"a": a, "b": b}
        port = free_port()
        self.start(make_config([tcp_service("web", port, [("a", a.port), ("b", b.port)], scheduler="least_connections")]))

        held = []
        for _ in range(4):
            sock = self.client(port)
            held.append((read_name(sock), sock))
        self.assertEqual(collections.Counter(n for n, _ in held), {"a": 2, "b": 2}, self.log_tail())

        # Close both connections of one server: the next two both go there.
        emptied = held[0][0]
        for name, sock in held:
            if name == emptied:
                sock.close()
        self.assertTrue(wait_for(lambda: servers[emptied].active == 0, 3.0), "the server did not see the closes")
        time.sleep(0.3)
        names = []
        for _ in range(2):
            sock = self.client(port)
            names.append(read_name(sock))
        self.assertEqual(names, [emptied, emptied], self.log_tail())

    def test_weighted_least_connections(self):
        # active/weight with a weighing 2: six held connections split 4 to a, 2 to b
        # whichever way the ties are broken.
        a, b = self.named("a", "b")
        port = free_port()
        servers = [{"name": "a", "address": a.address, "weight": 2}, {"name": "b", "address": b.address, "weight": 1}]
        self.start(make_config([tcp_service("web", port, servers, scheduler="least_connections")]))
        names = []
        for _ in range(6):
            sock = self.client(port)
            names.append(read_name(sock))
        self.assertEqual(collections.Counter(names), {"a": 4, "b": 2}, f"sequence {names}" + self.log_tail())


if __name__ == "__main__":
    unittest.main()
