"""max_connections: clients beyond the limit wait in the accept backlog until a slot frees."""

import socket
import time
import unittest

from harness import IntegrationTest, free_port, make_config, read_name, tcp_service, wait_for


class MaxConnectionsTest(IntegrationTest):
    def start_proxy(self, limit, threads=2):
        (server,) = self.named("cas1")
        port = free_port()
        self.start(make_config([tcp_service("rpc", port, [("cas1", server.port)], max_connections=limit)], threads=threads))
        return server, port

    def assert_no_banner(self, sock, wait=1.0):
        sock.settimeout(wait)
        try:
            data = sock.recv(16)
        except socket.timeout:
            return
        finally:
            sock.settimeout(5)
        self.fail(f"served beyond max_connections: got {data!r}" + self.log_tail())

    def check_limit_of_two(self, threads):
        server, port = self.start_proxy(2, threads=threads)
        first = self.client(port)
        self.assertEqual(read_name(first), "cas1")
        second = self.client(port)
        self.assertEqual(read_name(second), "cas1")
        third = self.client(port)  # completes in the kernel's backlog
        self.assert_no_banner(third)
        self.assertEqual(server.connections, 2, "a third connection reached the real server")
        first.close()
        self.assertEqual(read_name(third, timeout=3), "cas1", self.log_tail())
        # The second still works, and the limit holds again: a fourth waits.
        second.sendall(b"ok\n")
        self.assertEqual(read_name(second), "ok")
        fourth = self.client(port)
        self.assert_no_banner(fourth)
        second.close()
        self.assertEqual(read_name(fourth, timeout=3), "cas1", self.log_tail())

    def test_third_client_waits_until_a_slot_frees(self):
        self.check_limit_of_two(threads=2)

    def test_limit_is_per_service_not_per_thread(self):
        self.check_limit_of_two(threads=4)

    def test_waiting_clients_are_served_in_turn(self):
        server, port = self.start_proxy(1)
        socks = [self.client(port) for _ in range(4)]
        self.assertEqual(read_name(socks[0]), "cas1")
        time.sleep(0.3)
        for s in socks[1:]:
            self.assert_no_banner(s, wait=0.2)
        served = 1
        for i in range(3):
            # Close the one being served; exactly one waiting client gets in.
            socks[i].close()
            got = None
            deadline = time.monotonic() + 3
            while got is None and time.monotonic() < deadline:
                for s in socks[i + 1:]:
                    s.settimeout(0.05)
                    try:
                        data = s.recv(5, socket.MSG_PEEK)
                    except socket.timeout:
                        continue
                    finally:
                        s.settimeout(5)
                    if data:
                        got = s
                        break
            self.assertIsNotNone(got, f"nobody served after close {i}" + self.log_tail())
            self.assertEqual(read_name(got), "cas1")
            served += 1
            # Put the served one in position i+1 so the next round closes it.
            j = socks.index(got)
            socks[i + 1], socks[j] = socks[j], socks[i + 1]
            for s in socks[i + 2:]:
                self.assert_no_banner(s, wait=0.2)
        self.assertEqual(served, 4)
        self.assertTrue(wait_for(lambda: server.connections == 4, 2.0))

    def test_zero_means_unlimited(self):
        server, port = self.start_proxy(0)
        socks = [self.client(port) for _ in range(20)]
        for s in socks:
            self.assertEqual(read_name(s), "cas1")


if __name__ == "__main__":
    unittest.main()
