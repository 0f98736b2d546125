"""Shared helpers for castellan's integration tests.

The tests start the real binary (env CASTELLAN_BIN, default <repo>/build/castellan)
against fake real servers that run in threads on 127.0.0.1 and announce who they
are. Everything binds port 0 (or a port just found free), every socket has a
timeout, every loop is bounded in count and in time, and every thread and process
is stopped even when a test fails.
"""

import json
import os
import unittest
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SOCKET_TIMEOUT = 5.0  # default for every client and server socket
READY_TIMEOUT = 10.0  # seconds castellan gets to log event=ready
STOP_TIMEOUT = 10.0  # after SIGTERM, before SIGKILL


def castellan_bin():
    """The binary under test: $CASTELLAN_BIN, else <repo>/build/castellan."""
    return os.environ.get("CASTELLAN_BIN") or str(REPO / "build" / "castellan")


def free_port():
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def closed_port():
    """A port nobody listens on (connects to it are refused)."""
    return free_port()


def addr(port, host=HOST):
    return f"{host}:{port}"


def wait_for(predicate, timeout=5.0, interval=0.02):
    """Polls predicate() until it is true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Config builders


def real_server(name, port, **extra):
    entry = {"name": name, "address": addr(port)}
    entry.update(extra)
    return entry


def tcp_service(name, listen_port, servers, **extra):
    """A tcp-mode virtual service on 127.0.0.1:listen_port with no active health check.

    servers: list of (name, port) pairs or ready-made real-server dicts.
    """
    real_servers = [s if isinstance(s, dict) else real_server(s[0], s[1]) for s in servers]
    service = {
        "name": name,
        "listen": addr(listen_port),
        "mode": "tcp",
        "real_servers": real_servers,
        "health_check": {"type": "none"},
    }
    service.update(extra)
    return service


def make_config(services, threads=2, **extra):
    config = {"threads": threads, "virtual_services": list(services)}
    config.update(extra)
    return config


# ---------------------------------------------------------------------------
# The process under test


def run_cli(args, timeout=15.0, env=None):
    """Runs castellan with args to completion; returns CompletedProcess (text mode)."""
    return subprocess.run(
        [castellan_bin()] + list(args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


class ConfigDir:
    """A temporary folder holding config.json (and whatever else a test puts there)."""

    def __init__(self, config):
        self.path = Path(tempfile.mkdtemp(prefix="castellan-it-"))
        self.config_file = self.path / "config.json"
        self.write(config)

    def write(self, config):
        text = config if isinstance(config, str) else json.dumps(config, indent=2)
        self.config_file.write_text(text)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False


class _LineCollector:
    """Reads a text stream line by line in a thread, keeping every line."""

    def __init__(self, stream, name):
        self._stream = stream
        self._lines = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for line in self._stream:  # ends at EOF, i.e. when the process exits
                with self._cond:
                    self._lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def lines(self):
        with self._cond:
            return list(self._lines)

    def wait_for_line(self, predicate, timeout, stop=None):
        """Waits for a line matching predicate; returns it, or None on timeout / EOF / stop()."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self._lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0 or (stop is not None and stop()):
                    return None
                self._cond.wait(min(remaining, 0.1))

    def join(self, timeout):
        self._thread.join(timeout)

    def alive(self):
        return self._thread.is_alive()


def parse_log_line(line):
    """key=value pairs of one log line as a dict (values may be double-quoted)."""
    fields = {}
    for match in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        value = match.group(2)
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        fields[match.group(1)] = value
    return fields


class Castellan:
    """Runs castellan on a config dict (or JSON text); a context manager.

    On enter: writes the config (and `files`) to a temporary folder, starts
    `$CASTELLAN_BIN --config FILE`, and waits until stderr says event=ready
    (READY_TIMEOUT, else AssertionError with the stderr so far). On exit: SIGTERM,
    then SIGKILL if it has not exited after STOP_TIMEOUT.
    """

    def __init__(self, config, env=None, ready_timeout=READY_TIMEOUT, wait_ready=True, preexec_fn=None, files=None):
        self.config = config
        self.files = files or {}  # name -> text, written beside the config (token, certificates)
        self.extra_env = env or {}
        self.preexec_fn = preexec_fn  # run in the child before exec (e.g. to set limits)
        self.ready_timeout = ready_timeout
        self.wait_ready = wait_ready
        self.dir = None
        self.proc = None
        self._stderr = None
        self._stdout = None

    @property
    def config_file(self):
        return self.dir.config_file

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        self.dir = ConfigDir(self.config)
        for name, text in self.files.items():
            (self.dir.path / name).write_text(text)
        env = dict(os.environ)
        env.update(self.extra_env)
        binary = castellan_bin()
        if not os.access(binary, os.X_OK):
            self.dir.cleanup()
            raise AssertionError(f"castellan binary not found or not executable: {binary}")
        self.proc = subprocess.Popen(
            [binary, "--config", str(self.dir.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
            cwd=str(self.dir.path),
            preexec_fn=self.preexec_fn,
        )
        self._stderr = _LineCollector(self.proc.stderr, "castellan-stderr")
        self._stdout = _LineCollector(self.proc.stdout, "castellan-stdout")
        if self.wait_ready:
            line = self._stderr.wait_for_line(
                lambda l: "event=ready" in l, self.ready_timeout, stop=lambda: self.proc.poll() is not None
            )
            if line is None:
                code = self.proc.poll()
                self.stop()
                raise AssertionError(
                    f"castellan did not log event=ready within {self.ready_timeout}s "
                    f"(exit code {code}); stderr so far:\n" + "\n".join(self.stderr_lines())
                )
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def stderr_lines(self):
        return self._stderr.lines() if self._stderr else []

    def stdout_lines(self):
        return self._stdout.lines() if self._stdout else []

    def log_events(self, event):
        """Parsed stderr lines whose event is `event`."""
        return [f for f in map(parse_log_line, self.stderr_lines()) if f.get("event") == event]

    def wait_for_log(self, predicate, timeout=5.0):
        return self._stderr.wait_for_line(predicate, timeout)

    def stderr_text(self, last=60):
        return "\n".join(self.stderr_lines()[-last:])

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout):
        """Exit code, or None if it is still running after timeout seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(STOP_TIMEOUT)
        finally:
            for collector, stream in ((self._stderr, self.proc.stderr), (self._stdout, self.proc.stdout)):
                if collector:
                    collector.join(2.0)
                    if collector.alive():
                        # A child still holds the pipe; closing it now would block on
                        # the reader's lock. The daemon reader ends with the pipe.
                        continue
                try:
                    stream.close()
                except OSError:
                    pass
            if self.dir:
                self.dir.cleanup()


# ---------------------------------------------------------------------------
# Fake real servers


class TcpServer:
    """A threaded TCP server on host:port (127.0.0.1, 0: any); subclasses implement handle(conn).

    Counts connections (`connections`, `active`), remembers peers, and on stop()
    closes the listener and every open connection and joins its threads.
    `max_lifetime` bounds how long any handler loop may run.
    """

    ACCEPT_POLL = 0.1
    max_lifetime = 120.0

    def __init__(self, port=0, host=HOST):
        self.host = host
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._started_at = time.monotonic()
        self.connections = 0
        self.active = 0
        self.peers = []
        self._conns = set()
        self._threads = []
        self.errors = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(128)
        self.listener.settimeout(self.ACCEPT_POLL)
        self.port = self.listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"{type(self).__name__}-accept", daemon=True)
        self._accept_thread.start()

    @property
    def address(self):
        return addr(self.port, self.host)

    def stopping(self):
        """True once stop() was called or the server's lifetime is over."""
        return self._stopping.is_set() or time.monotonic() - self._started_at > self.max_lifetime

    def _accept_loop(self):
        while not self.stopping():
            try:
                conn, peer = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn.settimeout(self.ACCEPT_POLL)
            with self._lock:
                self.connections += 1
                self.active += 1
                self.peers.append(peer)
                self._conns.add(conn)
                thread = threading.Thread(target=self._serve, args=(conn,), name=f"{type(self).__name__}-conn", daemon=True)
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn):
        try:
            self.handle(conn)
        except OSError as error:  # resets are expected in some tests; keep them for debugging
            with self._lock:
                self.errors.append(repr(error))
        finally:
            with self._lock:
                self.active -= 1
                self._conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass

    # Helpers for handlers: socket ops that wait in short slices so stop() is honoured.

    def recv(self, conn, size=65536):
        """Bytes read (b"" at EOF), or None if the server is stopping."""
        while not self.stopping():
            try:
                return conn.recv(size)
            except socket.timeout:
                continue
        return None

    def sendall(self, conn, data):
        view = memoryview(data)
        while view and not self.stopping():
            try:
                sent = conn.send(view)
            except socket.timeout:
                continue
            view = view[sent:]
        return not view

    def handle(self, conn):
        raise NotImplementedError

    def stop(self):
        self._stopping.set()
        try:
            self.listener.close()
        except OSError:
            pass
        self._accept_thread.join(5)
        with self._lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


class EchoServer(TcpServer):
    """Echoes what it reads until EOF, then shuts down its write side."""

    def __init__(self, banner=b"", port=0):
        self.banner = banner
        super().__init__(port)

    def handle(self, conn):
        if self.banner and not self.sendall(conn, self.banner):
            return
        while True:
            data = self.recv(conn)
            if not data:  # EOF or stopping
                break
            if not self.sendall(conn, data):
                return
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        # Linger briefly so the peer can read the FIN before the close.
        self.recv(conn, 1)


class NamedServer(EchoServer):
    """Sends name + "\\n" at once, then echoes until EOF, then shuts down its write side."""

    def __init__(self, name, port=0):
        self.name = name
        super().__init__(banner=(name + "\n").encode(), port=port)


class SinkServer(TcpServer):
    """Reads and discards, never writes; counts bytes per connection and notes EOFs."""

    def __init__(self):
        self.bytes_received = 0
        self.eofs = 0
        super().__init__()

    def handle(self, conn):
        while True:
            data = self.recv(conn)
            if data is None:
                return
            if not data:
                with self._lock:
                    self.eofs += 1
                return
            with self._lock:
                self.bytes_received += len(data)


class DripServer(TcpServer):
    """Sends one byte every `interval` seconds, `count` times, and never reads; then closes."""

    def __init__(self, interval, count):
        self.interval = interval
        self.count = count
        super().__init__()

    def handle(self, conn):
        for _ in range(self.count):
            if self.stopping() or not self.sendall(conn, b"."):
                return
            time.sleep(self.interval)
        conn.shutdown(socket.SHUT_WR)
        self.recv(conn, 1)


class HalfCloseServer(TcpServer):
    """Sends a banner, shuts down its write side at once, then reads until EOF.

    `received` collects, per connection, every byte read after the half-close.
    """

    def __init__(self, banner=b"bye\n"):
        self.banner = banner
        self.received = []
        super().__init__()

    def handle(self, conn):
        if not self.sendall(conn, self.banner):
            return
        conn.shutdown(socket.SHUT_WR)
        data = bytearray()
        while True:
            chunk = self.recv(conn)
            if not chunk:
                break
            data += chunk
        with self._lock:
            self.received.append(bytes(data))


def admin_call(port, method, path, body=None, token=None, timeout=10.0):
    """(HTTP status, raw body bytes) of one admin API call to 127.0.0.1:port. `body`:
    bytes as they are, or anything JSON encodes; `token`: sent as the bearer token."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# ---------------------------------------------------------------------------
# Clients


def connect_via(port, source_ip=HOST, timeout=SOCKET_TIMEOUT, host=HOST):
    """A client socket bound to source_ip (any 127.0.0.x), connected to host:port (127.0.0.1)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((source_ip, 0))
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def read_line(sock, limit=1024, timeout=SOCKET_TIMEOUT):
    """One line, without its newline, read a byte at a time so nothing after it is taken.

    Raises EOFError if the peer closes before the newline.
    """
    old = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        data = bytearray()
        while len(data) < limit:
            byte = sock.recv(1)
            if not byte:
                raise EOFError(f"EOF after {bytes(data)!r}")
            if byte == b"\n":
                return data.decode()
            data += byte
        raise AssertionError(f"no newline in the first {limit} bytes: {bytes(data)!r}")
    finally:
        sock.settimeout(old)


def read_name(sock, timeout=SOCKET_TIMEOUT):
    """The name a NamedServer announced on this connection."""
    return read_line(sock, timeout=timeout)


def recv_exactly(sock, size, timeout=SOCKET_TIMEOUT):
    deadline = time.monotonic() + timeout
    data = bytearray()
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout(f"got {len(data)} of {size} bytes")
        sock.settimeout(remaining)
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError(f"EOF after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def read_to_end(sock, timeout=SOCKET_TIMEOUT, limit=1 << 20):
    """Reads a (plain or TLS) socket until EOF. Returns (data, how) with how in "eof",
    "reset", "timeout"; a TLS error (an alert, an unexpected EOF) counts as a reset."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while len(data) <= limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bytes(data), "timeout"
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return bytes(data), "timeout"
        except (ssl.SSLError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk
    raise AssertionError(f"more than {limit} bytes before EOF")


def name_of_connection(port, source_ip=HOST, timeout=SOCKET_TIMEOUT):
    """Connects, reads the announced name, closes; returns the name."""
    with connect_via(port, source_ip, timeout) as sock:
        return read_name(sock, timeout)


def is_closed(sock, wait=0.0):
    """True if the peer closed (EOF or reset) within `wait` seconds; False if open and quiet.

    Raises AssertionError if data arrives instead.
    """
    old = sock.gettimeout()
    try:
        if wait > 0:
            sock.settimeout(wait)
        else:
            sock.setblocking(False)
        try:
            data = sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, socket.timeout):
            return False
        except (ConnectionResetError, ConnectionAbortedError):
            return True
        if data:
            raise AssertionError(f"unexpected data {data!r} on a connection expected quiet")
        return True
    finally:
        sock.settimeout(old)


class ServerSet:
    """Starts servers and stops them all on close (for addCleanup)."""

    def __init__(self):
        self.servers = []

    def add(self, server):
        self.servers.append(server)
        return server

    def close(self):
        for server in self.servers:
            server.stop()


class IntegrationTest(unittest.TestCase):
    """A TestCase whose servers, clients and castellan processes are cleaned up on any outcome."""

    def serve(self, server):
        self.addCleanup(server.stop)
        return server

    def named(self, *names):
        return [self.serve(NamedServer(n)) for n in names]

    def start(self, config, **kwargs):
        proxy = Castellan(config, **kwargs)
        proxy.start()
        self.addCleanup(proxy.stop)
        self.proxy = proxy
        return proxy

    def start_on_free_ports(self, build_config, tries=3, **kwargs):
        """self.start(build_config()), where build_config picks its ports with
        free_port(): another process (a parallel test, a benchmark) may take one
        between that and castellan's bind, which castellan then refuses; the
        config is built again on new ports, at most `tries` times."""
        for attempt in range(tries):
            try:
                return self.start(build_config(), **kwargs)
            except AssertionError as error:
                if "Address already in use" not in str(error) or attempt == tries - 1:
                    raise

    def client(self, port, source_ip=HOST, timeout=SOCKET_TIMEOUT):
        sock = connect_via(port, source_ip, timeout)
        self.addCleanup(sock.close)
        return sock

    def log_tail(self):
        proxy = getattr(self, "proxy", None)
        return "\ncastellan stderr (tail):\n" + proxy.stderr_text() if proxy else ""
