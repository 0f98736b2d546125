"""The persistence table at hand (issue 10, point 4): `GET /api/v1/persistence?client=ADDRESS`
shows which real server each source-IP table (a service's own, a persistence group)
holds for a client and until when; `DELETE` (behind the admin token) forgets it, so
that the client's next connection is scheduled afresh while its open ones stay.

Client source addresses are 127.0.0.x (the whole 127/8 is local on Linux). Every
service uses round_robin and each test starts its own castellan, so the n-th pick of
a service is known: the first goes to cas1, the second to cas2.
"""

import datetime
import json
import os
import shutil
import socket
import tempfile
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import IntegrationTest, addr, admin_call, free_port, make_config, read_name, recv_exactly, tcp_service, wait_for
from test_ipv6 import V6_HOST, free_port_v6, has_ipv6_loopback

TOKEN = "helpdesk-token-789"
TIMEOUT_S = 600


class PersistenceApiBase(IntegrationTest):
    """castellan with smtp (a table of its own), epm and mbx (group rpc), web (no
    persistence), each on cas1 and cas2, and the admin API with a token."""

    def setUp(self):
        super().setUp()
        folder = tempfile.mkdtemp(prefix="castellan-persistence-api-")
        self.addCleanup(shutil.rmtree, folder, True)
        token_file = os.path.join(folder, "admin.token")
        with open(token_file, "w") as out:
            out.write(TOKEN + "\n")

        def build_config():
            self.admin_port = free_port()
            self.ports = {name: free_port() for name in ("smtp", "epm", "mbx", "web")}
            services = []
            for name, port in self.ports.items():
                cas1, cas2 = self.named("cas1", "cas2")
                persistence = {
                    "smtp": {"type": "source_ip", "timeout_s": TIMEOUT_S},
                    "epm": {"type": "source_ip", "group": "rpc"},
                    "mbx": {"type": "source_ip", "group": "rpc"},
                    "web": {"type": "none"},
                }[name]
                services.append(
                    tcp_service(name, port, [("cas1", cas1.port), ("cas2", cas2.port)], persistence=persistence)
                )
            self.extra_services(services)
            return make_config(
                services,
                threads=2,
                persistence_groups={"rpc": {"timeout_s": TIMEOUT_S}},
                admin={"listen": addr(self.admin_port), "token_file": token_file},
            )

        self.start_on_free_ports(build_config)

    def extra_services(self, services):
        """Subclasses add services here."""

    # -- helpers ---------------------------------------------------------

    def call(self, method, client=None, token=None, query=None):
        """(status, parsed JSON body) of one persistence call."""
        if query is None:
            query = "" if client is None else "?client=" + urllib.parse.quote(client, safe="")
        status, raw = admin_call(self.admin_port, method, f"/api/v1/persistence{query}", token=token, timeout=5)
        return status, json.loads(raw or b"null")

    def entries(self, client):
        status, body = self.call("GET", client)
        self.assertEqual(status, 200, body)
        self.assertIsInstance(body, list)
        return {entry["table"]: entry for entry in body}

    def forget(self, client, token=TOKEN):
        return self.call("DELETE", client, token=token)

    def hold(self, service, source):
        """An open connection from source through service, and the name of its server."""
        sock = self.client(self.ports[service], source_ip=source)
        return sock, read_name(sock)

    def name_of(self, service, source):
        sock, name = self.hold(service, source)
        sock.close()
        return name

    def assert_expires_after_timeout(self, entry):
        self.assertIsNotNone(entry["expires"], entry)
        expires = datetime.datetime.strptime(entry["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc
        )
        left = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        self.assertTrue(TIMEOUT_S - 30 <= left <= TIMEOUT_S + 1, f"expires in {left} s: {entry}")



class PersistenceApiTest(PersistenceApiBase):

    def test_find_entries_of_a_service_and_a_group_then_forget_them(self):
        client = "127.0.0.21"
        smtp, smtp_server = self.hold("smtp", client)
        epm, group_server = self.hold("epm", client)
        mbx, mbx_server = self.hold("mbx", client)
        web, _ = self.hold("web", client)  # no persistence: no entry
        self.assertEqual((smtp_server, group_server, mbx_server), ("cas1", "cas1", "cas1"))

        entries = self.entries(client)
        self.assertEqual(set(entries), {"smtp", "rpc"}, entries)
        rpc = entries["rpc"]
        self.assertEqual(
            (rpc["kind"], rpc["virtual_services"], rpc["real_server"], rpc["open_connections"], rpc["expires"]),
            ("group", ["epm", "mbx"], "cas1", 2, None),
        )
        own = entries["smtp"]
        self.assertEqual(
            (own["kind"], own["virtual_services"], own["real_server"], own["open_connections"], own["expires"]),
            ("service", ["smtp"], "cas1", 1, None),
        )
        # The IPv4-mapped IPv6 spelling and brackets name the same client.
        self.assertEqual(set(self.entries("::ffff:127.0.0.21")), {"smtp", "rpc"})
        self.assertEqual(set(self.entries("[::ffff:127.0.0.21]")), {"smtp", "rpc"})
        self.assertEqual(self.entries("127.0.0.22"), {})

        for sock in (smtp, epm, mbx, web):
            sock.close()
        self.assertTrue(
            wait_for(lambda: all(e["expires"] for e in self.entries(client).values()), timeout=5),
            f"no expiry after the connections closed: {self.entries(client)}{self.log_tail()}",
        )
        for entry in self.entries(client).values():
            self.assertEqual(entry["open_connections"], 0, entry)
            self.assert_expires_after_timeout(entry)
        # Persistence holds before the DELETE (no pick: round robin's turn stays).
        self.assertEqual(self.name_of("smtp", client), "cas1")

        # Forgetting needs the token, as state changes do.
        self.assertEqual(self.forget(client, token=None)[0], 401)
        self.assertEqual(self.forget(client, token="wrong")[0], 401)
        self.assertEqual(set(self.entries(client)), {"smtp", "rpc"})

        self.assertEqual(self.forget(client), (200, {"removed": 2}))
        self.assertEqual(self.entries(client), {})
        self.assertEqual(self.forget(client), (200, {"removed": 0}))
        self.assertTrue(
            wait_for(lambda: self.proxy.log_events("persistence_forget"), timeout=5),
            "no persistence_forget line" + self.log_tail(),
        )
        (line, *_) = self.proxy.log_events("persistence_forget")
        self.assertEqual((line.get("client"), line.get("removed")), (client, "2"), line)

        # Scheduled afresh: smtp's and epm's second pick is cas2 (mbx has not
        # picked yet: it followed the group), and mbx follows epm's new choice.
        self.assertEqual(self.name_of("smtp", client), "cas2")
        self.assertEqual(self.name_of("epm", client), "cas2")
        self.assertEqual(self.name_of("mbx", client), "cas2")
        entries = self.entries(client)
        self.assertEqual({t: e["real_server"] for t, e in entries.items()}, {"smtp": "cas2", "rpc": "cas2"})

    def test_forget_with_connections_open_moves_only_the_next_connection(self):
        client = "127.0.0.31"
        old, old_server = self.hold("smtp", client)
        self.assertEqual(old_server, "cas1")
        self.assertEqual(self.forget(client), (200, {"removed": 1}))
        self.assertEqual(self.entries(client), {})

        new, new_server = self.hold("smtp", client)
        self.assertEqual(new_server, "cas2", "the next connection was not scheduled afresh")
        # The old connection stays where it was.
        old.sendall(b"still here")
        self.assertEqual(recv_exactly(old, 10), b"still here")
        entry = self.entries(client)["smtp"]
        self.assertEqual((entry["real_server"], entry["open_connections"], entry["expires"]), ("cas2", 2, None))

        # The old connection's close neither ends the new binding nor brings the old one back.
        old.close()
        self.assertTrue(wait_for(lambda: self.entries(client)["smtp"]["open_connections"] == 1, timeout=5))
        entry = self.entries(client)["smtp"]
        self.assertEqual((entry["real_server"], entry["expires"]), ("cas2", None))
        self.assertEqual(self.name_of("smtp", client), "cas2")

        new.close()
        self.assertTrue(wait_for(lambda: self.entries(client)["smtp"]["expires"] is not None, timeout=5))
        entry = self.entries(client)["smtp"]
        self.assertEqual((entry["real_server"], entry["open_connections"]), ("cas2", 0))
        self.assert_expires_after_timeout(entry)

    def test_a_forgotten_client_whose_connections_close_leaves_nothing(self):
        client = "127.0.0.32"
        held = [self.hold("epm", client)[0] for _ in range(2)]
        self.assertEqual(self.forget(client), (200, {"removed": 1}))
        for sock in held:
            sock.close()
        # castellan releases a connection's entry before it logs its close line.
        self.assertTrue(
            wait_for(lambda: len([e for e in self.proxy.log_events("close") if e.get("vs") == "epm"]) == 2, timeout=5),
            self.log_tail(),
        )
        self.assertEqual(self.entries(client), {})
        self.assertEqual(self.forget(client), (200, {"removed": 0}))
        # The next connection is scheduled afresh (the service's second pick),
        # and its close leaves an entry with nothing open, counting down.
        self.assertEqual(self.name_of("epm", client), "cas2")
        self.assertTrue(wait_for(lambda: self.entries(client)["rpc"]["expires"] is not None, timeout=5))
        entry = self.entries(client)["rpc"]
        self.assertEqual((entry["real_server"], entry["open_connections"]), ("cas2", 0))

    def test_bad_addresses_and_methods(self):
        for query in ("", "?client=", "?other=127.0.0.1", "?client=cas1", "?client=mail.contoso.com",
                      "?client=1.2.3", "?client=127.0.0.1%3A80", "?client=%zz", "?client=300.1.1.1"):
            status, body = self.call("GET", query=query)
            self.assertEqual(status, 400, f"{query}: {body}")
            self.assertIsInstance(body.get("error"), str, f"{query}: {body}")
        status, body = self.call("DELETE", query="?client=cas1", token=TOKEN)
        self.assertEqual(status, 400, body)
        # Without the token, a DELETE learns nothing, not even that its address is bad.
        self.assertEqual(self.call("DELETE", query="?client=cas1")[0], 401)
        status, _ = self.call("POST", client="127.0.0.1", token=TOKEN)
        self.assertEqual(status, 405)


@unittest.skipUnless(has_ipv6_loopback(), "no IPv6 loopback on this machine")
class PersistenceApiIpv6Test(PersistenceApiBase):
    def extra_services(self, services):
        cas1, cas2 = self.named("cas1", "cas2")
        self.v6_port = free_port_v6()
        service = tcp_service(
            "smtp6", self.v6_port, [("cas1", cas1.port), ("cas2", cas2.port)], persistence={"type": "source_ip"}
        )
        service["listen"] = f"[{V6_HOST}]:{self.v6_port}"
        services.append(service)

    def test_an_ipv6_client(self):
        with socket.create_connection((V6_HOST, self.v6_port), timeout=5) as sock:
            self.assertEqual(read_name(sock), "cas1")
            entry = self.entries("::1")["smtp6"]
            self.assertEqual((entry["real_server"], entry["expires"]), ("cas1", None))
            self.assertEqual(set(self.entries("[0:0::1]")), {"smtp6"})
            self.assertEqual(self.entries("127.0.0.1").get("smtp6"), None)
        self.assertEqual(self.forget("::1"), (200, {"removed": 1}))
        self.assertEqual(self.entries("::1"), {})
        with socket.create_connection((V6_HOST, self.v6_port), timeout=5) as sock:
            self.assertEqual(read_name(sock), "cas2")


if __name__ == "__main__":
    unittest.main()
