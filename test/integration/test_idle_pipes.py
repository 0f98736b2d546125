"""Descriptors of idle connections that once carried bulk data (issue 11, point 2).

A direction that turns into a bulk transfer splices through a pipe (two
descriptors). Once the pipe is empty and the direction waits for data, the pipe
goes back to the worker's pool: a connection that carried 4 MiB and then idles
holds its two sockets and nothing else, like one that never carried a byte.
Before this, each such connection kept its pipe until it closed (+2 descriptors
per connection here, +4 when both directions had spliced).
"""

import os
import socket

from harness import IntegrationTest, SinkServer, free_port, make_config, tcp_service, wait_for

CONNECTIONS = 100
PAYLOAD = 4 * 1024 * 1024
# The worker's listener, pool of spare pipes (the transfers here run one after
# the other, so one or two pipes per worker), the admin socket: a few dozen at
# most, independent of the number of connections.
SMALL_CONSTANT = 16


def descriptor_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class IdleConnectionsHoldNoPipes(IntegrationTest):
    def test_connections_that_carried_4_mib_then_idle_hold_two_descriptors_each(self):
        server = self.serve(SinkServer())
        port = free_port()
        proxy = self.start(make_config([tcp_service("bulk", port, [("s", server.port)])], threads=2))
        baseline = descriptor_count(proxy.pid)

        block = memoryview(os.urandom(256 * 1024))
        clients = []
        for index in range(CONNECTIONS):
            sock = self.client(port, timeout=30)
            for _ in range(PAYLOAD // len(block)):  # bounded: 16 blocks
                sock.sendall(block)
            clients.append(sock)
            expected = (index + 1) * PAYLOAD
            self.assertTrue(
                wait_for(lambda: server.bytes_received >= expected, timeout=30),
                f"connection {index}: server has {server.bytes_received} of {expected} bytes" + self.log_tail(),
            )

        # Every byte arrived, so every direction has seen its socket drained and
        # waits for data.
        held = descriptor_count(proxy.pid)
        limit = baseline + 2 * CONNECTIONS + SMALL_CONSTANT
        self.assertLessEqual(
            held, limit,
            f"{CONNECTIONS} idle connections hold {held - baseline} descriptors over the baseline "
            f"({baseline}); at most {2 * CONNECTIONS} + {SMALL_CONSTANT} expected" + self.log_tail(),
        )

        # The connections still work after idling without their pipes.
        for sock in clients[:5]:
            sock.sendall(block)
        total = CONNECTIONS * PAYLOAD + 5 * len(block)
        self.assertTrue(wait_for(lambda: server.bytes_received >= total, timeout=30), self.log_tail())

        for sock in clients:
            sock.shutdown(socket.SHUT_WR)
            sock.close()
        self.assertTrue(
            wait_for(lambda: descriptor_count(proxy.pid) <= baseline + SMALL_CONSTANT, timeout=10),
            f"descriptors after the clients left: {descriptor_count(proxy.pid)}, baseline {baseline}",
        )


if __name__ == "__main__":
    import unittest

    unittest.main()
