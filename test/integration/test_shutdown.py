"""SIGTERM/SIGINT: listeners close at once, open connections finish (up to shutdown_grace_s), exit 0."""

import signal
import socket
import time
import unittest

from harness import (
    IntegrationTest,
    connect_via,
    free_port,
    is_closed,
    make_config,
    read_name,
    read_to_end,
    recv_exactly,
    tcp_service,
    wait_for,
)


def refused(port):
    """True if a new connection to port is refused (or reset before any byte)."""
    try:
        sock = connect_via(port, timeout=1.0)
    except (ConnectionRefusedError, ConnectionResetError):
        return True
    except OSError:
        return True
    with sock:
        data, how = read_to_end(sock, timeout=1.0)
        # Accepted by a listener that was closing: it must not be served.
        return how in ("eof", "reset") and data == b""


class ShutdownTest(IntegrationTest):
    def start_proxy(self, grace_s, threads=2):
        (server,) = self.named("cas1")
        port = free_port()
        self.start(make_config([tcp_service("rpc", port, [("cas1", server.port)])], threads=threads, shutdown_grace_s=grace_s))
        return server, port

    def open_connection(self, port):
        sock = self.client(port)
        self.assertEqual(read_name(sock), "cas1")
        return sock

    def check_graceful_stop(self, sig, threads):
        server, port = self.start_proxy(grace_s=30, threads=threads)
        sock = self.open_connection(port)
        self.proxy.signal(sig)
        # New clients are refused right away ...
        self.assertTrue(wait_for(lambda: refused(port), 2.0, interval=0.1), "new connections still accepted after the signal" + self.log_tail())
        # ... the open connection still works ...
        self.assertTrue(self.proxy.running(), "exited with a connection still open" + self.log_tail())
        sock.sendall(b"still here\n")
        self.assertEqual(recv_exactly(sock, 11), b"still here\n")
        time.sleep(0.5)
        self.assertTrue(self.proxy.running(), "exited with a connection still open" + self.log_tail())
        # ... and once it closes, the process exits 0 well before the grace period.
        closed_at = time.monotonic()
        sock.close()
        code = self.proxy.wait(5)
        self.assertEqual(code, 0, f"exit code {code} (None: still running 5 s after the last close)" + self.log_tail())
        self.assertLess(time.monotonic() - closed_at, 5)

    def test_sigterm_refuses_new_clients_and_waits_for_open_ones(self):
        self.check_graceful_stop(signal.SIGTERM, threads=2)

    def test_sigterm_with_4_threads(self):
        self.check_graceful_stop(signal.SIGTERM, threads=4)

    def test_sigint_behaves_like_sigterm(self):
        self.check_graceful_stop(signal.SIGINT, threads=2)

    def test_sigterm_without_connections_exits_0_at_once(self):
        self.start_proxy(grace_s=30)
        started = time.monotonic()
        self.proxy.signal(signal.SIGTERM)
        code = self.proxy.wait(5)
        self.assertEqual(code, 0, self.log_tail())
        self.assertLess(time.monotonic() - started, 3)

    def test_grace_period_ends_a_held_connection(self):
        server, port = self.start_proxy(grace_s=1)
        sock = self.open_connection(port)
        started = time.monotonic()
        self.proxy.signal(signal.SIGTERM)
        code = self.proxy.wait(6)
        elapsed = time.monotonic() - started
        self.assertEqual(code, 0, f"exit code {code} after {elapsed:.1f} s" + self.log_tail())
        self.assertGreaterEqual(elapsed, 0.8, "exited before the grace period")
        self.assertLessEqual(elapsed, 4.0, "exited long after the grace period")
        # The held connection is closed with the process.
        self.assertTrue(is_closed(sock, wait=2.0), "client connection still open after exit")

    def test_grace_zero_exits_at_once(self):
        server, port = self.start_proxy(grace_s=0)
        self.open_connection(port)
        started = time.monotonic()
        self.proxy.signal(signal.SIGTERM)
        code = self.proxy.wait(5)
        self.assertEqual(code, 0, self.log_tail())
        self.assertLess(time.monotonic() - started, 2.5)

    def test_second_sigterm_during_the_grace_exits_at_once(self):
        server, port = self.start_proxy(grace_s=30)
        sock = self.open_connection(port)
        self.proxy.signal(signal.SIGTERM)
        self.assertTrue(self.proxy.wait_for_log(lambda line: "event=stopping " in line, timeout=3.0), self.log_tail())
        time.sleep(0.3)
        self.assertTrue(self.proxy.running(), "exited with a connection open and 30 s of grace left" + self.log_tail())
        started = time.monotonic()
        self.proxy.signal(signal.SIGTERM)
        code = self.proxy.wait(5)
        self.assertEqual(code, 0, f"exit code {code} (None: still running 5 s after the second SIGTERM)" + self.log_tail())
        self.assertLess(time.monotonic() - started, 3)
        self.assertTrue(self.proxy.log_events("stopping_now"), self.log_tail())
        self.assertTrue(is_closed(sock, wait=2.0), "client connection still open after exit")

    def test_port_is_free_after_exit(self):
        server, port = self.start_proxy(grace_s=30)
        self.proxy.signal(signal.SIGTERM)
        self.assertEqual(self.proxy.wait(5), 0, self.log_tail())
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


if __name__ == "__main__":
    unittest.main()
