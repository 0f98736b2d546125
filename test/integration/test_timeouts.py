"""timeouts.idle_s: one deadline per connection, pushed forward by bytes either way."""

import selectors
import socket
import time
import unittest

from harness import (
    DripServer,
    IntegrationTest,
    NamedServer,
    SinkServer,
    free_port,
    is_closed,
    make_config,
    read_name,
    read_to_end,
    recv_exactly,
    tcp_service,
    wait_for,
)

IDLE_S = 1


class IdleTimeoutTest(IntegrationTest):
    def start_proxy(self, server):
        port = free_port()
        self.start(make_config([tcp_service("rpc", port, [("s", server.port)], timeouts={"idle_s": IDLE_S})]))
        return port

    def assert_closes_within(self, sock, low, high):
        started = time.monotonic()
        data, how = read_to_end(sock, timeout=high + 2)
        elapsed = time.monotonic() - started
        self.assertEqual(data, b"")
        self.assertIn(how, ("eof", "reset"), f"still open after {elapsed:.1f} s" + self.log_tail())
        self.assertGreaterEqual(elapsed, low, "closed too early")
        self.assertLessEqual(elapsed, high, "closed too late")
        return elapsed

    def test_idle_connection_is_closed(self):
        server = self.serve(NamedServer("cas1"))
        port = self.start_proxy(server)
        sock = self.client(port)
        self.assertEqual(read_name(sock), "cas1")
        self.assert_closes_within(sock, 0.7, 3.5)
        # The real server's side is closed too.
        self.assertTrue(wait_for(lambda: server.active == 0, 3.0), "the server connection stayed open")

    def test_idle_connections_are_closed_on_time_wherever_their_last_byte_falls(self):
        # The worker wakes for each deadline (within about 10 ms): a connection
        # does not outlive idle_s by the up to 500 ms a periodic sweep gave it.
        # Eight connections whose last bytes are 70 ms apart span more than one
        # such sweep interval, so some would have been late by over 250 ms.
        server = self.serve(NamedServer("cas1"))
        port = self.start_proxy(server)
        last_byte = {}
        for _ in range(8):
            sock = self.client(port)
            self.assertEqual(read_name(sock), "cas1")
            last_byte[sock] = time.monotonic()
            time.sleep(0.07)
        closed_at = {}
        with selectors.DefaultSelector() as selector:
            for sock in last_byte:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            deadline = time.monotonic() + IDLE_S + 5
            while len(closed_at) < len(last_byte) and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.5):
                    now = time.monotonic()
                    try:
                        data = key.fileobj.recv(64)
                    except (ConnectionResetError, BlockingIOError):
                        data = b""
                    self.assertEqual(data, b"", "bytes after the name")
                    closed_at[key.fileobj] = now
                    selector.unregister(key.fileobj)
        self.assertEqual(len(closed_at), len(last_byte), "still open 5 s after idle_s" + self.log_tail())
        late = sorted(closed_at[sock] - last_byte[sock] - IDLE_S for sock in last_byte)
        self.assertGreater(late[0], -0.05, f"closed before idle_s: {late}")
        self.assertLess(late[-1], 0.25, f"closed late (seconds after idle_s): {late}" + self.log_tail())

    def test_traffic_both_ways_keeps_it_open(self):
        server = self.serve(NamedServer("cas1"))
        port = self.start_proxy(server)
        sock = self.client(port)
        self.assertEqual(read_name(sock), "cas1")
        started = time.monotonic()
        for i in range(8):  # 8 x 0.4 s = 3.2 s, well past idle_s
            time.sleep(0.4)
            sock.sendall(b"x")
            self.assertEqual(recv_exactly(sock, 1, timeout=2), b"x", f"round {i}, {time.monotonic() - started:.1f} s in")
        self.assertFalse(is_closed(sock), "closed although traffic kept flowing")
        sock.sendall(b"y")
        self.assertEqual(recv_exactly(sock, 1, timeout=2), b"y")
        # And once quiet, it is closed after all.
        self.assert_closes_within(sock, 0.7, 3.5)

    def test_one_way_client_to_server_stream_stays_open(self):
        # RPC_OUT_DATA: the client sends, the server never answers.
        sink = self.serve(SinkServer())
        port = self.start_proxy(sink)
        sock = self.client(port)
        for i in range(8):  # 3.2 s of one-way traffic
            sock.sendall(b"d")
            time.sleep(0.4)
        self.assertTrue(wait_for(lambda: sink.bytes_received == 8, 2.0), f"sink got {sink.bytes_received} of 8 bytes" + self.log_tail())
        self.assertEqual(sink.eofs, 0, "the server side was closed while data moved")
        self.assertFalse(is_closed(sock), "the client side was closed while data moved" + self.log_tail())
        self.assertEqual(sink.active, 1)
        # Quiet now: closed by the idle timeout.
        self.assert_closes_within(sock, 0.3, 3.5)

    def test_one_way_server_to_client_stream_stays_open(self):
        # RPC_IN_DATA the other way: the server sends, the client never does.
        drip = self.serve(DripServer(interval=0.4, count=8))
        port = self.start_proxy(drip)
        sock = self.client(port)
        started = time.monotonic()
        data, how = read_to_end(sock, timeout=8)
        elapsed = time.monotonic() - started
        self.assertEqual(data, b"." * 8, f"after {elapsed:.1f} s ({how})" + self.log_tail())
        self.assertEqual(how, "eof")
        self.assertGreater(elapsed, 2.5)

    def test_half_closed_connection_with_data_moving_stays_open(self):
        # The client half-closes at once; the server keeps sending for 3 s.
        drip = self.serve(DripServer(interval=0.4, count=8))
        port = self.start_proxy(drip)
        sock = self.client(port)
        sock.shutdown(socket.SHUT_WR)
        data, how = read_to_end(sock, timeout=8)
        self.assertEqual(data, b"." * 8, how + self.log_tail())
        self.assertEqual(how, "eof")


if __name__ == "__main__":
    unittest.main()
