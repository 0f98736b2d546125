"""The dcerpc health check (INTERFACE.md `health_check`, type `dcerpc`) against
fake RPC endpoints on 127.0.0.1.

Port 135 and Exchange's static RPC ports accept TCP connections even when the RPC
service behind them is wedged: the check sends a DCE/RPC bind for an interface and
counts the server up only on a bind_ack accepting it. The fake endpoint here reads
the bind, checks it is well formed (with impacket's parser as a second opinion
where python3-impacket is installed), and answers as a Windows RPC endpoint would:
bind_ack for the interface it serves, a bind_ack rejecting any other
(provider_rejection, abstract syntax not supported), bind_nak, nothing at all (a
wedged service), or bytes of another protocol.
"""

import struct
import uuid

from harness import TcpServer, free_port, tcp_service
from test_health import HealthTest, check

EPM = ("e1af8308-5d1f-11c9-91a4-08002b14a0fa", 3, 0)
MAILBOX = ("a4f1db00-ca47-1067-b31f-00dd010662da", 0, 81)
NDR = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le + struct.pack("<HH", 2, 0)

try:
    from impacket.dcerpc.v5 import rpcrt
    from impacket.uuid import bin_to_uuidtup
except ImportError:  # the check does not need it; it is a second opinion on the PDU
    rpcrt = None


def parse_bind(pdu):
    """(interface uuid text, major, minor, call_id) of a bind PDU, or an AssertionError."""
    vers, minor, ptype, flags, drep, frag, auth, call_id = struct.unpack("<BBBB4sHHI", pdu[:16])
    assert (vers, minor, ptype, flags) == (5, 0, 11, 3), pdu[:4]
    assert drep == b"\x10\x00\x00\x00" and frag == len(pdu) and auth == 0, (drep, frag, auth)
    _xmit, _recv, _group, contexts = struct.unpack("<HHIB", pdu[16:25])
    assert contexts == 1
    _ctx_id, syntaxes = struct.unpack("<HB", pdu[28:31])
    assert syntaxes == 1
    interface = str(uuid.UUID(bytes_le=pdu[32:48]))
    major, minor_version = struct.unpack("<HH", pdu[48:52])
    assert pdu[52:72] == NDR, "the transfer syntax must be NDR 2.0"
    if rpcrt is not None:
        bind = rpcrt.MSRPCBind(rpcrt.MSRPCHeader(pdu)["pduData"])
        item = rpcrt.CtxItem(bind["ctx_items"])
        seen_uuid, seen_version = bin_to_uuidtup(item["AbstractSyntax"])
        assert (seen_uuid.lower(), seen_version) == (interface, f"{major}.{minor_version}"), (seen_uuid, seen_version)
        assert bin_to_uuidtup(item["TransferSyntax"]) == ("8A885D04-1CEB-11C9-9FE8-08002B104860", "2.0")
    return interface, major, minor_version, call_id


def bind_ack(call_id, result, reason):
    address = b"135\x00"
    body = struct.pack("<HHIH", 4280, 4280, 0x1234, len(address)) + address
    body += b"\x00" * (-(16 + len(body)) % 4)
    body += struct.pack("<BBHHH", 1, 0, 0, result, reason) + (NDR if result == 0 else b"\x00" * 20)
    return struct.pack("<BBBB4sHHI", 5, 0, 12, 3, b"\x10\x00\x00\x00", 16 + len(body), 0, call_id) + body


def bind_nak(call_id, reason):
    return struct.pack("<BBBB4sHHIH", 5, 0, 13, 3, b"\x10\x00\x00\x00", 18, 0, call_id, reason)


class RpcEndpoint(TcpServer):
    """Reads one bind per connection and answers by `behaviour`: "serve" (bind_ack
    for `interface`, a rejecting bind_ack for any other), "nak", "silent", "http"."""

    def __init__(self, behaviour, interface=EPM):
        self.behaviour = behaviour
        self.interface = interface
        self.binds = []
        self.malformed = []
        super().__init__()

    def handle(self, conn):
        pdu = b""
        while len(pdu) < 16 or len(pdu) < struct.unpack("<H", pdu[8:10])[0]:
            chunk = self.recv(conn, 4096)
            if not chunk:
                return
            pdu += chunk
        try:
            bind = parse_bind(pdu)
        except (AssertionError, struct.error, ValueError) as error:
            with self._lock:
                self.malformed.append(repr(error))
            return
        with self._lock:
            self.binds.append(bind)
        name, major, minor, call_id = bind
        if self.behaviour == "silent":
            while self.recv(conn, 4096):
                pass
        elif self.behaviour == "http":
            self.sendall(conn, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        elif self.behaviour == "nak":
            self.sendall(conn, bind_nak(call_id, 4))
        elif (name, major, minor) == self.interface:
            self.sendall(conn, bind_ack(call_id, 0, 0))
        else:
            self.sendall(conn, bind_ack(call_id, 2, 1))  # provider rejection: abstract syntax not supported


def interface_of(triple):
    name, major, minor = triple
    return {"uuid": name, "version": f"{major}.{minor}"}


class DcerpcCheckTest(HealthTest):
    def test_endpoint_mapper_bind_ack_is_up_and_other_answers_are_down(self):
        servers = {
            "epm": self.serve(RpcEndpoint("serve")),
            "nak": self.serve(RpcEndpoint("nak")),
            "wedged": self.serve(RpcEndpoint("silent")),
            "http": self.serve(RpcEndpoint("http")),
        }
        port = free_port()
        self.start_with_admin(
            [tcp_service("rpc-epm", port, [(name, s.port) for name, s in servers.items()], health_check=check("dcerpc"))]
        )
        for name in ("nak", "wedged", "http"):
            self.wait_state("rpc-epm", name, "down", limit=3.0)
        self.assertEqual(self.server_status("rpc-epm", "nak")["health"]["detail"], "bind_nak reason 4")
        self.assertIn("timeout", self.server_status("rpc-epm", "wedged")["health"]["detail"])
        self.assertEqual(self.server_status("rpc-epm", "http")["health"]["detail"], "not a DCE/RPC reply")
        epm = self.server_status("rpc-epm", "epm")
        self.assertEqual(epm["state"], "up")
        self.assertEqual(epm["health"]["detail"], "bind_ack")
        for server in servers.values():
            self.assertEqual(server.malformed, [], "castellan's bind must be a well-formed DCE/RPC bind")
        self.assertTrue(all(b[:3] == EPM for b in servers["epm"].binds), servers["epm"].binds)

    def test_impackets_rpc_server_serving_the_endpoint_mapper_is_up(self):
        # A DCE/RPC server castellan's code did not shape: impacket's own.
        if rpcrt is None:
            self.skipTest("python3-impacket is not installed (scripts/setup.sh)")
        server = rpcrt.DCERPCServer()
        server.daemon = True
        server.addCallbacks(("E1AF8308-5D1F-11C9-91A4-08002B14A0FA", "3.0"), "135", {})
        server.start()
        self.addCleanup(server._sock.close)  # its accept loop then ends
        port = free_port()
        self.start_with_admin([tcp_service("rpc-epm", port, [("cas1", server.getListenPort())],
                                           health_check=check("dcerpc"))])
        self.wait_checked("rpc-epm", "cas1")
        status = self.server_status("rpc-epm", "cas1")
        self.assertEqual(status["state"], "up", status)
        self.assertEqual(status["health"]["detail"], "bind_ack")

    def test_a_tcp_check_calls_a_wedged_rpc_service_up_where_dcerpc_does_not(self):
        # Why the check exists: the port accepts connections, the service answers nothing.
        wedged = self.serve(RpcEndpoint("silent"))
        tcp_port, rpc_port = free_port(), free_port()
        self.start_with_admin([
            tcp_service("by-tcp", tcp_port, [("cas1", wedged.port)], health_check=check("tcp")),
            tcp_service("by-dcerpc", rpc_port, [("cas1", wedged.port)], health_check=check("dcerpc")),
        ])
        self.wait_state("by-dcerpc", "cas1", "down", limit=3.0)
        self.assertEqual(self.server_status("by-tcp", "cas1")["state"], "up")
        self.assertTrue(self.server_status("by-tcp", "cas1")["health"]["ok"])

    def test_the_mailbox_interface_on_an_exchange_rpc_port(self):
        mailbox = self.serve(RpcEndpoint("serve", interface=MAILBOX))
        port, other = free_port(), free_port()
        self.start_with_admin([
            tcp_service("rpc-mailbox", port, [("cas1", mailbox.port)],
                        health_check=check("dcerpc", interface=interface_of(MAILBOX))),
            # The endpoint mapper's interface asked of the mailbox port: rejected.
            tcp_service("wrong-interface", other, [("cas1", mailbox.port)], health_check=check("dcerpc")),
        ])
        self.wait_state("wrong-interface", "cas1", "down", limit=3.0)
        self.assertEqual(self.server_status("wrong-interface", "cas1")["health"]["detail"],
                         "bind_ack rejecting the interface (result 2, reason 1)")
        status = self.server_status("rpc-mailbox", "cas1")
        self.assertEqual(status["state"], "up")
        self.assertEqual(status["health"]["detail"], "bind_ack")
        self.assertIn(MAILBOX, [b[:3] for b in mailbox.binds])
        self.assertEqual(mailbox.malformed, [])


if __name__ == "__main__":
    import unittest

    unittest.main()
