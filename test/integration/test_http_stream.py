"""Outlook Anywhere and ActiveSync streams through http mode, with castellan's memory watched.

Outlook Anywhere (RPC over HTTP) opens two long HTTP/1.1 requests per client: an
RPC_IN_DATA whose request declares `Content-Length: 1073741824` and carries the
client's RPC traffic for the channel's life, and an RPC_OUT_DATA whose *response*
declares the same and carries the server's. castellan must stream both bodies,
never hold either whole. ActiveSync's Ping is a long poll: the server holds the
answer for up to its heartbeat. What each test proves:

  test_rpc_in_data_1gib_upload       1 GiB request body, client -> server, checked by sha256
  test_rpc_out_data_1gib_download    1 GiB response body, server -> client, checked by sha256
  test_64_streams_at_once            32 RPC_IN_DATA + 32 RPC_OUT_DATA open together
  test_activesync_ping_held_60s      an answer held back 60 s arrives intact (idle_s 120)
  test_client_close_mid_stream_reaches_the_server
                                     a client that drops a stream (closes) mid-upload,
                                     mid-download or during a held Ping: the server
                                     connection is closed too, within 3 s

Memory: castellan's VmRSS is read from /proc/<pid>/status ten times a second while
the bytes move, and VmHWM (its peak) at the end. The baseline is taken after one
small RPC_IN_DATA and one small RPC_OUT_DATA went through (the session's buffers
exist) and just before the stream starts. One 1 GiB stream must grow castellan's
RSS by less than 32 MiB; with 64 streams open its whole RSS must stay under
200 MiB. Under the sanitizer build (CASTELLAN_SANITIZED=1) the RSS figures are
meaningless (ASan's shadow memory and quarantine): the RSS assertions are left out, the
volumes cut to 64 MiB per single stream and 1 MiB per stream of the 64, and the
data is still checked byte for byte.

The bytes: a pseudo-random 1 MiB + 64 KiB block made once from a fixed seed;
stream `s`'s i-th MiB is the block's 1 MiB window at offset
(i * 7919 + s * 104729) mod 64 KiB, sent as a memoryview (no copy). No two
pieces of a stream (up to 64 GiB) start at the same offset, and two streams never
carry the same window at the same position: the data has no period, so a lost,
repeated, reordered or crossed piece changes the sha256.
The sender hashes what it sends, the receiver hashes what it reads (recv_into a
reusable 1 MiB buffer); the two digests must match.

The fake real server is an RPC proxy (rpcproxy.dll) and ActiveSync endpoint on
raw sockets, one thread per connection. Request fields that steer it (castellan
passes them on untouched): `X-Stream` (the stream's seed), `X-Carry` (how many
body bytes move before the test ends the stream by closing), `X-Declare` (the
Content-Length of an RPC_OUT_DATA response), `X-Hold-Ms` (how long a Ping is held).
Every socket has a timeout (no byte for STALL_S seconds is a stall, a failure),
every loop a deadline, and every thread is joined.
"""

import hashlib
import os
import random
import select
import socket
import threading
import time
import unittest

from harness import TcpServer, connect_via, wait_for
from test_http import HttpTestBase, split_head, values_of

SANITIZED = bool(os.environ.get("CASTELLAN_SANITIZED"))
MIB = 1 << 20
GIB = 1 << 30
# One stream of tests 1 and 2; under the sanitizer, enough to cross every buffer many times.
VOLUME = 64 * MIB if SANITIZED else GIB
# What each of the 64 streams carries at full speed (64 x 32 MiB = 2 GiB through castellan).
CROWD = 64
CROWD_CARRY = 1 * MIB if SANITIZED else 32 * MIB
RSS_GROWTH_LIMIT_KIB = 32 * 1024  # one 1 GiB stream
RSS_CROWD_LIMIT_KIB = 200 * 1024  # the whole process, 64 streams open
SAMPLE_INTERVAL = 0.1  # seconds between two RSS samples
STALL_S = 20.0  # no byte for this long on a stream: a stall
TRANSFER_DEADLINE = 150.0  # any one test's bytes must have moved by then
PING_HOLD_S = 60.0
PING_IDLE_S = 120

PIECE = MIB  # one sendall, one hash update, the receive buffer
SPREAD = 64 * 1024  # the offsets a piece may start at within the block
_BLOCK = random.Random(0x0A11CE).randbytes(PIECE + SPREAD)

RPC_TARGET = "/rpc/rpcproxy.dll?cas1:6001"
PING_TARGET = "/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=d1&DeviceType=iPhone"
OUT_REQUEST_BODY = bytes(range(76))  # RPC_OUT_DATA's request: one 76-byte CONN/A1 PDU
HEAD_LIMIT = 64 * 1024


def stream_pieces(seed, count):
    """The first `count` bytes of stream `seed`, as memoryviews of at most PIECE bytes (no copy)."""
    view = memoryview(_BLOCK)
    index, left = 0, count
    while left > 0:
        at = (index * 7919 + seed * 104729) % SPREAD
        size = min(PIECE, left)
        yield view[at:at + size]
        left -= size
        index += 1


def mib(n):
    return n / MIB


# ---------------------------------------------------------------------------
# Sockets


class Wire:
    """A socket with the bytes read past a head kept for the body; reads go into one
    reusable buffer. The socket's own timeout is the stall limit; `stopping` (a
    server's) ends waits early."""

    def __init__(self, sock, stopping=lambda: False):
        self.sock = sock
        self.stopping = stopping
        self.pending = bytearray()
        self._buf = bytearray(PIECE)
        self._view = memoryview(self._buf)

    def _read(self, size):
        if self.stopping():
            raise EOFError("the server is stopping")
        try:
            return self.sock.recv_into(self._view, size)
        except socket.timeout:
            raise socket.timeout(f"stall: no byte for {self.sock.gettimeout()} s") from None

    def head(self, deadline, limit=HEAD_LIMIT):
        """The next message head (through its blank line), or None at EOF before any byte of it."""
        while True:
            at = self.pending.find(b"\r\n\r\n")
            if at >= 0:
                head = bytes(self.pending[:at + 4])
                del self.pending[:at + 4]
                return head
            if len(self.pending) > limit:
                raise AssertionError(f"no end of head in {limit} bytes: {bytes(self.pending[:200])!r}")
            if time.monotonic() > deadline:
                raise socket.timeout(f"no whole head by the deadline: {bytes(self.pending[:200])!r}")
            got = self._read(65536)
            if got == 0:
                if not self.pending:
                    return None
                raise EOFError(f"EOF inside a head: {bytes(self.pending[:200])!r}")
            self.pending += self._view[:got]

    def body(self, count, digest, deadline):
        """Reads `count` bytes (the pending ones first) into `digest`; returns how many came
        (fewer: the peer closed)."""
        got = min(count, len(self.pending))
        if got:
            digest.update(self.pending[:got])
            del self.pending[:got]
        while got < count:
            if time.monotonic() > deadline:
                raise socket.timeout(f"{got} of {count} body bytes by the deadline")
            n = self._read(min(PIECE, count - got))
            if n == 0:
                break
            digest.update(self._view[:n])
            got += n
        return got

    def exactly(self, count, deadline):
        """`count` bytes (small ones: a request body, an answer)."""
        collect = _Collect()
        got = self.body(count, collect, deadline)
        if got < count:
            raise EOFError(f"EOF after {got} of {count} bytes")
        return bytes(collect.data)

    def send_stream(self, seed, count, digest, deadline):
        """Sends stream `seed`'s first `count` bytes in PIECE sendalls, hashing them into `digest`."""
        sent = 0
        for piece in stream_pieces(seed, count):
            if time.monotonic() > deadline or self.stopping():
                raise socket.timeout(f"{sent} of {count} bytes sent by the deadline")
            digest.update(piece)
            try:
                self.sock.sendall(piece)
            except socket.timeout:
                raise socket.timeout(f"stall: a {len(piece)}-byte piece did not go out in {self.sock.gettimeout()} s "
                                     f"after {sent} of {count} bytes") from None
            sent += len(piece)

    def send(self, data):
        self.sock.sendall(data)


class _Collect:
    """A digest-like sink that keeps the bytes (for Wire.exactly)."""

    def __init__(self):
        self.data = bytearray()

    def update(self, data):
        self.data += data


def content_length(fields):
    values = values_of(fields, "Content-Length")
    return int(values[0]) if values else 0


# ---------------------------------------------------------------------------
# The fake RPC proxy / ActiveSync server


class Seen:
    """What the server saw of one request, and how its stream ended."""

    def __init__(self, head):
        self.head = head
        self.start_line, self.fields = split_head(head)
        self.method, self.target = (self.start_line.split(" ") + ["", ""])[:2]
        self.stream = int(self.get("X-Stream") or 0)
        self.received = 0  # body bytes read by the carry point
        self.digest = None  # sha256 of those (RPC_IN_DATA) or of those sent (RPC_OUT_DATA)
        self.sent = 0
        self.after = 0  # bytes that came after the carry point (should be none)
        # How the connection ended after the carry point (a Ping: while held): "eof",
        # "reset", "stalled" (no close for STALL_S seconds), "stopped" (the test ended).
        self.ended = None

    def get(self, name):
        found = values_of(self.fields, name)
        return found[0] if found else None


class RpcProxyServer(TcpServer):
    """Answers RPC_IN_DATA, RPC_OUT_DATA and ActiveSync Ping as described at the top.

    RPC_IN_DATA: reads the body to X-Carry bytes (default: all of Content-Length),
    records their sha256; a whole body gets `200` with "len=N sha=HEX"; a partial
    one waits for the close. RPC_OUT_DATA: reads its small body, answers a head
    with Content-Length X-Declare, waits for `go`, sends X-Carry bytes of stream
    X-Stream and records their sha256; if that was not the whole body, waits for
    the close. Ping: reads the body, holds the answer X-Hold-Ms (watching for the
    client's close, which ends it), answers a 4 KiB body whose sha256 is in
    X-Body-Sha256; the connection is kept for the next request.
    """

    max_lifetime = 2 * TRANSFER_DEADLINE  # a bound on every handler loop

    def __init__(self):
        self.seen = []
        self.changed = threading.Condition()
        self.go = threading.Event()  # RPC_OUT_DATA bodies start when set
        self.go.set()
        super().__init__()

    def _note(self, record=None):
        with self.changed:
            if record is not None:
                self.seen.append(record)
            self.changed.notify_all()

    def records(self, method=None):
        with self.changed:
            return [r for r in self.seen if method is None or r.method == method]

    def handle(self, conn):
        conn.settimeout(STALL_S)
        wire = Wire(conn, self.stopping)
        deadline = time.monotonic() + self.max_lifetime
        try:
            while not self.stopping():
                head = wire.head(deadline)
                if head is None:
                    return
                record = Seen(head)
                self._note(record)
                if record.method == "RPC_IN_DATA":
                    keep = self._in_data(wire, record, deadline)
                elif record.method == "RPC_OUT_DATA":
                    keep = self._out_data(wire, record, deadline)
                else:
                    keep = self._ping(wire, record, deadline)
                if not keep:
                    return
        except (EOFError, socket.timeout, ConnectionResetError, BrokenPipeError) as error:
            with self._lock:
                self.errors.append(repr(error))

    def _rest_until_close(self, wire, record, left, deadline):
        """After the carry point: counts what else comes, notes how the connection ended."""
        try:
            record.after = wire.body(left, hashlib.sha256(), deadline)
            record.ended = "eof" if not self.stopping() else "stopped"
        except ConnectionResetError:
            record.ended = "reset"
        except EOFError:
            record.ended = "stopped"
        except socket.timeout:
            record.ended = "stalled"  # nothing, not even the close, for STALL_S seconds
        self._note()
        return False

    def _in_data(self, wire, record, deadline):
        declared = content_length(record.fields)
        carry = int(record.get("X-Carry") or declared)
        digest = hashlib.sha256()
        record.received = wire.body(carry, digest, deadline)
        record.digest = digest.hexdigest()
        self._note()
        if record.received < declared:
            return self._rest_until_close(wire, record, declared - record.received, deadline)
        answer = f"len={record.received} sha={record.digest}\n".encode()
        wire.send(b"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\n"
                  + f"Content-Length: {len(answer)}\r\n\r\n".encode() + answer)
        return True

    def _out_data(self, wire, record, deadline):
        wire.exactly(content_length(record.fields), deadline)
        declared = int(record.get("X-Declare"))
        carry = int(record.get("X-Carry") or declared)
        wire.send(b"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\n"
                  + f"Content-Length: {declared}\r\n\r\n".encode())
        while not self.go.wait(0.1):
            if self.stopping() or time.monotonic() > deadline:
                return False
        digest = hashlib.sha256()
        wire.send_stream(record.stream, carry, digest, deadline)
        record.sent = carry
        record.digest = digest.hexdigest()
        self._note()
        if carry < declared:
            # The client ends the stream by closing; nothing should come before that.
            return self._rest_until_close(wire, record, 1 << 62, deadline)
        return True

    def _ping(self, wire, record, deadline):
        record.received = len(wire.exactly(content_length(record.fields), deadline))
        hold_until = time.monotonic() + int(record.get("X-Hold-Ms") or 0) / 1000.0
        while time.monotonic() < hold_until and not self.stopping():
            # Held, but watching the connection: a client that gave up shows as its close.
            readable, _, _ = select.select([wire.sock], [], [], 0.05)
            if readable and not wire.pending:
                try:
                    closed = wire.sock.recv(1, socket.MSG_PEEK) == b""
                except ConnectionResetError:
                    closed = True
                if closed:
                    record.ended = "eof"
                    self._note()
                    return False
                time.sleep(0.05)  # a next request, early: it waits its turn
        if self.stopping():
            return False
        body = ping_answer()
        wire.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ms-sync.wbxml\r\n"
                  + f"X-Body-Sha256: {hashlib.sha256(body).hexdigest()}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return True


def ping_answer():
    """The held Ping's answer: 4 KiB of stream 7."""
    return b"".join(bytes(p) for p in stream_pieces(7, 4096))


# ---------------------------------------------------------------------------
# Requests


def rpc_head(method, stream, content_length, **steer):
    fields = [
        f"{method} {RPC_TARGET} HTTP/1.1",
        "Host: mail.example.test",
        "Accept: application/rpc",
        "User-Agent: MSRPC",
        "Cache-Control: no-cache",
        "Pragma: no-cache",
        "Connection: Keep-Alive",
        "Authorization: Basic YWxpY2U6c2VjcmV0",
        f"Content-Length: {content_length}",
        f"X-Stream: {stream}",
    ]
    fields += [f"X-{name.capitalize()}: {value}" for name, value in steer.items()]
    return ("\r\n".join(fields) + "\r\n\r\n").encode()


def in_data_head(stream, declared, carry=None):
    """An RPC_IN_DATA head declaring `declared` body bytes; its body follows."""
    return rpc_head("RPC_IN_DATA", stream, declared, **({"carry": carry} if carry is not None else {}))


def out_data_request(stream, declared, carry=None):
    """A whole RPC_OUT_DATA request asking for a response body of `declared` bytes."""
    steer = {"declare": declared}
    if carry is not None:
        steer["carry"] = carry
    return rpc_head("RPC_OUT_DATA", stream, len(OUT_REQUEST_BODY), **steer) + OUT_REQUEST_BODY


def ping_request(hold_ms):
    body = b"\x03\x01\x6a\x00\x00\x0d\x45\x48\x03\x36\x30\x30\x00\x01\x01"  # WBXML Ping, HeartbeatInterval 600
    return (f"POST {PING_TARGET} HTTP/1.1\r\nHost: mail.example.test\r\nUser-Agent: Apple-iPhone/1401.403\r\n"
            "Content-Type: application/vnd.ms-sync.wbxml\r\nMS-ASProtocolVersion: 14.1\r\n"
            f"X-Hold-Ms: {hold_ms}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def read_answer(wire, deadline):
    """(status, fields, body) of a response with a Content-Length body (small)."""
    head = wire.head(deadline)
    if head is None:
        raise EOFError("the connection closed before a response")
    status_line, fields = split_head(head)
    return int(status_line.split(" ")[1]), fields, wire.exactly(content_length(fields), deadline)


# ---------------------------------------------------------------------------
# castellan's memory


def proc_status(pid):
    """VmRSS and VmHWM of `pid` in KiB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid):
    """User + system CPU time `pid` has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Reads a process's VmRSS every SAMPLE_INTERVAL seconds in a thread, for at most
    `limit_s` seconds; stop() joins it and takes one last sample."""

    def __init__(self, pid, limit_s=TRANSFER_DEADLINE + 30):
        self.pid = pid
        self.limit_s = limit_s
        self.samples = []  # KiB
        self.error = None
        self._stop = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self):
        try:
            self.samples.append(proc_status(self.pid)["VmRSS"])
        except (OSError, KeyError) as error:  # the process is gone
            self.error = repr(error)
            self._stop.set()

    def _run(self):
        ends = time.monotonic() + self.limit_s
        while not self._stop.is_set() and time.monotonic() < ends:
            self._sample()
            self._stop.wait(SAMPLE_INTERVAL)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        if self._thread.ident is None or self._stopped:
            return self  # never started, or stopped already (a cleanup)
        self._stopped = True
        self._stop.set()
        self._thread.join(5.0)
        if self.error is None:
            self._sample()
        return self

    def peak(self):
        return max(self.samples) if self.samples else 0


# ---------------------------------------------------------------------------
# The tests


class OutlookAnywhereStreams(HttpTestBase):
    def setUp(self):
        self.began = time.monotonic()

    def start_rpc(self, timeouts=None):
        self.rpc = self.serve(RpcProxyServer())
        self.start_http(servers=[("cas1", self.rpc.port)], timeouts=timeouts)
        # Cleanups run last-in first-out: the server's connections end first, so
        # that castellan has no session left to wait for when it is stopped.
        self.addCleanup(self.rpc.stop)

    def open_wire(self, timeout=STALL_S):
        sock = connect_via(self.port, timeout=timeout)
        self.addCleanup(sock.close)
        return Wire(sock)

    def warm_up(self):
        """One small RPC_IN_DATA and one small RPC_OUT_DATA, whole, each on its own connection:
        after them castellan's sessions have made what they make for good."""
        deadline = time.monotonic() + 10.0
        wire = self.open_wire()
        wire.send(in_data_head(900, 4096))
        digest = hashlib.sha256()
        wire.send_stream(900, 4096, digest, deadline)
        status, _, body = read_answer(wire, deadline)
        self.assertEqual((status, body), (200, f"len=4096 sha={digest.hexdigest()}\n".encode()), self.log_tail())
        wire.sock.close()
        wire = self.open_wire()
        wire.send(out_data_request(901, 4096))
        head = wire.head(deadline)
        self.assertTrue(head and head.startswith(b"HTTP/1.1 200"), f"{head!r}" + self.log_tail())
        digest = hashlib.sha256()
        self.assertEqual(wire.body(4096, digest, deadline), 4096)
        wire.sock.close()
        self.assertTrue(self.proxy.running(), self.log_tail())
        time.sleep(0.3)  # the closes are through

    def memory_baseline(self):
        status = proc_status(self.proxy.pid)
        return status["VmRSS"], status["VmHWM"]

    def peak_now(self):
        """castellan's VmHWM now; a failure if castellan is gone."""
        try:
            return proc_status(self.proxy.pid)["VmHWM"]
        except (OSError, KeyError):
            self.fail(f"castellan is gone (exit code {self.proxy.proc.poll()})" + self.log_tail())

    def memory_report(self, what, sampler, rss_before, hwm_before, hwm_after):
        """Prints castellan's RSS over one stream; returns (text, growth KiB): the growth over
        the baseline of the highest sample, or of VmHWM if that rose during the stream
        and higher (a peak may fall between two samples)."""
        growth = sampler.peak() - rss_before
        if hwm_after > hwm_before:
            growth = max(growth, hwm_after - rss_before)
        text = (f"{what}: castellan VmRSS baseline {rss_before / 1024:.1f} MiB, highest of "
                f"{len(sampler.samples)} samples {sampler.peak() / 1024:.1f} MiB "
                f"(+{(sampler.peak() - rss_before) / 1024:.1f} MiB), VmHWM {hwm_before / 1024:.1f} -> "
                f"{hwm_after / 1024:.1f} MiB")
        print(f"  {text}", flush=True)
        if SANITIZED:
            print(f"  (sanitizer build: {mib(VOLUME):.0f} MiB instead of 1 GiB, and the RSS limit not asserted: "
                  "its shadow memory and quarantine count in its RSS)", flush=True)
        return text, growth

    def assert_growth_within(self, report, sampler):
        text, growth = report
        self.assertIsNone(sampler.error, f"castellan went away during the stream: {sampler.error}" + self.log_tail())
        if not SANITIZED:
            self.assertLess(growth, RSS_GROWTH_LIMIT_KIB, text)

    def request_line(self, method, nth):
        """castellan's nth `request` log line for `method` (waits briefly for it)."""
        lines = self.request_lines(lambda f: f.get("method") == method, count=nth)
        self.assertGreaterEqual(len(lines), nth, f"no request line {nth} for {method}" + self.log_tail())
        return lines[nth - 1]

    def tearDown(self):
        print(f"  [{self.id().rsplit('.', 1)[-1]}: {time.monotonic() - self.began:.1f} s in all]", flush=True)

    # -- 1 ------------------------------------------------------------------

    def test_rpc_in_data_1gib_upload(self):
        """RPC_IN_DATA with Content-Length 1 GiB: every byte reaches the server (sha256),
        and castellan's RSS grows by less than 32 MiB while it passes."""
        self.start_rpc()
        self.warm_up()
        pid = self.proxy.pid
        rss_before, hwm_before = self.memory_baseline()
        cpu_before = cpu_seconds(pid)
        sampler = RssSampler(pid).start()
        self.addCleanup(sampler.stop)
        wire = self.open_wire()
        started = time.monotonic()
        deadline = started + TRANSFER_DEADLINE
        wire.send(in_data_head(1, VOLUME))
        sent = hashlib.sha256()
        wire.send_stream(1, VOLUME, sent, deadline)
        sent_at = time.monotonic()
        status, _, body = read_answer(wire, deadline)
        elapsed = time.monotonic() - started
        sampler.stop()
        hwm_after = self.peak_now()
        cpu = cpu_seconds(pid) - cpu_before
        print(f"\n  RPC_IN_DATA {mib(VOLUME):.0f} MiB: sent in {sent_at - started:.2f} s, answered after "
              f"{elapsed:.2f} s ({mib(VOLUME) / elapsed:.0f} MiB/s); castellan CPU {cpu:.2f} s", flush=True)
        memory = self.memory_report(f"RPC_IN_DATA {mib(VOLUME):.0f} MiB", sampler, rss_before, hwm_before, hwm_after)

        self.assertEqual(status, 200, f"{body!r}" + self.log_tail())
        self.assertEqual(body, f"len={VOLUME} sha={sent.hexdigest()}\n".encode(), self.log_tail())
        seen = self.rpc.records("RPC_IN_DATA")[-1]
        self.assertEqual(seen.start_line, f"RPC_IN_DATA {RPC_TARGET} HTTP/1.1")
        self.assertEqual(values_of(seen.fields, "Content-Length"), [str(VOLUME)], seen.head)
        self.assertEqual(values_of(seen.fields, "Transfer-Encoding"), [], seen.head)
        line = self.request_line("RPC_IN_DATA", 2)  # the first was the warm-up's
        self.assertEqual(line.get("status"), "200", line)
        self.assertGreaterEqual(int(line.get("bytes_in", 0)), VOLUME, line)
        self.assert_growth_within(memory, sampler)

    # -- 2 ------------------------------------------------------------------

    def test_rpc_out_data_1gib_download(self):
        """RPC_OUT_DATA answered with Content-Length 1 GiB: the client reads every byte
        (sha256), and castellan's RSS grows by less than 32 MiB while it passes."""
        self.start_rpc()
        self.warm_up()
        pid = self.proxy.pid
        rss_before, hwm_before = self.memory_baseline()
        cpu_before = cpu_seconds(pid)
        sampler = RssSampler(pid).start()
        self.addCleanup(sampler.stop)
        wire = self.open_wire()
        started = time.monotonic()
        deadline = started + TRANSFER_DEADLINE
        wire.send(out_data_request(2, VOLUME))
        head = wire.head(deadline)
        self.assertIsNotNone(head, "the connection closed before the response" + self.log_tail())
        status_line, fields = split_head(head)
        got_head = time.monotonic()
        received = hashlib.sha256()
        got = wire.body(VOLUME, received, deadline)
        elapsed = time.monotonic() - started
        sampler.stop()
        hwm_after = self.peak_now()
        cpu = cpu_seconds(pid) - cpu_before
        print(f"\n  RPC_OUT_DATA {mib(got):.0f} MiB: head after {got_head - started:.3f} s, body read after "
              f"{elapsed:.2f} s ({mib(got) / elapsed:.0f} MiB/s); castellan CPU {cpu:.2f} s", flush=True)
        memory = self.memory_report(f"RPC_OUT_DATA {mib(VOLUME):.0f} MiB", sampler, rss_before, hwm_before, hwm_after)

        self.assertEqual(status_line, "HTTP/1.1 200 Success", head)
        self.assertEqual(values_of(fields, "Content-Length"), [str(VOLUME)], head)
        self.assertEqual(values_of(fields, "Transfer-Encoding"), [], head)
        self.assertEqual(got, VOLUME, f"the body ended after {got} of {VOLUME} bytes" + self.log_tail())
        self.assertTrue(wait_for(lambda: self.rpc.records("RPC_OUT_DATA")[-1].digest, 5.0))
        seen = self.rpc.records("RPC_OUT_DATA")[-1]
        self.assertEqual(seen.start_line, f"RPC_OUT_DATA {RPC_TARGET} HTTP/1.1")
        self.assertEqual(received.hexdigest(), seen.digest, "the body the client read is not the one the server sent")
        line = self.request_line("RPC_OUT_DATA", 2)  # the first was the warm-up's
        self.assertEqual(line.get("status"), "200", line)
        self.assertGreaterEqual(int(line.get("bytes_out", 0)), VOLUME, line)
        self.assert_growth_within(memory, sampler)

    # -- 3 ------------------------------------------------------------------

    def test_64_streams_at_once(self):
        """32 RPC_IN_DATA and 32 RPC_OUT_DATA streams open together, each declaring
        Content-Length 1 GiB; castellan's whole RSS stays under 200 MiB.

        Carried: all 64 heads pass first (the server has seen 64 requests, the 32
        RPC_OUT_DATA clients have their response heads); then every stream moves
        CROWD_CARRY bytes (32 MiB; 1 MiB under the sanitizer) of its own data at full
        speed, all at once, 2 GiB in all: the RPC_IN_DATA clients up, the RPC_OUT_DATA
        servers down. RSS is sampled from the moment the heads are through until every
        carried byte has arrived (the server has read each upload's share, each client
        each download's), with all 64 connections still open; VmHWM is read then too.
        Not carried: the remaining 1 GiB - 32 MiB of each declared body (64 GiB in all
        would take far too long on two cores; what castellan holds per stream does not
        depend on how much of the body is left). The test then ends every stream by
        closing its client socket, the way Outlook drops a channel, and checks that no
        upload carried more than its share and that castellan closed every upload's
        server connection.
        """
        self.start_rpc()
        self.warm_up()
        self.rpc.go.clear()  # RPC_OUT_DATA bodies wait for the start
        pid = self.proxy.pid
        rss_before, hwm_before = self.memory_baseline()
        cpu_before = cpu_seconds(pid)
        timeout = TRANSFER_DEADLINE
        ready = threading.Barrier(CROWD + 1, timeout=timeout)  # every head through
        carried = threading.Barrier(CROWD + 1, timeout=timeout)  # every client's share sent / read
        go = threading.Event()  # the clients start their shares
        release = threading.Event()  # the clients close (also: give up)
        results = {}  # stream -> (sha256 hex, byte count, seconds)
        errors = []
        socks = []
        lock = threading.Lock()

        def abandon():
            """Ends every wait of every stream thread: barriers broken, sockets shut."""
            release.set()
            ready.abort()
            carried.abort()
            with lock:
                for sock in socks:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def run(stream, upload):
            wire = None
            try:
                sock = connect_via(self.port, timeout=STALL_S)
                with lock:
                    socks.append(sock)
                wire = Wire(sock)
                deadline = time.monotonic() + timeout
                digest = hashlib.sha256()
                if upload:
                    wire.send(in_data_head(stream, GIB, CROWD_CARRY))
                else:
                    wire.send(out_data_request(stream, GIB, CROWD_CARRY))
                    head = wire.head(deadline)
                    if head is None or not head.startswith(b"HTTP/1.1 200 ") or \
                            values_of(split_head(head)[1], "Content-Length") != [str(GIB)]:
                        raise AssertionError(f"response head {head!r}")
                ready.wait()
                while not go.wait(0.1):
                    if release.is_set() or time.monotonic() > deadline:
                        return
                began = time.monotonic()
                if upload:
                    wire.send_stream(stream, CROWD_CARRY, digest, deadline)
                    count = CROWD_CARRY
                else:
                    count = wire.body(CROWD_CARRY, digest, deadline)
                with lock:
                    results[stream] = (digest.hexdigest(), count, time.monotonic() - began)
                carried.wait()
                release.wait(timeout)
            except threading.BrokenBarrierError:
                pass  # another stream failed, or the main thread gave up: it says why
            except (OSError, EOFError, AssertionError) as error:
                if not release.is_set():
                    with lock:
                        errors.append(f"stream {stream}: {error!r}")
                    abandon()
            finally:
                if wire is not None:
                    wire.sock.close()

        uploads = set(range(1, CROWD + 1, 2))  # odd streams: RPC_IN_DATA; even: RPC_OUT_DATA
        threads = [threading.Thread(target=run, args=(s, s in uploads), name=f"stream-{s}", daemon=True)
                   for s in range(1, CROWD + 1)]
        sampler = RssSampler(pid)
        self.addCleanup(sampler.stop)
        self.addCleanup(abandon)

        def shares_done():
            """The server's side of every stream has its share: read (uploads) or sent (downloads)."""
            return len([r for r in self.rpc.records() if 1 <= r.stream <= CROWD and r.digest]) == CROWD

        started = time.monotonic()
        for thread in threads:
            thread.start()
        finished = False
        try:
            ready.wait()
            heads_seen = wait_for(lambda: len(self.rpc.records()) >= CROWD + 2, 10.0)  # + the warm-up's two
            self.assertTrue(heads_seen, f"the server saw {len(self.rpc.records()) - 2} of {CROWD} requests"
                            + self.log_tail())
            heads_at = time.monotonic()
            sampler.start()
            go.set()
            self.rpc.go.set()
            carried.wait()
            wait_for(shares_done, 30.0)
            carried_at = time.monotonic()
            open_then = self.rpc.active
            sampler.stop()
            hwm_after = self.peak_now()
            finished = True
        except threading.BrokenBarrierError:
            self.fail(f"the streams did not all get through: {errors or 'a barrier timed out'}" + self.log_tail())
        finally:
            if not finished:
                abandon()  # the threads stop waiting on sockets too
            release.set()
            for thread in threads:
                thread.join(max(0.1, started + timeout + 10 - time.monotonic()))
        self.assertFalse([t.name for t in threads if t.is_alive()], "stream threads still running")
        self.assertEqual(errors, [], self.log_tail())
        cpu = cpu_seconds(pid) - cpu_before
        volume = CROWD * CROWD_CARRY
        slowest = max(r[2] for r in results.values())
        print(f"\n  {CROWD} streams: heads through in {heads_at - started:.2f} s; {mib(volume):.0f} MiB carried in "
              f"{carried_at - heads_at:.2f} s ({mib(volume) / (carried_at - heads_at):.0f} MiB/s; slowest stream "
              f"{slowest:.2f} s); castellan CPU {cpu:.2f} s", flush=True)
        report = (f"{CROWD} streams open: castellan VmRSS baseline {rss_before / 1024:.1f} MiB, highest of "
                  f"{len(sampler.samples)} samples {sampler.peak() / 1024:.1f} MiB "
                  f"(+{(sampler.peak() - rss_before) / 1024:.1f} MiB), VmHWM {hwm_before / 1024:.1f} -> "
                  f"{hwm_after / 1024:.1f} MiB")
        print(f"  {report}", flush=True)
        if SANITIZED:
            print(f"  (sanitizer build: {mib(CROWD_CARRY):.0f} MiB per stream instead of 32, and the RSS limit not "
                  "asserted: its shadow memory and quarantine count in its RSS)", flush=True)

        # What was carried: each stream's share, intact, on its own connection.
        self.assertEqual(open_then, CROWD, "server connections open when every share had arrived")
        self.assertEqual(sorted(results), list(range(1, CROWD + 1)))
        by_stream = {r.stream: r for r in self.rpc.records() if r.stream in results}
        for stream, (digest, count, _) in sorted(results.items()):
            seen = by_stream[stream]
            method = "RPC_IN_DATA" if stream in uploads else "RPC_OUT_DATA"
            self.assertEqual(seen.method, method, f"stream {stream}")
            self.assertEqual(count, CROWD_CARRY, f"stream {stream}")
            self.assertEqual(seen.digest, digest, f"stream {stream} ({method}): the bytes differ")
            if method == "RPC_IN_DATA":
                self.assertEqual(seen.received, CROWD_CARRY, f"stream {stream}")
                self.assertEqual(values_of(seen.fields, "Content-Length"), [str(GIB)], seen.head)
        # The ends: the clients closed; castellan closed each upload's server
        # connection, and nothing came after the share.
        ins = [r for r in self.rpc.records("RPC_IN_DATA") if r.stream in uploads]
        wait_for(lambda: all(r.ended for r in ins), 10.0)
        self.assertEqual([(r.stream, r.ended, r.after) for r in ins if (r.ended, r.after) != ("eof", 0)], [],
                         "uploads that did not end with an EOF right after their share" + self.log_tail())
        self.assertTrue(self.proxy.running(), self.log_tail())

        self.assertIsNone(sampler.error, f"castellan went away: {sampler.error}" + self.log_tail())
        if SANITIZED:
            return
        self.assertLess(sampler.peak(), RSS_CROWD_LIMIT_KIB, report)
        self.assertLess(hwm_after, RSS_CROWD_LIMIT_KIB, report)

    # -- 4 ------------------------------------------------------------------

    def test_activesync_ping_held_60s(self):
        """With idle_s 120, a Ping the server answers 60 s later reaches the client intact,
        and the connection serves the next Ping."""
        self.start_rpc(timeouts={"idle_s": PING_IDLE_S})
        wire = self.open_wire(timeout=PING_HOLD_S + 30)
        started = time.monotonic()
        wire.send(ping_request(int(PING_HOLD_S * 1000)))
        try:
            status, fields, body = read_answer(wire, started + PING_HOLD_S + 30)
        except (OSError, EOFError) as error:
            self.fail(f"the held Ping got no answer: {error!r} after {time.monotonic() - started:.1f} s"
                      + self.log_tail())
        elapsed = time.monotonic() - started
        print(f"\n  Ping held {PING_HOLD_S:.0f} s by the server: answered after {elapsed:.2f} s", flush=True)
        self.assertEqual(status, 200, self.log_tail())
        self.assertGreaterEqual(elapsed, PING_HOLD_S)
        self.assertLess(elapsed, PING_HOLD_S + 10)
        self.assertEqual(body, ping_answer())
        self.assertEqual(values_of(fields, "X-Body-Sha256"), [hashlib.sha256(body).hexdigest()])
        line = self.request_line("POST", 1)
        self.assertEqual((line.get("status"), line.get("reason")), ("200", None), line)
        self.assertGreaterEqual(int(line.get("duration_ms", 0)), PING_HOLD_S * 1000, line)
        # The connection outlived the hold: the next Ping goes on it.
        wire.send(ping_request(0))
        status, _, body = read_answer(wire, time.monotonic() + 10.0)
        self.assertEqual((status, body), (200, ping_answer()), self.log_tail())
        self.assertEqual(self.rpc.connections, 1, "the second Ping needed a new server connection")

    # -- 5 ------------------------------------------------------------------

    def test_client_close_mid_stream_reaches_the_server(self):
        """Outlook drops a channel, and a phone gives up a Ping, by closing the connection:
        castellan must close the server's connection too, whatever it was waiting on
        (the client, mid-upload; the server, mid-download or before the answer), or a
        CAS connection stays held for a client that is gone (until the server next
        writes, or idle_s)."""
        self.start_rpc()
        deadline = time.monotonic() + 10.0
        upload = self.open_wire()
        upload.send(in_data_head(11, GIB, MIB))
        upload.send_stream(11, MIB, hashlib.sha256(), deadline)
        download = self.open_wire()
        download.send(out_data_request(12, GIB, MIB))
        self.assertIsNotNone(download.head(deadline), self.log_tail())
        self.assertEqual(download.body(MIB, hashlib.sha256(), deadline), MIB, self.log_tail())
        ping = self.open_wire()
        ping.send(ping_request(30000))

        def by_stream():
            return {r.stream: r for r in self.rpc.records()}

        carried = wait_for(lambda: len(by_stream()) == 3 and by_stream()[11].digest and by_stream()[12].digest, 5.0)
        self.assertTrue(carried, "the three streams did not get going" + self.log_tail())
        time.sleep(0.2)  # the download's server waits for the close, the Ping is held
        for wire in (upload, download, ping):
            wire.sock.close()
        closed_at = time.monotonic()
        what = {11: "RPC_IN_DATA mid-upload", 12: "RPC_OUT_DATA mid-download", 0: "Ping held"}
        wait_for(lambda: all(r.ended for r in by_stream().values()), 3.0)
        waited = time.monotonic() - closed_at
        ends = {what[s]: r.ended for s, r in by_stream().items()}
        print(f"\n  {waited:.2f} s after the clients closed, the server connections: {ends}", flush=True)
        problems = [f"{w}: the server connection was still open 3 s after the client closed"
                    for w, end in ends.items() if end is None]
        problems += [f"{w}: the server connection ended by {end!r}, not by a close" for w, end in ends.items()
                     if end not in (None, "eof")]
        # The dropped upload is the client's doing: its line says so, and is no 502.
        uploads = self.request_lines(lambda f: f.get("method") == "RPC_IN_DATA")
        if not uploads or uploads[0].get("status") == "502" or uploads[0].get("reason") != "client_closed":
            problems.append(f"RPC_IN_DATA mid-upload: logged as {uploads[:1]}, not as reason=client_closed")
        self.assertEqual(problems, [], self.log_tail())


if __name__ == "__main__":
    unittest.main()
