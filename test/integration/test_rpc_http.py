"""rpc_http persistence: how castellan routes each request of an Outlook Anywhere client.

`persistence.type: "rpc_http"` places every request of a client connection on its
own: a valid castellan cookie first; else, for RPC_IN_DATA / RPC_OUT_DATA, the
virtual connection cookie of the channel's first RTS PDU (CONN/B1, CONN/A1),
hashed onto the servers; else the fallback (here `none`: the scheduler, or
`cookie`). A client connection keeps its server connection while its requests
resolve to the same server and moves when they do not, except right after a 401
that offered NTLM or Negotiate: that authentication binds the TCP connection, so
the next request stays. The impacket tests (test_outlook_anywhere.py) show whole
sessions; these show each rule with raw requests against AuthRecorder servers:

  AuthRecorder (one per CAS, keep-alive, one thread per connection) answers a
  request without Authorization with a 401 whose WWW-Authenticate is the scheme
  the request asked for in X-Test-Challenge (default NTLM); one with
  Authorization with a 200 whose body is the server's name. Every answer carries
  X-Server (its name) and X-Connection (which of its connections it came on). It
  sends its own `100 Continue` to an Expect: 100-continue, as IIS does, and records
  (connection, method, virtual connection cookie or None, body length) per request.

What each test proves:
  test_both_channels_of_a_session_meet_on_one_server_and_sessions_spread
      CONN/B1 on RPC_IN_DATA and CONN/A1 on RPC_OUT_DATA with one cookie reach one
      server, from one client address, for 16 cookies spread over both servers
  test_the_hash_pick_follows_the_server_set_not_the_connection
      a cookie's server is the same on a fresh connection, through a second
      castellan process with the same servers, and after a reload that changes
      nothing about them
  test_requests_move_between_servers_on_one_keep_alive_connection
      on one connection: cookie A -> server A, cookie B -> server B (a new server
      connection), then a request naming nothing stays on B
  test_a_401_offering_ntlm_pins_the_next_request_to_its_server_connection
      after a 401 with NTLM, a channel whose cookie hashes elsewhere stays on the
      same server and server connection; after a Basic 401 it moves (control)
  test_castellan_answers_expect_100_continue_once_and_forwards_the_body_whole
      the client gets exactly one 100 (castellan's; the server's own is not passed
      on a second time), the server gets the body byte for byte, RTS PDU included
  test_a_valid_castellan_cookie_wins_over_the_channel_cookie
      fallback cookie: a request carrying castellan's cookie for one server goes
      there even when its RTS cookie hashes to the other
  test_a_body_that_is_not_a_channel_start_falls_back_and_passes_unchanged
      an RPC_IN_DATA whose body is no RTS PDU (and one shorter than a PDU) is
      still served, by the fallback, with its body intact
  test_a_channel_whose_server_is_down_fails_over_to_the_next_in_hash_order
      with the hashed server disabled, both channels of a session still meet (on
      the other one)
"""

import os
import random
import signal
import socket
import struct
import unittest

from harness import IntegrationTest, TcpServer, addr, free_port, make_config, tcp_service, wait_for
from test_http import Buffered, read_final, read_response, split_head, values_of

IO_TIMEOUT = 5.0
TARGET = "/rpc/rpcproxy.dll?outlook.contoso.com:6001"
BASIC = "Basic Q09OVE9TT1xhbGljZTpQYXNzdzByZCE="


# MS-RPCH 2.2.3.6 / 2.2.4: the first RTS PDU of each channel.
def rts_pdu(flags, commands):
    body = b"".join(struct.pack("<I", kind) + value for kind, value in commands)
    header = struct.pack("<BBBBIHHI", 5, 0, 20, 3, 0x10, 20 + len(body), 0, 0)
    return header + struct.pack("<HH", flags, len(commands)) + body


def conn_b1(cookie):
    """CONN/B1 (104 bytes): Version, virtual connection cookie, IN channel cookie,
    ChannelLifetime, ClientKeepalive, AssociationGroupId."""
    return rts_pdu(0, [(6, struct.pack("<I", 1)), (3, cookie), (3, os.urandom(16)),
                       (4, struct.pack("<I", 1 << 30)), (5, struct.pack("<I", 300000)), (12, os.urandom(16))])


def conn_a1(cookie):
    """CONN/A1 (76 bytes): Version, virtual connection cookie, OUT channel cookie, ReceiveWindowSize."""
    return rts_pdu(0, [(6, struct.pack("<I", 1)), (3, cookie), (3, os.urandom(16)), (0, struct.pack("<I", 65536))])


def channel_request(method, body, authorization=BASIC, expect=False, extra=""):
    fields = f"Host: mail.contoso.com\r\nContent-Length: {len(body)}\r\n"
    if authorization:
        fields += f"Authorization: {authorization}\r\n"
    if expect:
        fields += "Expect: 100-continue\r\n"
    return f"{method} {TARGET} HTTP/1.1\r\n{fields}{extra}\r\n".encode()


class AuthRecorder(TcpServer):
    """The fake CAS described at the top of this file."""

    def __init__(self, name):
        self.name = name
        self.records = []  # (connection, method, cookie or None, body length)
        self.conn_ids = 0
        super().__init__()

    def handle(self, conn):
        with self._lock:
            self.conn_ids += 1
            cid = self.conn_ids
        io = Buffered(conn, timeout=IO_TIMEOUT, stopping=self.stopping)
        try:
            while not self.stopping():
                try:
                    head = io.until(b"\r\n\r\n", limit=64 * 1024)
                except EOFError:
                    return
                start_line, fields = split_head(head)
                method = start_line.split(" ")[0]
                length = int((values_of(fields, "Content-Length") or ["0"])[0])
                if any(v.lower() == "100-continue" for v in values_of(fields, "Expect")):
                    if not self.sendall(conn, b"HTTP/1.1 100 Continue\r\n\r\n"):
                        return
                body = io.exactly(length) if length else b""
                cookie = body[32:48] if len(body) >= 48 and body[2] == 20 else None
                with self._lock:
                    self.records.append((cid, method, cookie, body))
                common = f"X-Server: {self.name}\r\nX-Connection: {cid}\r\n"
                if not values_of(fields, "Authorization"):
                    scheme = (values_of(fields, "X-Test-Challenge") or ["NTLM"])[0]
                    answer = (f"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {scheme}\r\n{common}"
                              "Content-Length: 0\r\n\r\n").encode()
                else:
                    answer = (f"HTTP/1.1 200 OK\r\n{common}Content-Length: {len(self.name)}\r\n\r\n"
                              f"{self.name}").encode()
                if not self.sendall(conn, answer):
                    return
        except (EOFError, socket.timeout, OSError):
            return

    def snapshot(self):
        with self._lock:
            return list(self.records)


class RpcHttpTest(IntegrationTest):
    def start_rpc_http(self, persistence=None, servers=None, port=None, admin=False):
        """castellan with one rpc_http service in front of two AuthRecorders (made once)."""
        if servers is None:
            self.cas = {name: self.serve(AuthRecorder(name)) for name in ("cas1", "cas2")}
            servers = [(name, server.port) for name, server in self.cas.items()]
        self.servers = servers
        self.port = port or free_port()
        service = tcp_service("oa", self.port, servers, mode="http",
                              persistence=persistence or {"type": "rpc_http", "fallback": "none"},
                              health_check={"type": "none"})
        extra = {}
        if admin:
            self.admin_port = free_port()
            extra["admin"] = {"listen": addr(self.admin_port)}
        return self.start(make_config([service], **extra))

    def connect(self, port=None):
        return Buffered(self.client(port or self.port), timeout=IO_TIMEOUT)

    def send(self, io, raw, body=b""):
        io.send(raw + body)
        response, interim = read_final(io, timeout=IO_TIMEOUT)
        return response, interim

    def server_of(self, cookie, port=None, method="RPC_IN_DATA"):
        """Which server a fresh connection's channel with `cookie` reaches."""
        body = conn_b1(cookie) if method == "RPC_IN_DATA" else conn_a1(cookie)
        response, _ = self.send(self.connect(port), channel_request(method, body), body)
        self.assertEqual(response.status, 200, f"{response}" + self.log_tail())
        return response.header("X-Server")

    def cookies_by_server(self, seed=7):
        """A virtual connection cookie that hashes to each server (bounded search)."""
        chooser = random.Random(seed)
        found = {}
        for _ in range(40):
            cookie = bytes(chooser.getrandbits(8) for _ in range(16))
            found.setdefault(self.server_of(cookie), cookie)
            if len(found) == len(self.servers):
                return found
        self.fail(f"40 cookies all went to {set(found)}" + self.log_tail())

    def test_both_channels_of_a_session_meet_on_one_server_and_sessions_spread(self):
        self.start_rpc_http()
        chooser = random.Random(11)
        placed = []
        for _ in range(16):
            cookie = bytes(chooser.getrandbits(8) for _ in range(16))
            placed.append((self.server_of(cookie, method="RPC_IN_DATA"), self.server_of(cookie, method="RPC_OUT_DATA")))
        split = [p for p in placed if p[0] != p[1]]
        self.assertEqual(split, [], "channels of one session on two servers" + self.log_tail())
        per_server = {name: sum(1 for p in placed if p[0] == name) for name in self.cas}
        self.assertTrue(all(count > 0 for count in per_server.values()), f"sessions per server: {per_server}")
        # The servers saw the PDUs whole, with the cookie where MS-RPCH puts it.
        seen = [r for server in self.cas.values() for r in server.snapshot()]
        self.assertEqual(len(seen), 32)
        self.assertTrue(all(r[2] is not None and len(r[3]) in (76, 104) for r in seen), seen[:3])

    def test_the_hash_pick_follows_the_server_set_not_the_connection(self):
        first = self.start_rpc_http()
        cookies = self.cookies_by_server()
        # A second castellan with the same servers (another balancer of an HA
        # pair, or a restarted one) places each cookie alike.
        other_port = free_port()
        other = self.start(make_config([tcp_service("oa", other_port, self.servers, mode="http",
                                                    persistence={"type": "rpc_http", "fallback": "none"},
                                                    health_check={"type": "none"})]))
        for name, cookie in cookies.items():
            self.assertEqual(self.server_of(cookie, port=other_port), name, other.stderr_text())
        # A reload that leaves the servers alone moves nobody.
        self.proxy = first
        before = len(first.log_events("reload"))
        first.signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: len(first.log_events("reload")) > before, 10.0), self.log_tail())
        self.assertEqual(first.log_events("reload")[-1].get("ok"), "true", self.log_tail())
        for name, cookie in cookies.items():
            self.assertEqual(self.server_of(cookie), name, self.log_tail())

    def test_requests_move_between_servers_on_one_keep_alive_connection(self):
        self.start_rpc_http()
        cookies = self.cookies_by_server()
        io = self.connect()
        served = []
        for name in ("cas1", "cas2"):
            body = conn_b1(cookies[name])
            response, _ = self.send(io, channel_request("RPC_IN_DATA", body), body)
            self.assertEqual(response.status, 200, self.log_tail())
            served.append((response.header("X-Server"), response.header("X-Connection")))
        # A request naming no server stays where the connection is.
        response, _ = self.send(io, b"GET /owa/ HTTP/1.1\r\nHost: mail.contoso.com\r\n"
                                    b"Authorization: " + BASIC.encode() + b"\r\n\r\n")
        served.append((response.header("X-Server"), response.header("X-Connection")))
        self.assertEqual([s for s, _ in served], ["cas1", "cas2", "cas2"], f"{served}" + self.log_tail())
        self.assertEqual(served[1][1], served[2][1], "the last request took a new server connection")

    def pin_then_channel(self, cookies, scheme):
        """On one connection: an auth leg without a body (a 401 of `scheme`), then a
        channel whose cookie hashes to the other server. Returns the two answers."""
        io = self.connect()
        leg = channel_request("RPC_IN_DATA", b"", authorization=None, extra=f"X-Test-Challenge: {scheme}\r\n")
        first, _ = self.send(io, leg)
        self.assertEqual(first.status, 401, self.log_tail())
        elsewhere = next(name for name in cookies if name != first.header("X-Server"))
        body = conn_b1(cookies[elsewhere])
        second, _ = self.send(io, channel_request("RPC_IN_DATA", body, authorization="NTLM TlRMTVNTUAADAAAA"), body)
        self.assertEqual(second.status, 200, self.log_tail())
        return first, second, elsewhere

    def test_a_401_offering_ntlm_pins_the_next_request_to_its_server_connection(self):
        self.start_rpc_http()
        cookies = self.cookies_by_server()
        for scheme in ("NTLM", "Negotiate", 'Basic realm="x", NTLM'):
            first, second, _ = self.pin_then_channel(cookies, scheme)
            self.assertEqual((second.header("X-Server"), second.header("X-Connection")),
                             (first.header("X-Server"), first.header("X-Connection")),
                             f"after a 401 offering {scheme}, the channel left its server connection" + self.log_tail())
        # Control: Basic authenticates each request, so the channel follows its cookie.
        first, second, elsewhere = self.pin_then_channel(cookies, 'Basic realm="outlook.contoso.com"')
        self.assertEqual(second.header("X-Server"), elsewhere, self.log_tail())

    def test_castellan_answers_expect_100_continue_once_and_forwards_the_body_whole(self):
        self.start_rpc_http()
        cookie = os.urandom(16)
        body = conn_a1(cookie)
        io = self.connect()
        io.send(channel_request("RPC_OUT_DATA", body, expect=True))
        continued = read_response(io, timeout=IO_TIMEOUT)
        self.assertEqual(continued.status, 100, self.log_tail())
        # No server was needed for that 100: castellan chooses by the body.
        self.assertEqual(sum(len(s.snapshot()) for s in self.cas.values()), 0)
        io.send(body)
        response, interim = read_final(io, timeout=IO_TIMEOUT)
        self.assertEqual(response.status, 200, self.log_tail())
        self.assertEqual([r.status for r in interim], [], "the server's own 100 was passed on too")
        records = [r for s in self.cas.values() for r in s.snapshot()]
        self.assertEqual([(r[1], r[2], r[3]) for r in records], [("RPC_OUT_DATA", cookie, body)])
        self.assertEqual(response.header("X-Server"), self.server_of(cookie, method="RPC_OUT_DATA"))

    def test_a_valid_castellan_cookie_wins_over_the_channel_cookie(self):
        self.start_rpc_http(persistence={"type": "rpc_http"})  # fallback: cookie
        cookies = self.cookies_by_server()
        # A request naming nothing gets castellan's cookie for where it went.
        response, _ = self.send(self.connect(), b"GET /owa/ HTTP/1.1\r\nHost: mail.contoso.com\r\n"
                                                b"Authorization: " + BASIC.encode() + b"\r\n\r\n")
        holder = response.header("X-Server")
        set_cookie = response.header("Set-Cookie")
        self.assertTrue(set_cookie and set_cookie.startswith("CASTELLAN="), f"{response}")
        jar = set_cookie.split(";")[0]
        other = next(name for name in cookies if name != holder)
        body = conn_b1(cookies[other])
        response, _ = self.send(self.connect(), channel_request("RPC_IN_DATA", body, extra=f"Cookie: {jar}\r\n"), body)
        self.assertEqual(response.header("X-Server"), holder, self.log_tail())
        # Without it, the same channel follows its cookie (and is told so).
        response, _ = self.send(self.connect(), channel_request("RPC_IN_DATA", body), body)
        self.assertEqual(response.header("X-Server"), other, self.log_tail())
        self.assertTrue((response.header("Set-Cookie") or "").startswith("CASTELLAN="), f"{response}")

    def test_a_body_that_is_not_a_channel_start_falls_back_and_passes_unchanged(self):
        self.start_rpc_http()
        for body in (b"not an RTS PDU at all" * 8, conn_b1(os.urandom(16))[:40], b"\x05\x00\x14\x03"):
            response, _ = self.send(self.connect(), channel_request("RPC_IN_DATA", body), body)
            self.assertEqual(response.status, 200, f"{body[:20]!r}: {response}" + self.log_tail())
        bodies = sorted(r[3] for s in self.cas.values() for r in s.snapshot())
        self.assertEqual(len(bodies), 3)
        self.assertIn(b"\x05\x00\x14\x03", bodies)

    def test_a_channel_whose_server_is_down_fails_over_to_the_next_in_hash_order(self):
        self.start_rpc_http()
        cookies = self.cookies_by_server()
        self.cas["cas1"].stop()  # refuses connections from now on
        cookie = cookies["cas1"]
        self.assertEqual(self.server_of(cookie, method="RPC_IN_DATA"), "cas2", self.log_tail())
        self.assertEqual(self.server_of(cookie, method="RPC_OUT_DATA"), "cas2", self.log_tail())


if __name__ == "__main__":
    unittest.main()
