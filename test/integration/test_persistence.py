"""source_ip persistence, alone and shared by a persistence group ("port following").

Client source addresses are 127.0.0.x: on Linux the whole 127/8 is local, so a
client socket can bind any of them before connecting.
"""

import collections
import unittest

from harness import IntegrationTest, free_port, make_config, name_of_connection, read_name, tcp_service


class PersistenceGroupTest(IntegrationTest):
    def start_three_services(self, scheduler="round_robin", threads=2):
        ports = [free_port() for _ in range(3)]
        services = []
        self.backends = []
        for i, port in enumerate(ports):
            cas1, cas2 = self.named("cas1", "cas2")
            self.backends.append((cas1, cas2))
            services.append(
                tcp_service(
                    f"rpc{i}",
                    port,
                    [("cas1", cas1.port), ("cas2", cas2.port)],
                    scheduler=scheduler,
                    persistence={"type": "source_ip", "group": "rpc"},
                )
            )
        self.start(make_config(services, threads=threads, persistence_groups={"rpc": {"timeout_s": 600}}))
        return ports

    def check_port_following(self, ports):
        orders = [(0, 1, 2), (2, 1, 0), (1, 0, 2), (1, 2, 0), (2, 0, 1), (0, 2, 1)]
        seen = {}
        for n in range(30):
            source = f"127.0.0.{10 + n}"
            order = orders[n % len(orders)]
            names = {i: name_of_connection(ports[i], source_ip=source) for i in order}
            self.assertEqual(
                len(set(names.values())), 1, f"client {source} (order {order}) reached {names}" + self.log_tail()
            )
            seen[source] = names[0]
        counts = collections.Counter(seen.values())
        self.assertEqual(set(counts), {"cas1", "cas2"}, f"only one server used: {counts}")
        return seen

    def test_30_clients_follow_across_three_services(self):
        ports = self.start_three_services()
        self.check_port_following(ports)

    def test_port_following_with_4_threads_and_least_connections(self):
        ports = self.start_three_services(scheduler="least_connections", threads=4)
        self.check_port_following(ports)

    def test_clients_stay_on_their_server_on_a_second_round(self):
        ports = self.start_three_services()
        first = self.check_port_following(ports)
        for n in range(30):
            source = f"127.0.0.{10 + n}"
            for i in (2, 0, 1):
                self.assertEqual(name_of_connection(ports[i], source_ip=source), first[source], f"client {source} service {i}")

    def test_held_connections_follow_too(self):
        # Outlook keeps its connections open: the second and third service are
        # reached while the first connection is still open.
        ports = self.start_three_services()
        names_used = set()
        for n in range(10):
            source = f"127.0.0.{50 + n}"
            socks = [self.client(p, source_ip=source) for p in ports[::-1]]
            names = [read_name(s) for s in socks]
            self.assertEqual(len(set(names)), 1, f"client {source} reached {names}" + self.log_tail())
            names_used.update(names)
            for s in socks:
                s.close()
        self.assertEqual(names_used, {"cas1", "cas2"})


class SourceIpPersistenceTest(IntegrationTest):
    def test_client_keeps_its_server_across_5_connections(self):
        cas1, cas2 = self.named("cas1", "cas2")
        port = free_port()
        self.start(
            make_config(
                [
                    tcp_service(
                        "smtp",
                        port,
                        [("cas1", cas1.port), ("cas2", cas2.port)],
                        scheduler="round_robin",
                        persistence={"type": "source_ip", "timeout_s": 600},
                    )
                ]
            )
        )
        used = collections.Counter()
        for n in range(6):
            source = f"127.0.0.{100 + n}"
            names = [name_of_connection(port, source_ip=source) for _ in range(5)]
            self.assertEqual(len(set(names)), 1, f"client {source} reached {names}" + self.log_tail())
            used[names[0]] += 1
        # Round robin assigns new clients alternately.
        self.assertEqual(set(used), {"cas1", "cas2"}, used)

    def test_without_persistence_round_robin_alternates(self):
        # The control: the same client moves between servers when nothing pins it.
        cas1, cas2 = self.named("cas1", "cas2")
        port = free_port()
        self.start(make_config([tcp_service("smtp", port, [("cas1", cas1.port), ("cas2", cas2.port)])]))
        names = [name_of_connection(port, source_ip="127.0.0.100") for _ in range(4)]
        self.assertEqual(collections.Counter(names), {"cas1": 2, "cas2": 2})


if __name__ == "__main__":
    unittest.main()
