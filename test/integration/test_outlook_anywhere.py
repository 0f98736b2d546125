"""Outlook Anywhere through http mode with a real RPC over HTTP v2 client: impacket's.

Outlook Anywhere (MS-RPCH, RPC over HTTP v2) opens two HTTP/1.1 requests per
session, on two TCP connections: an IN channel (`RPC_IN_DATA`, the client's RPC
traffic, declared `Content-Length: 1073741824`) and an OUT channel (`RPC_OUT_DATA`,
whose 1 GiB *response* carries the server's). The first body bytes of each are an
RTS PDU naming the session's 16-byte virtual connection cookie: CONN/B1 on the IN
channel, CONN/A1 on the OUT channel. The RPC proxy on the CAS joins the two channels
by that cookie, so both must reach the same CAS: split, the OUT channel never gets
its CONN/C2 and Outlook cannot connect.

The client is impacket's (Debian 12: python3-impacket 0.10.0) `ncacn_http`
transport made by `DCERPCTransportFactory`, pointed at castellan with an RPC proxy
URL, Basic authentication. What it sends for one session (rpch.py RPCProxyClient):

  1. connection 1: `RPC_IN_DATA /rpc/rpcproxy.dll?outlook.contoso.com:6001 HTTP/1.1`
     with `Content-Length: 1073741824`, `Expect: 100-continue`, `Authorization:
     Basic ...`, `Connection: Keep-Alive`, `Accept: application/rpc`,
     `User-Agent: MSRPC`; it reads the socket until it sees `HTTP/1.1 100 Continue`;
  2. connection 2: `RPC_OUT_DATA`, the same target and fields but `Content-Length: 76`;
     again waits for `100 Continue`;
  3. CONN/A1 (76 bytes: Version, virtual connection cookie, OUT channel cookie,
     ReceiveWindowSize) on the OUT channel, then CONN/B1 (104 bytes: Version, the same
     virtual connection cookie, IN channel cookie, ChannelLifetime, ClientKeepalive,
     AssociationGroupId) on the IN channel;
  4. reads the OUT channel's response: a `200` head, then CONN/A3 and CONN/C2.
Then `DCERPC_v5.bind` writes a DCE/RPC bind (EMSMDB, Exchange's mailbox interface)
on the IN channel and reads the bind_ack from the OUT channel.

The fake CAS (FakeRpcProxy, raw sockets, one thread per connection) plays the RPC
proxy and the RPC server behind it: it answers `100 Continue`, checks the Basic
credentials and the target, reads the first RTS PDU of each channel and records
(server, channel, virtual connection cookie, client address from X-Forwarded-For).
On the OUT channel it answers a `200` head with `Content-Length: 1073741824` and
CONN/A3 at once, and CONN/C2 only once this same server holds the IN channel with
that cookie (as a real RPC proxy, whose C2 follows the server's C1, sent when the
server has both channels). A bind on an IN channel is answered on the paired OUT
channel by a bind_ack whose secondary address is the server's name: the client
learns who served it, through both channels.

impacket's HTTP connections: `HTTPClientSecurityProvider.connect` opens them with
`http.client.HTTPConnection(netloc)`: no source address, no timeout. It is called
by class (`HTTPClientSecurityProvider.connect(self, ...)` in `create_channel`), so a
subclass cannot override it; the test patches that one method while it runs
(`mock.patch.object`, undone in cleanup). For transports the test marked with a
source address, the patch opens the connection from that address (127.0.0.2 ..
127.0.0.11: loopback answers the whole 127/8) with IO_TIMEOUT on the socket, and
turns an EOF into an error: impacket reads the OUT channel with `recv()` in a loop
that never checks for b"" (`rpc_out_read_pkt`), so a closed channel would spin
forever. impacket itself is not changed; everything else it does as it would.

castellan (two worker threads) serves Outlook Anywhere as the README's example does
(conf/examples/exchange2010-https.json, `cas-outlook-anywhere`): `rpc_http`
persistence (the virtual connection cookie of each channel's first RTS PDU, hashed
onto the servers; impacket keeps no HTTP cookies), least connections, an http
health check of `/rpc/rpcproxy.dll` expecting 401 (the fake CAS answers it as IIS
does), idle_s 7200; on loopback, in plain HTTP or TLS terminate instead of
re-encrypt. The sessions' virtual connection cookies come from a seeded random
generator (set on impacket's transport before it connects), so a run places them
as every other run does. What each test proves:

  test_rpc_http_pairs_both_channels_of_50_sessions_from_one_address
      50 sessions from ONE client address (a NAT), all started at once and held
      open together: every one established and bound; both channels of each reach
      the server that answered its bind (the cookie seen there on both, with the
      client's address in X-Forwarded-For); the sessions spread over both servers
      within 60/40; when the clients close, castellan closes every server-side
      connection within CLOSE_DEADLINE
  test_the_same_through_tls_terminate
      the same with castellan terminating TLS (impacket's https://), X-Forwarded-Proto https
  test_each_channel_through_another_castellan
      two castellan processes with the same config (an HA pair, both active): every
      session's IN channel through one and its OUT channel through the other; both
      channels still meet, within 60/40
  test_source_ip_keeps_both_channels_of_50_sessions_on_one_cas
      the README's fallback for NTLM without cookies: `source_ip` from 10 client
      addresses (5 sessions each): both channels of each on one server, every
      session of one address on one server, both servers get addresses

Without persistence (round robin, `"type": "none"`), 18 to 26 of the 50 sessions
split their channels and time out waiting for CONN/C2: the session test fails.
"""

import base64
import collections
import http.client
import random
import socket
import ssl
import struct
import threading
import time
import unittest
from unittest import mock

from harness import TcpServer, wait_for
import test_http
from test_http import Buffered, HttpTestBase, self_signed, split_head, values_of

try:
    from impacket import http as impacket_http
    from impacket.dcerpc.v5 import transport as impacket_transport
    from impacket.dcerpc.v5.rpcrt import MSRPCBindAck
    from impacket.uuid import uuidtup_to_bin
    IMPACKET_MISSING = None
except ImportError as error:  # not installed, or another interpreter than Debian's
    IMPACKET_MISSING = (f"impacket is not importable ({error}); on Debian 12 install python3-impacket "
                        "(scripts/setup.sh) and run the tests with /usr/bin/python3")

IO_TIMEOUT = 5.0  # every client and server socket operation
PAIR_TIMEOUT = IO_TIMEOUT  # how long an OUT channel waits for its IN channel before C2
ESTABLISH_DEADLINE = 30.0  # all sessions connected and bound (or failed) by then
CLOSE_DEADLINE = 5.0  # castellan closes the servers' sides after the clients left
HEAD_LIMIT = 64 * 1024
MAX_PDU = 64 * 1024

SESSIONS = 50
CLIENT_ADDRESSES = [f"127.0.0.{i}" for i in range(2, 12)]  # 10 addresses
NAT_ADDRESS = ["127.0.0.2"]  # every session from one address
COOKIE_SEED = 2010  # the sessions' virtual connection cookies

RPC_SERVER = "outlook.contoso.com"  # the CAS array name Outlook's profile carries
RPC_PORT = 6001  # Exchange's MS-OXCRPC endpoint behind the RPC proxy
RPC_TARGET = f"/rpc/rpcproxy.dll?{RPC_SERVER}:{RPC_PORT}"
DOMAIN, USER, PASSWORD = "CONTOSO", "alice", "Passw0rd!"
AUTHORIZATION = "Basic " + base64.b64encode(f"{DOMAIN}\\{USER}:{PASSWORD}".encode()).decode()
EMSMDB = ("a4f1db00-ca47-1067-b31f-00dd010662da", "0.81")  # MS-OXCRPC's interface
CHANNEL_LENGTH = 1073741824  # what Outlook, IIS and impacket declare for a channel

# MS-RPCH 2.2.3: PDU types, RTS command types and their sizes after the 4-byte type.
PTYPE_BIND, PTYPE_BIND_ACK, PTYPE_RTS = 0x0B, 0x0C, 0x14
RECEIVE_WINDOW_SIZE, CONNECTION_TIMEOUT, COOKIE, VERSION = 0x0, 0x2, 0x3, 0x6
CHANNEL_LIFETIME, CLIENT_KEEPALIVE, PADDING, CLIENT_ADDRESS, ASSOCIATION_GROUP_ID = 0x4, 0x5, 0x8, 0xB, 0xC
RTS_COMMAND_SIZES = {0x0: 4, 0x1: 24, 0x2: 4, 0x3: 16, 0x4: 4, 0x5: 4, 0x6: 4, 0x7: 0,
                     0x9: 0, 0xA: 0, 0xC: 16, 0xD: 4, 0xE: 4}
CONN_A1 = [VERSION, COOKIE, COOKIE, RECEIVE_WINDOW_SIZE]
CONN_B1 = [VERSION, COOKIE, COOKIE, CHANNEL_LIFETIME, CLIENT_KEEPALIVE, ASSOCIATION_GROUP_ID]


# ---------------------------------------------------------------------------
# DCE/RPC and RTS PDUs (C706 12.6, MS-RPCH 2.2.3.6), built and parsed by the fake CAS


def pdu_header(ptype, frag_len, call_id=0):
    """The 16-byte connection-oriented common header: v5.0, first and last fragment, NDR."""
    return struct.pack("<BBBBIHHI", 5, 0, ptype, 0x03, 0x10, frag_len, 0, call_id)


def rts_pdu(commands, flags=0):
    """An RTS PDU of (command type, little-endian value bytes) pairs."""
    body = b"".join(struct.pack("<I", kind) + value for kind, value in commands)
    return pdu_header(PTYPE_RTS, 20 + len(body)) + struct.pack("<HH", flags, len(commands)) + body


def conn_a3():
    """CONN/A3 (MS-RPCH 2.2.4.4): the outbound proxy's connection timeout."""
    return rts_pdu([(CONNECTION_TIMEOUT, struct.pack("<I", 120000))])


def conn_c2():
    """CONN/C2 (MS-RPCH 2.2.4.9): the virtual connection is established."""
    return rts_pdu([(VERSION, struct.pack("<I", 1)), (RECEIVE_WINDOW_SIZE, struct.pack("<I", 65536)),
                    (CONNECTION_TIMEOUT, struct.pack("<I", 120000))])


def parse_rts_commands(pdu):
    """[(command type, value bytes)] of an RTS PDU; ValueError if it is not a well-formed one."""
    if len(pdu) < 20 or pdu[2] != PTYPE_RTS:
        raise ValueError(f"not an RTS PDU: {pdu[:20].hex()}")
    count = struct.unpack_from("<H", pdu, 18)[0]
    at, commands = 20, []
    for _ in range(count):
        if at + 4 > len(pdu):
            raise ValueError(f"RTS PDU ends inside command {len(commands)}")
        kind = struct.unpack_from("<I", pdu, at)[0]
        at += 4
        if kind == PADDING:
            size = 4 + struct.unpack_from("<I", pdu, at)[0]
        elif kind == CLIENT_ADDRESS:
            size = 4 + (4 if struct.unpack_from("<I", pdu, at)[0] == 0 else 16) + 12
        elif kind in RTS_COMMAND_SIZES:
            size = RTS_COMMAND_SIZES[kind]
        else:
            raise ValueError(f"unknown RTS command {kind:#x}")
        if at + size > len(pdu):
            raise ValueError(f"RTS command {kind:#x} runs past the PDU")
        commands.append((kind, pdu[at:at + size]))
        at += size
    return commands


def bind_ack(bind, server_name, accepted):
    """The bind_ack to `bind` (a whole bind PDU): each context item accepted with its
    first transfer syntax when its abstract syntax is `accepted`, else rejected
    (provider rejection, abstract syntax not supported); the secondary address
    carries `server_name`."""
    call_id = struct.unpack_from("<I", bind, 12)[0]
    max_tfrag, max_rfrag, _, count = struct.unpack_from("<HHIB", bind, 16)
    at, results = 28, b""
    for _ in range(count):
        _, transfers = struct.unpack_from("<HB", bind, at)
        abstract, first_transfer = bind[at + 4:at + 24], bind[at + 24:at + 44]
        at += 24 + 20 * transfers
        if abstract == accepted:
            results += struct.pack("<HH", 0, 0) + first_transfer
        else:
            results += struct.pack("<HH", 2, 1) + b"\0" * 20
    secondary = server_name.encode() + b"\0"
    body = struct.pack("<HHIH", max_tfrag, max_rfrag, 0x5151, len(secondary)) + secondary
    body += b"\0" * ((4 - (16 + len(body)) % 4) % 4)
    body += struct.pack("<BBH", count, 0, 0) + results
    return pdu_header(PTYPE_BIND_ACK, 16 + len(body), call_id) + body


def read_pdu(io, timeout):
    """One whole PDU from a Buffered, framed by its frag_len."""
    header = io.exactly(16, timeout=timeout)
    if header[0] != 5:
        raise ValueError(f"not a DCE/RPC v5 PDU: {header.hex()}")
    frag_len = struct.unpack_from("<H", header, 8)[0]
    if not 16 <= frag_len <= MAX_PDU:
        raise ValueError(f"frag_len {frag_len}")
    return header + io.exactly(frag_len - 16, timeout=timeout)


# ---------------------------------------------------------------------------
# The fake CAS: RPC proxy and RPC server in one

ChannelRecord = collections.namedtuple("ChannelRecord", "server channel cookie client scheme")


class VirtualConnection:
    """One cookie's channels on one server; `lock` orders writes to the OUT channel."""

    def __init__(self):
        self.out_conn = None
        self.has_in = False
        self.lock = threading.Lock()


class FakeRpcProxy(TcpServer):
    """The fake CAS described at the top of this file.

    `records`: a ChannelRecord per channel whose first RTS PDU was read;
    `protocol_errors`: what it refused and why (the test expects none);
    `binds`: how many binds it answered. All guarded by `_state`.
    """

    def __init__(self, name):
        self.name = name
        self.records = []
        self.protocol_errors = []
        self.binds = 0
        self.health_checks = 0
        self._state = threading.Condition()
        self._vconns = {}  # cookie -> VirtualConnection
        super().__init__()

    def _refuse(self, conn, status, why, extra=""):
        with self._state:
            self.protocol_errors.append(why)
        self.sendall(conn, f"HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())

    def handle(self, conn):
        io = Buffered(conn, timeout=IO_TIMEOUT, stopping=self.stopping)
        try:
            head = io.until(b"\r\n\r\n", limit=HEAD_LIMIT)
        except (EOFError, socket.timeout):
            return
        start_line, fields = split_head(head)
        method, target, _ = (start_line.split(" ") + ["", "", ""])[:3]
        if method == "GET" and target == "/rpc/rpcproxy.dll" and not values_of(fields, "Authorization"):
            # castellan's health check, answered as IIS answers it without credentials.
            with self._state:
                self.health_checks += 1
            self.sendall(conn, (f'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="{RPC_SERVER}"\r\n'
                                "Content-Length: 0\r\nConnection: close\r\n\r\n").encode())
            return
        channel = {"RPC_IN_DATA": "in", "RPC_OUT_DATA": "out"}.get(method)
        if channel is None or target != RPC_TARGET:
            return self._refuse(conn, "404 Not Found", f"{start_line!r}")
        if values_of(fields, "Authorization") != [AUTHORIZATION]:
            return self._refuse(conn, "401 Unauthorized", f"{method}: credentials {values_of(fields, 'Authorization')}",
                                f'WWW-Authenticate: Basic realm="{RPC_SERVER}"\r\n')
        if values_of(fields, "Content-Length") != ["76" if channel == "out" else str(CHANNEL_LENGTH)]:
            return self._refuse(conn, "400 Bad Request", f"{method}: Content-Length {values_of(fields, 'Content-Length')}")
        forwarded = values_of(fields, "X-Forwarded-For")
        client = forwarded[-1].split(",")[-1].strip() if forwarded else None
        scheme = ",".join(values_of(fields, "X-Forwarded-Proto"))
        if any(v.lower() == "100-continue" for v in values_of(fields, "Expect")):
            # IIS answers it at once: the client sends no body byte before it.
            if not self.sendall(conn, b"HTTP/1.1 100 Continue\r\n\r\n"):
                return
        try:
            first = read_pdu(io, IO_TIMEOUT)
            commands = parse_rts_commands(first)
        except (EOFError, socket.timeout, ValueError) as error:
            with self._state:
                self.protocol_errors.append(f"{method}: no first RTS PDU: {error}")
            return
        expected = CONN_A1 if channel == "out" else CONN_B1
        if [kind for kind, _ in commands] != expected:
            return self._refuse(conn, "400 Bad Request", f"{method}: not CONN/{'A1' if channel == 'out' else 'B1'}: "
                                f"{[hex(kind) for kind, _ in commands]}")
        cookie = commands[1][1]
        with self._state:
            self.records.append(ChannelRecord(self.name, channel, cookie, client, scheme))
            vconn = self._vconns.setdefault(cookie, VirtualConnection())
        if channel == "out":
            self._serve_out(conn, vconn)
        else:
            self._serve_in(io, vconn)

    def _serve_out(self, conn, vconn):
        """A 200 head and CONN/A3 at once; CONN/C2 once the IN channel is here too;
        then holds the channel until the client (through castellan) closes it."""
        with vconn.lock:
            vconn.out_conn = conn
            head = (f"HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\n"
                    f"Content-Length: {CHANNEL_LENGTH}\r\n\r\n").encode()
            if not self.sendall(conn, head + conn_a3()):
                return
        with self._state:
            paired = self._state.wait_for(lambda: vconn.has_in or self.stopping(), PAIR_TIMEOUT) and vconn.has_in
        if paired:
            with vconn.lock:
                if not self.sendall(conn, conn_c2()):
                    return
        while self.recv(conn):  # no more bytes are due on an OUT channel; EOF ends it
            pass

    def _serve_in(self, io, vconn):
        """Reads the IN channel's PDUs until it ends; a bind is answered on the OUT
        channel of the same virtual connection, when this server holds it."""
        with self._state:
            vconn.has_in = True
            self._state.notify_all()
        accepted = uuidtup_to_bin(EMSMDB)
        while True:
            try:
                pdu = read_pdu(io, timeout=TcpServer.max_lifetime)
            except (EOFError, socket.timeout, ConnectionError):
                return
            except ValueError as error:
                with self._state:
                    self.protocol_errors.append(f"RPC_IN_DATA: {error}")
                return
            if pdu[2] != PTYPE_BIND:
                continue  # RTS flow control or pings: nothing to answer in this test
            with vconn.lock:
                out_conn = vconn.out_conn
                if out_conn is None:
                    with self._state:
                        self.protocol_errors.append("a bind on an IN channel whose OUT channel is elsewhere")
                    continue
                self.sendall(out_conn, bind_ack(pdu, self.name, accepted))
            with self._state:
                self.binds += 1

    def snapshot(self):
        with self._state:
            return list(self.records), list(self.protocol_errors), self.binds


# ---------------------------------------------------------------------------
# impacket's sockets: from a chosen address, with a timeout, EOF an error

SOURCE_ATTR = "_castellan_test_source_ip"
NETLOCS_ATTR = "_castellan_test_netlocs"  # where each next channel connects, in order
_impacket_connect = impacket_http.HTTPClientSecurityProvider.connect if not IMPACKET_MISSING else None


class _EofIsAnError:
    """A socket whose recv() raises at EOF instead of returning b"" (impacket's OUT
    channel reader would ask again forever)."""

    def __init__(self, sock):
        self._sock = sock

    def recv(self, size, *flags):
        data = self._sock.recv(size, *flags)
        if not data:
            raise ConnectionAbortedError("the channel was closed (EOF)")
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _BoundConnection(http.client.HTTPConnection):
    """http.client's connection, opened from `source_ip` with IO_TIMEOUT."""

    def __init__(self, netloc, source_ip):
        super().__init__(netloc, timeout=IO_TIMEOUT, source_address=(source_ip, 0))

    def connect(self):
        super().connect()
        self.sock = _EofIsAnError(self.sock)


class _BoundTlsConnection(http.client.HTTPSConnection):
    """The same over TLS, trusting any certificate, as impacket's own HTTPS connection does."""

    def __init__(self, netloc, source_ip):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().__init__(netloc, timeout=IO_TIMEOUT, source_address=(source_ip, 0), context=context)

    def connect(self):
        super().connect()
        self.sock = _EofIsAnError(self.sock)


def _connect_from_source(provider, protocol, netloc):
    """Stands in for HTTPClientSecurityProvider.connect while the tests run."""
    source_ip = getattr(provider, SOURCE_ATTR, None)
    if source_ip is None:
        return _impacket_connect(provider, protocol, netloc)
    # impacket opens the IN channel, then the OUT channel (RPCProxyClient.connect).
    netlocs = getattr(provider, NETLOCS_ATTR, None)
    if netlocs:
        netloc = netlocs.pop(0)
    return (_BoundTlsConnection if protocol == "https" else _BoundConnection)(netloc, source_ip)


class Session:
    """One Outlook Anywhere session: its client address, impacket's transport and
    virtual connection cookie, the server named by the bind_ack, or an error."""

    def __init__(self, index, source_ip, proxy_url, cookie, netlocs=None):
        self.index = index
        self.source_ip = source_ip
        self.served_by = None
        self.error = None
        self.transport = impacket_transport.DCERPCTransportFactory(f"ncacn_http:{RPC_SERVER}[{RPC_PORT}]")
        self.transport.set_rpc_proxy_url(proxy_url)
        self.transport.set_auth_type(impacket_http.AUTH_BASIC)
        self.transport.set_credentials(USER, PASSWORD, DOMAIN)
        setattr(self.transport, SOURCE_ATTR, source_ip)
        if netlocs:
            setattr(self.transport, NETLOCS_ATTR, list(netlocs))
        # impacket keeps the cookie private (name-mangled); it is made with the
        # transport, random: the test sets its own, from a seeded generator.
        self.transport._RPCProxyClient__virtualConnectionCookie = cookie
        self.cookie = cookie

    def run(self, ready, release):
        """Connects (both channels, CONN/A1..C2) and binds EMSMDB; sets `ready`; holds
        the session open until `release` (bounded); closes both channels."""
        try:
            dce = self.transport.get_dce_rpc()
            dce.connect()
            ack = MSRPCBindAck(dce.bind(uuidtup_to_bin(EMSMDB)).getData())
            name = ack["SecondaryAddr"]
            self.served_by = (name.decode() if isinstance(name, bytes) else name).rstrip("\0")
        except Exception as error:  # impacket raises its own types, socket errors, struct errors
            self.error = f"{type(error).__name__}: {error}"
        finally:
            ready.set()
        release.wait(ESTABLISH_DEADLINE)
        try:
            self.transport.disconnect()  # closes the IN channel, then the OUT channel
        except (KeyError, OSError):  # a channel never opened
            pass

    def __repr__(self):
        return (f"session {self.index} from {self.source_ip} cookie {self.cookie.hex()[:8]}: "
                f"{self.served_by or self.error}")


# ---------------------------------------------------------------------------


@unittest.skipIf(IMPACKET_MISSING, IMPACKET_MISSING or "")
class OutlookAnywhereTest(HttpTestBase):
    def setUp(self):
        patcher = mock.patch.object(impacket_http.HTTPClientSecurityProvider, "connect", _connect_from_source)
        patcher.start()
        self.addCleanup(patcher.stop)

    def open_sessions(self, count, addresses, proxy_url, netlocs=None):
        """`count` sessions to `proxy_url`, session i from addresses[i % len(addresses)],
        all started at once and held open together until every one is bound or failed;
        then all closed. `netlocs`: where the IN and the OUT channel connect instead
        of the URL's. Returns the Sessions."""
        chooser = random.Random(COOKIE_SEED)
        cookies = [bytes(chooser.getrandbits(8) for _ in range(16)) for _ in range(count)]
        sessions = [Session(i, addresses[i % len(addresses)], proxy_url, cookies[i], netlocs) for i in range(count)]
        release = threading.Event()
        self.addCleanup(release.set)
        readies = [threading.Event() for _ in sessions]
        threads = [threading.Thread(target=s.run, args=(r, release), name=f"oa-session-{s.index}", daemon=True)
                   for s, r in zip(sessions, readies)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + ESTABLISH_DEADLINE
        for ready in readies:
            ready.wait(max(0.0, deadline - time.monotonic()))
        self.open_together = sum(1 for s in sessions if s.served_by)
        release.set()
        for thread in threads:
            thread.join(max(0.1, deadline + IO_TIMEOUT - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        self.assertEqual(stuck, [], "session threads still running")
        return sessions

    RPC_HTTP = {"type": "rpc_http", "timeout_s": 7200}

    def start_outlook_anywhere(self, tls=None, persistence=None, cas=None):
        """Two fake CAS servers behind castellan, configured as the README's example
        (conf/examples/exchange2010-https.json, `cas-outlook-anywhere`) but on loopback
        and in plain HTTP or TLS terminate instead of re-encrypt. `cas`: the servers of
        a castellan started before (a second balancer). Returns the servers by name."""
        cas = cas or {name: self.serve(FakeRpcProxy(name)) for name in ("cas1", "cas2")}
        self.start_http(servers=[(name, server.port) for name, server in cas.items()], tls=tls,
                        scheduler="least_connections", persistence=persistence or self.RPC_HTTP,
                        health_check={"type": "http", "path": "/rpc/rpcproxy.dll", "expect_status": [401],
                                      "interval_ms": 1000, "timeout_ms": 500},
                        timeouts={"idle_s": 7200})
        return cas

    def check_sessions(self, cas, scheme, addresses=NAT_ADDRESS, netlocs=None):
        """50 sessions from `addresses` through castellan: every one established and
        bound, both channels of each on the server that answered its bind, both
        servers used (source_ip: every session of one address on one server;
        rpc_http from one address: within 60/40), and every server-side connection
        closed once the clients closed theirs."""
        proxy_url = f"{scheme}://127.0.0.1:{self.port}/rpc/rpcproxy.dll"
        sessions = self.open_sessions(SESSIONS, addresses, proxy_url, netlocs)

        records = {}
        errors = []
        for server in cas.values():
            seen, protocol_errors, _ = server.snapshot()
            errors += [f"{server.name}: {e}" for e in protocol_errors]
            for record in seen:
                records.setdefault(record.cookie, []).append(record)
        placement = "\n".join(map(repr, sessions))
        where = "\n".join(f"{cookie.hex()[:8]}: {sorted((r.server, r.channel, r.client) for r in rs)}"
                          for cookie, rs in records.items())
        detail = f"\nsessions:\n{placement}\nchannels seen by the servers:\n{where}{self.log_tail()}"

        # Every session was established (CONN/C2) and bound through both channels.
        self.assertEqual([s for s in sessions if s.error], [], "sessions that failed" + detail)
        self.assertEqual(self.open_together, SESSIONS, "sessions open at once")
        self.assertEqual(errors, [], "the fake CAS servers refused something" + detail)
        self.assertEqual(len({s.cookie for s in sessions}), SESSIONS, "impacket reused a cookie")

        # Both channels of each session met on one server: the one that answered its bind.
        for session in sessions:
            seen = sorted((r.server, r.channel, r.client, r.scheme) for r in records.get(session.cookie, []))
            expected = [(session.served_by, channel, session.source_ip, scheme) for channel in ("in", "out")]
            self.assertEqual(seen, expected, f"{session!r}" + detail)
        self.assertEqual(sum(len(rs) for rs in records.values()), 2 * SESSIONS, "channels nobody opened" + detail)

        if len(addresses) > 1:
            # source_ip: every session of one client address on one server; both servers used.
            by_address = collections.defaultdict(set)
            for session in sessions:
                by_address[session.source_ip].add(session.served_by)
            self.assertEqual({a: s for a, s in by_address.items() if len(s) != 1}, {},
                             "client addresses spread over servers" + detail)
            per_server = collections.Counter(next(iter(s)) for s in by_address.values())
            self.assertEqual(set(per_server), set(cas), f"client addresses per server: {dict(per_server)}" + detail)
        else:
            # rpc_http behind one address: the sessions themselves spread, within 60/40.
            per_server = collections.Counter(s.served_by for s in sessions)
            self.assertTrue(all(0.4 * SESSIONS <= per_server[name] <= 0.6 * SESSIONS for name in cas),
                            f"sessions per server: {dict(per_server)}" + detail)
        binds = {name: server.snapshot()[2] for name, server in cas.items()}
        self.assertEqual(sum(binds.values()), SESSIONS, f"binds answered: {binds}")

        # The clients closed their channels: castellan closed the servers' sides too.
        self.assertTrue(wait_for(lambda: all(s.active == 0 for s in cas.values()), CLOSE_DEADLINE),
                        f"server connections still open: {[(n, s.active) for n, s in cas.items()]}" + self.log_tail())

    def test_rpc_http_pairs_both_channels_of_50_sessions_from_one_address(self):
        self.check_sessions(self.start_outlook_anywhere(), "http")

    def test_the_same_through_tls_terminate(self):
        pair = self_signed()
        if not pair:
            self.skipTest("the openssl command line is missing or failed")
        cas = self.start_outlook_anywhere(tls={"mode": "terminate", "certificates": [{"cert": pair[0], "key": pair[1]}]})
        self.check_sessions(cas, "https")

    def test_each_channel_through_another_castellan(self):
        cas = self.start_outlook_anywhere()
        first_port = self.port
        self.start_outlook_anywhere(cas=cas)  # the second balancer: self.port and self.proxy now
        netlocs = [f"127.0.0.1:{first_port}", f"127.0.0.1:{self.port}"]  # IN channel, OUT channel
        self.check_sessions(cas, "http", netlocs=netlocs)

    def test_source_ip_keeps_both_channels_of_50_sessions_on_one_cas(self):
        self.check_sessions(self.start_outlook_anywhere(persistence={"type": "source_ip", "timeout_s": 7200}), "http",
                            addresses=CLIENT_ADDRESSES)


def tearDownModule():
    test_http.tearDownModule()  # the folder of self_signed()'s certificate


if __name__ == "__main__":
    unittest.main()
