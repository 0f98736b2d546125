"""access_log (INTERFACE.md): which connection ends get a `close` line: all, errors, off."""

import time
import unittest

from harness import (
    IntegrationTest,
    closed_port,
    free_port,
    make_config,
    name_of_connection,
    read_to_end,
    connect_via,
    tcp_service,
    wait_for,
)


class AccessLogTest(IntegrationTest):
    def start_with(self, access_log):
        (cas1,) = self.named("cas1")
        self.port, self.dead_port = free_port(), free_port()
        services = [
            tcp_service("rpc", self.port, [("cas1", cas1.port)]),
            tcp_service("dead", self.dead_port, [("gone", closed_port())]),
        ]
        extra = {} if access_log is None else {"access_log": access_log}
        self.start(make_config(services, **extra))

    def normal_connections(self, count):
        for _ in range(count):
            self.assertEqual(name_of_connection(self.port), "cas1")

    def failed_connection(self):
        """A client of a service whose only real server refuses: closed at once, abnormal."""
        with connect_via(self.dead_port) as sock:
            data, how = read_to_end(sock, timeout=3.0)
            self.assertEqual(data, b"")

    def closes(self):
        return self.proxy.log_events("close")

    def settle(self):
        # The close line is written when the session ends, a moment after the client saw EOF.
        time.sleep(0.3)

    def test_all_is_the_default_and_logs_every_close(self):
        self.start_with(None)
        self.normal_connections(3)
        self.failed_connection()
        self.assertTrue(wait_for(lambda: len(self.closes()) == 4, timeout=3.0), self.log_tail())
        reasons = sorted(e.get("reason") for e in self.closes())
        self.assertEqual(reasons, ["closed", "closed", "closed", "no_server_available"], self.log_tail())

    def test_errors_logs_only_abnormal_closes(self):
        self.start_with("errors")
        self.normal_connections(3)
        self.failed_connection()
        self.assertTrue(wait_for(lambda: self.closes(), timeout=3.0), self.log_tail())
        self.settle()
        self.assertEqual([e.get("reason") for e in self.closes()], ["no_server_available"], self.log_tail())

    def test_off_logs_no_close_but_still_the_events(self):
        self.start_with("off")
        self.normal_connections(3)
        self.failed_connection()
        self.settle()
        self.assertEqual(self.closes(), [], self.log_tail())
        # Events are not access-log lines: the failed connect is still logged.
        self.assertTrue(self.proxy.log_events("connect_failed"), self.log_tail())


if __name__ == "__main__":
    unittest.main()
