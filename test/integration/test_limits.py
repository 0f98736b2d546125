"""Running out of file descriptors: castellan backs off instead of spinning, blames
no real server, and serves again as soon as descriptors free up."""

import os
import resource
import time
import unittest

from harness import IntegrationTest, free_port, make_config, name_of_connection, tcp_service, wait_for

FILE_LIMIT = 64  # soft and hard: castellan cannot raise it
CLIENTS = 80     # more than it has descriptors for (two per proxied connection)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def low_file_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


# UBSan probes memory through a pipe it opens on the spot: with no descriptor
# left, it misreports objects as invalid and can stall the reporting thread.
@unittest.skipIf(os.environ.get("CASTELLAN_SANITIZED"), "sanitizer runtimes need descriptors of their own")
class FileLimitTest(IntegrationTest):
    def test_out_of_descriptors_backs_off_and_recovers(self):
        (cas1,) = self.named("cas1")
        port = free_port()
        service = tcp_service("rpc", port, [("cas1", cas1.port)], health_check={"type": "none", "fall": 1})
        proxy = self.start(make_config([service], threads=1), preexec_fn=low_file_limit)

        # The kernel completes these handshakes from the listen backlog whether or
        # not castellan can accept them.
        held = [self.client(port) for _ in range(CLIENTS)]
        exhausted = lambda: proxy.log_events("accept_failed") or [
            e for e in proxy.log_events("connect_failed") if e.get("counted") == "no"
        ]
        self.assertTrue(wait_for(exhausted, timeout=5.0), "never ran out of descriptors" + self.log_tail())

        # Stuck at the limit for a second: backing off, not spinning a core.
        before = cpu_seconds(proxy.pid)
        time.sleep(1.0)
        used = cpu_seconds(proxy.pid) - before
        self.assertLess(used, 0.3, f"{used:.2f} s of CPU in 1 s while out of descriptors" + self.log_tail())

        for sock in held:
            sock.close()
        served = lambda: _try_name(port) == "cas1"
        self.assertTrue(wait_for(served, timeout=5.0, interval=0.2), "not serving again" + self.log_tail())
        # Running out of descriptors here is not the real server's fault: with
        # fall 1, counting it would have put cas1 out for 10 s.
        self.assertEqual(proxy.log_events("server_state"), [], self.log_tail())
        self.assertEqual(_try_name(port), "cas1")


def _try_name(port):
    try:
        return name_of_connection(port, timeout=2.0)
    except (OSError, EOFError):
        return None


if __name__ == "__main__":
    unittest.main()
