"""systemd readiness notifications (Type=notify) against the real binary.

Each test binds an AF_UNIX datagram socket in a temporary folder, standing in for
systemd's, and starts castellan with NOTIFY_SOCKET naming it. castellan must send
READY=1 (with a STATUS= line) once it serves, RELOADING=1 then READY=1 around every
reload (applied or refused), and STOPPING=1 when a graceful stop begins; each from
its own process id, as NotifyAccess=main requires. A NOTIFY_SOCKET nobody listens
on must not stop it from serving. (Without NOTIFY_SOCKET it starts as before: every
other test covers that.)
"""

import shutil
import signal
import socket
import struct
import tempfile
import unittest
from pathlib import Path

from harness import IntegrationTest, free_port, make_config, name_of_connection, tcp_service

RECEIVE_TIMEOUT = 10.0  # seconds a notification gets to arrive (sanitizer builds too)
QUIET_WINDOW = 0.3  # seconds in which no further notification may arrive
UCRED = struct.Struct("iII")  # struct ucred: pid, uid, gid


def fields(message):
    """The assignments of one notification ("READY=1\\nSTATUS=...") as a dict."""
    result = {}
    for line in message.split("\n"):
        if line:
            key, _, value = line.partition("=")
            result[key] = value
    return result


class NotifySocket:
    """A bound AF_UNIX datagram socket that records each notification and its sender's pid."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="castellan-notify-"))
        self.path = str(self.dir / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            # The kernel attaches the sender's credentials, as systemd asks it to.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self.sock.bind(self.path)
        except BaseException:
            self.close()
            raise
        self.seen = []  # every (message, pid) received, for failure messages

    def receive(self, timeout=RECEIVE_TIMEOUT):
        """(message, sender pid) of the next notification, or None after timeout seconds."""
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(8192, socket.CMSG_SPACE(UCRED.size))
        except socket.timeout:
            return None
        pid = None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= UCRED.size:
                pid = UCRED.unpack_from(payload)[0]
        entry = (data.decode(errors="replace"), pid)
        self.seen.append(entry)
        return entry

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SystemdNotifyTest(IntegrationTest):
    def setUp(self):
        self.notify = NotifySocket()
        self.addCleanup(self.notify.close)

    def start_castellan(self, config, **kwargs):
        return self.start(config, env={"NOTIFY_SOCKET": self.notify.path}, **kwargs)

    def history(self):
        return f"\nnotifications so far: {self.notify.seen!r}" + self.log_tail()

    def expect(self, key, what):
        """Receives the next notification; asserts it sets key=1 and came from castellan's pid."""
        got = self.notify.receive()
        self.assertIsNotNone(got, f"no notification within {RECEIVE_TIMEOUT}s {what}" + self.history())
        message, pid = got
        self.assertEqual(fields(message).get(key), "1", f"expected {key}=1 {what}, got {message!r}" + self.history())
        self.assertEqual(pid, self.proxy.pid, f"{key}=1 sent by pid {pid}, not castellan's main pid {self.proxy.pid}")
        return fields(message)

    def expect_quiet(self, what):
        got = self.notify.receive(QUIET_WINDOW)
        self.assertIsNone(got, f"unexpected notification {what}" + self.history())

    def one_service(self, server_name, port, **extra):
        (server,) = self.named(server_name)
        return make_config([tcp_service("rpc", port, [(server_name, server.port)])], **extra)

    def test_ready_once_serving_then_stopping_on_sigterm(self):
        port = free_port()
        self.start_castellan(self.one_service("cas1", port, shutdown_grace_s=30), wait_ready=False)
        ready = self.expect("READY", "after start")
        self.assertTrue(ready.get("STATUS"), f"READY=1 without a STATUS= line: {ready!r}")
        # systemd starts the units ordered after castellan now: it must serve at once.
        self.assertEqual(name_of_connection(port), "cas1", self.log_tail())
        self.assertTrue(self.proxy.running(), self.log_tail())
        self.expect_quiet("after READY=1 with nothing happening")

        self.proxy.signal(signal.SIGTERM)
        self.expect("STOPPING", "after SIGTERM")
        code = self.proxy.wait(10)
        self.assertEqual(code, 0, f"exit code {code} after SIGTERM" + self.log_tail())
        self.expect_quiet("after STOPPING=1")

    def test_reload_applied_and_refused_each_end_with_ready(self):
        port = free_port()
        (cas2,) = self.named("cas2")
        proxy = self.start_castellan(self.one_service("cas1", port))
        self.expect("READY", "after start")
        self.assertEqual(name_of_connection(port), "cas1", self.log_tail())

        # A valid change: the service's only real server becomes cas2.
        proxy.dir.write(make_config([tcp_service("rpc", port, [("cas2", cas2.port)])]))
        proxy.signal(signal.SIGHUP)
        self.expect("RELOADING", "after SIGHUP with a valid file")
        self.expect("READY", "at the end of an applied reload")
        # `systemctl reload` returns at READY=1: the new config is in force by then.
        self.assertEqual(name_of_connection(port), "cas2", "READY=1 sent before the new config serves" + self.log_tail())
        line = proxy.wait_for_log(lambda l: "event=reload" in l and "ok=true" in l, timeout=5)
        self.assertIsNotNone(line, "no event=reload ok=true line" + self.log_tail())

        # An invalid file (an unknown key): refused, the running config keeps serving.
        proxy.dir.write(make_config([tcp_service("rpc", port, [("cas2", cas2.port)])], no_such_key=1))
        proxy.signal(signal.SIGHUP)
        self.expect("RELOADING", "after SIGHUP with an invalid file")
        self.expect("READY", "after a refused reload")
        line = proxy.wait_for_log(lambda l: "event=reload" in l and "ok=false" in l, timeout=5)
        self.assertIsNotNone(line, "no event=reload ok=false line" + self.log_tail())
        self.assertEqual(name_of_connection(port), "cas2", self.log_tail())
        self.assertTrue(proxy.running(), self.log_tail())
        self.expect_quiet("after the refused reload's READY=1")

        proxy.signal(signal.SIGTERM)
        self.expect("STOPPING", "after SIGTERM")
        self.assertEqual(proxy.wait(10), 0, self.log_tail())

    def test_a_notify_socket_nobody_listens_on_is_harmless(self):
        port = free_port()
        missing = str(self.notify.dir / "nobody-here")
        config = self.one_service("cas1", port)
        proxy = self.start(config, env={"NOTIFY_SOCKET": missing})  # waits for event=ready
        self.assertEqual(name_of_connection(port), "cas1", self.log_tail())
        proxy.signal(signal.SIGHUP)
        line = proxy.wait_for_log(lambda l: "event=reload" in l, timeout=10)
        self.assertIsNotNone(line, "no event=reload line after SIGHUP" + self.log_tail())
        self.assertIn("ok=true", line, self.log_tail())
        self.assertEqual(name_of_connection(port), "cas1", self.log_tail())
        proxy.signal(signal.SIGTERM)
        self.assertEqual(proxy.wait(10), 0, self.log_tail())


if __name__ == "__main__":
    unittest.main()
