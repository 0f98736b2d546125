"""Bytes through the proxy: bulk data intact, half-close passed on, server-first protocols.

Each test runs once per pump (CASTELLAN_PUMP=copy, =splice, and the default,
which copies until a direction turns out to be a bulk transfer and then splices),
since all three are built and can be chosen.
"""

import hashlib
import os
import socket
import threading
import time
import unittest

from harness import (
    EchoServer,
    HalfCloseServer,
    IntegrationTest,
    NamedServer,
    free_port,
    make_config,
    read_name,
    read_to_end,
    recv_exactly,
    tcp_service,
    wait_for,
)

SIZE = 8 * 1024 * 1024


class SpliceTestBase(IntegrationTest):
    pump = None  # None: castellan's default

    def start_proxy(self, server, threads=2):
        port = free_port()
        env = {"CASTELLAN_PUMP": self.pump} if self.pump else {}
        self.start(make_config([tcp_service("bulk", port, [("s", server.port)])], threads=threads), env=env)
        return port

    def test_8_mib_echoed_intact(self):
        server = self.serve(EchoServer())
        port = self.start_proxy(server)
        payload = os.urandom(SIZE)
        sock = self.client(port, timeout=30)
        send_errors = []

        def sender():
            try:
                view = memoryview(payload)
                for offset in range(0, SIZE, 256 * 1024):  # bounded: 32 chunks
                    sock.sendall(view[offset:offset + 256 * 1024])
                sock.shutdown(socket.SHUT_WR)
            except OSError as error:
                send_errors.append(repr(error))

        thread = threading.Thread(target=sender, daemon=True)
        started = time.monotonic()
        thread.start()
        received = hashlib.sha256()
        total = 0
        deadline = started + 60
        how = None
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(1 << 20)
            except socket.timeout:
                how = "timeout"
                break
            if not chunk:
                how = "eof"
                break
            received.update(chunk)
            total += len(chunk)
        thread.join(30)
        self.assertEqual(send_errors, [])
        self.assertEqual(how, "eof", f"received {total} of {SIZE} bytes" + self.log_tail())
        self.assertEqual(total, SIZE, self.log_tail())
        self.assertEqual(received.hexdigest(), hashlib.sha256(payload).hexdigest(), "echoed bytes differ")

    def test_half_close_client_first(self):
        # The client sends, then shuts down its write side; it still gets the echo
        # and then EOF (the NamedServer shuts down after reading EOF).
        server = self.serve(NamedServer("cas1"))
        port = self.start_proxy(server)
        sock = self.client(port)
        self.assertEqual(read_name(sock), "cas1")
        message = b"hello through a half-closed connection\n" * 100
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)
        data, how = read_to_end(sock, timeout=5)
        self.assertEqual(how, "eof", self.log_tail())
        self.assertEqual(data, message)

    def test_half_close_client_first_before_banner(self):
        # Data and FIN may reach the proxy before the real server is even connected.
        server = self.serve(NamedServer("cas1"))
        port = self.start_proxy(server)
        sock = self.client(port)
        sock.sendall(b"early\n")
        sock.shutdown(socket.SHUT_WR)
        data, how = read_to_end(sock, timeout=5)
        self.assertEqual(how, "eof", self.log_tail())
        self.assertEqual(data, b"cas1\nearly\n")

    def test_half_close_server_first(self):
        # The server sends a banner and shuts down its write side; the client sees
        # EOF but can still send, and the server receives everything.
        server = self.serve(HalfCloseServer(b"bye\n"))
        port = self.start_proxy(server)
        sock = self.client(port)
        self.assertEqual(recv_exactly(sock, 4), b"bye\n")
        sock.settimeout(5)
        self.assertEqual(sock.recv(1), b"", "no EOF after the server's half-close")
        message = b"still flowing upstream\n" * 1000
        for i in range(0, len(message), 4096):
            sock.sendall(message[i:i + 4096])
            time.sleep(0.001)
        sock.shutdown(socket.SHUT_WR)
        self.assertTrue(wait_for(lambda: len(server.received) == 1, 5.0), "the server never saw the client's EOF" + self.log_tail())
        self.assertEqual(server.received[0], message)

    def test_server_first_banner(self):
        # A protocol where the server speaks first (SMTP's 220): the banner arrives
        # without the client sending anything.
        server = self.serve(EchoServer(banner=b"220 mail.example ESMTP\r\n"))
        port = self.start_proxy(server)
        sock = self.client(port)
        self.assertEqual(recv_exactly(sock, 24, timeout=3), b"220 mail.example ESMTP\r\n")
        sock.sendall(b"QUIT\r\n")
        self.assertEqual(recv_exactly(sock, 6), b"QUIT\r\n")

    def test_many_small_exchanges(self):
        server = self.serve(NamedServer("cas1"))
        port = self.start_proxy(server)
        sock = self.client(port)
        self.assertEqual(read_name(sock), "cas1")
        for i in range(200):
            message = f"ping {i}\n".encode()
            sock.sendall(message)
            self.assertEqual(recv_exactly(sock, len(message)), message)

    def test_small_exchanges_after_bulk(self):
        # The default pump switches a direction to splice(2) in the middle of a bulk
        # transfer; the connection goes on working for small messages afterwards.
        server = self.serve(NamedServer("cas1"))
        port = self.start_proxy(server)
        sock = self.client(port, timeout=20)
        self.assertEqual(read_name(sock), "cas1")
        payload = os.urandom(2 * 1024 * 1024)
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        self.assertEqual(recv_exactly(sock, len(payload), timeout=20), payload)
        sender.join(20)
        for i in range(50):
            message = f"small {i}\n".encode()
            sock.sendall(message)
            self.assertEqual(recv_exactly(sock, len(message)), message)

    def test_parallel_bulk_connections(self):
        # 8 connections of 512 KiB each at once, 4 worker threads.
        server = self.serve(EchoServer())
        port = self.start_proxy(server, threads=4)
        results, lock = [], threading.Lock()

        def one(index):
            payload = os.urandom(512 * 1024)
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=20)
                with sock:
                    sender = threading.Thread(
                        target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR)), daemon=True
                    )
                    sender.start()
                    data, how = read_to_end(sock, timeout=20, limit=2 * len(payload))
                    sender.join(20)
                ok = how == "eof" and data == payload
                detail = f"{index}: {how}, {len(data)} bytes, equal={data == payload}"
            except OSError as error:
                ok, detail = False, f"{index}: {error!r}"
            with lock:
                results.append((ok, detail))

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        self.assertEqual(len(results), 8)
        self.assertTrue(all(ok for ok, _ in results), [d for ok, d in results if not ok])


class CopyPumpTest(SpliceTestBase):
    pump = "copy"


class SplicePumpTest(SpliceTestBase):
    pump = "splice"


class DefaultPumpTest(SpliceTestBase):
    pump = None


del SpliceTestBase  # run only through the two subclasses

if __name__ == "__main__":
    unittest.main()
