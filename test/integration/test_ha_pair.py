"""Two castellan nodes under keepalived (contrib/keepalived.conf), in network namespaces.

netns_topology.py draws the network: a client network, two castellan nodes with
a client arm and a server arm, two CAS servers whose default gateway is the
pair's server-side virtual address, and an "outside" they reach only through
castellan. Both nodes run castellan with the same config (the standby listens on
the virtual address it does not hold yet: net.ipv4.ip_nonlocal_bind from
contrib/sysctl-castellan.conf), contrib/gateway.nft, and keepalived in the
foreground with contrib/keepalived.conf (its site definitions replaced by this
network's), as instances castellan1 and castellan2.

Killing the active node's castellan (its track_script fails), or separately its
keepalived (SIGKILL to both of its processes: no goodbye), moves both virtual
addresses to the other node in under 3 s; new connections succeed there; twenty
client addresses reach the same CAS server before and after (source_hash); a
cookie issued by one node is honoured by the other (a shared
cookie_secret_file); a CAS server's own connection to "outside" works before and
after, through whichever node holds its gateway address.

Also: castellan on a host that lacks its listen address, without
ip_nonlocal_bind, refuses to start and says what to do.

Skipped, with the reason, when not root or when ip, nft, keepalived or curl are missing.
"""

import os
import re
import socket
import time
import unittest

from harness import IntegrationTest, Castellan, make_config, wait_for
from netns_topology import (
    ADMIN,
    CAS_HTTP_PORT,
    CAS_TCP_PORT,
    CLIENT_ADDRESSES,
    CLIENT_VIP,
    OUTSIDE,
    SERVER_VIP,
    Namespace,
    Topology,
    require_tools,
)

RPC_PORT, OWA_PORT = 7135, 7080
FAILOVER_LIMIT_S = 3.0


def pair_config(secret_file):
    servers = lambda port: [
        {"name": f"cas{i}", "address": f"{Topology.cas_address(i)}:{port}"} for i in (1, 2)
    ]
    check = {"type": "tcp", "interval_ms": 500, "timeout_ms": 300}
    return make_config(
        [
            {"name": "rpc", "listen": f"{CLIENT_VIP}:{RPC_PORT}", "scheduler": "source_hash",
             "real_servers": servers(CAS_TCP_PORT), "health_check": check},
            {"name": "owa", "listen": f"{CLIENT_VIP}:{OWA_PORT}", "mode": "http", "scheduler": "round_robin",
             "persistence": {"type": "cookie", "cookie_secret_file": str(secret_file)},
             "real_servers": servers(CAS_HTTP_PORT), "health_check": check},
        ],
        threads=2,
        admin={"listen": f"{ADMIN[0]}:{ADMIN[1]}"},
    )


def http_get(namespace, source, cookie=None):
    """(status, Set-Cookie value or None, body) of GET /owa/ through the clients' virtual address."""
    sock = namespace.connect(CLIENT_VIP, OWA_PORT, source=source, timeout=3.0)
    try:
        cookie_line = f"Cookie: {cookie}\r\n" if cookie else ""
        sock.sendall(f"GET /owa/ HTTP/1.1\r\nHost: mail.contoso.com\r\n{cookie_line}Connection: close\r\n\r\n".encode())
        data = b""
        while len(data) < 1 << 16:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    set_cookie = None
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "set-cookie":
            set_cookie = value.strip().split(";", 1)[0]
    return int(lines[0].split()[1]), set_cookie, body.decode().strip()


class HaPairTest(IntegrationTest):
    def setUp(self):
        require_tools("nft", "keepalived", "curl")
        self.topo = Topology(nodes=2)
        self.addCleanup(self.topo.close)
        self.topo.route_cas_through(SERVER_VIP)
        secret = self.topo.dir / "cookie.secret"
        secret.write_text("the same secret on both nodes\n")
        self.proxies = {}
        for i in (1, 2):
            self.topo.load_gateway_nft(i)
            # Both start while neither holds the virtual address.
            self.proxies[i] = self.topo.start_castellan(i, pair_config(secret))
        self.keepalived = {i: self.topo.start_keepalived(i) for i in (1, 2)}
        both = lambda: self.topo.holder() in (1, 2) and self.topo.holder() == self.topo.holder(SERVER_VIP, "srv0")
        self.assertTrue(wait_for(both, timeout=15.0, interval=0.1), "no node took the virtual addresses" + self.logs())
        self.active = self.topo.holder()
        self.standby = 3 - self.active

    def logs(self):
        text = ""
        for i, keepalived in getattr(self, "keepalived", {}).items():
            text += f"\n--- keepalived n{i} (tail):\n" + "\n".join(keepalived.log_text().splitlines()[-25:])
        for i, proxy in getattr(self, "proxies", {}).items():
            text += f"\n--- castellan n{i} (tail):\n" + proxy.stderr_text(15)
        return text

    def rpc_clients(self, node):
        """Which CAS each of the twenty client addresses reaches, checking that `node` proxied it."""
        reached = {}
        for source in CLIENT_ADDRESSES:
            name, peer = self.topo.banner(self.topo.client, CLIENT_VIP, RPC_PORT, source=source)
            self.assertEqual(peer, Topology.node_server_address(node), f"{source} was not proxied by node {node}")
            reached[source] = name
        return reached

    def outbound(self, node):
        name, seen_as = self.topo.banner(self.topo.cas[0], OUTSIDE, CAS_TCP_PORT)
        self.assertEqual((name, seen_as), ("outside", Topology.node_client_address(node)))

    def first_served(self, deadline):
        """Retries a client until a node serves it or `deadline` passes; gives the time it was served, or None."""
        while time.monotonic() < deadline:
            try:
                sock = self.topo.client.connect(CLIENT_VIP, RPC_PORT, source=CLIENT_ADDRESSES[0], timeout=0.5)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                sock.settimeout(1.0)
                if sock.recv(64):
                    return time.monotonic()
            except OSError:
                pass
            finally:
                sock.close()
        return None

    def fail_over(self, kill, vip_left_behind):
        before = self.rpc_clients(self.active)
        self.assertEqual(set(before.values()), {"cas1", "cas2"}, "source_hash put every client on one CAS")
        status, cookie, body = http_get(self.topo.client, CLIENT_ADDRESSES[0])
        self.assertEqual(status, 200)
        self.assertIsNotNone(cookie, "no persistence cookie was issued")
        cookie_server = body.split()[0]
        self.outbound(self.active)

        started = time.monotonic()
        kill()
        moved = lambda: (
            self.standby in self.topo.nodes_holding(CLIENT_VIP, "cli0")
            and self.standby in self.topo.nodes_holding(SERVER_VIP, "srv0")
        )
        self.assertTrue(wait_for(moved, timeout=10.0, interval=0.05), "the addresses did not move" + self.logs())
        took = time.monotonic() - started
        served = self.first_served(started + 10.0)
        self.assertIsNotNone(served, "no new connection served after the failover" + self.logs())
        self.assertLess(took, FAILOVER_LIMIT_S, f"the addresses took {took:.2f} s to move" + self.logs())
        self.assertLess(served - started, FAILOVER_LIMIT_S, f"first new connection after {served - started:.2f} s")
        if not vip_left_behind:
            self.assertEqual(self.topo.holder(), self.standby, "both nodes hold the clients' address")

        # New connections, served by the other node: the same CAS for each client.
        self.assertEqual(self.rpc_clients(self.standby), before)
        # The first node's cookie, honoured by the second (round robin would alternate).
        for _ in range(4):
            status, _, body = http_get(self.topo.client, CLIENT_ADDRESSES[1], cookie=cookie)
            self.assertEqual((status, body.split()[0]), (200, cookie_server))
            self.assertEqual(body.split()[1], Topology.node_server_address(self.standby))
        self.outbound(self.standby)

    def test_castellan_killed_moves_the_addresses(self):
        self.fail_over(lambda: self.proxies[self.active].proc.kill(), vip_left_behind=False)

    def test_keepalived_killed_moves_the_addresses(self):
        # A keepalived killed outright leaves its addresses configured; the
        # other node takes over when the advertisements stop, and the clients
        # and CAS servers follow its gratuitous ARPs.
        self.fail_over(self.keepalived[self.active].kill, vip_left_behind=True)


class StandbyListenTest(IntegrationTest):
    def setUp(self):
        require_tools()
        self.ns = Namespace(f"cnp{os.getpid()}-standby")
        self.addCleanup(self.ns.close)

    def test_a_listen_address_not_on_the_host_names_the_remedy(self):
        config = make_config([
            {"name": "rpc", "listen": f"{CLIENT_VIP}:{RPC_PORT}",
             "real_servers": [{"name": "cas1", "address": f"{Topology.cas_address(1)}:{CAS_TCP_PORT}"}],
             "health_check": {"type": "none"}},
        ])
        with self.ns.entered():
            proxy = Castellan(config, wait_ready=False)
            proxy.start()
        self.addCleanup(proxy.stop)
        self.assertEqual(proxy.wait(10.0), 1, proxy.stderr_text())
        (failed,) = proxy.log_events("listen_failed")
        self.assertEqual(failed["address"], f"{CLIENT_VIP}:{RPC_PORT}")
        self.assertTrue(failed["error"].startswith(f"Cannot assign requested address: {CLIENT_VIP} is not an address "
                                                   "of this host"), failed["error"])
        self.assertIn("sysctl -w net.ipv4.ip_nonlocal_bind=1", failed["error"])

        # The remedy, as it says.
        self.ns.exec("sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1")
        with self.ns.entered():
            proxy = Castellan(config)
            proxy.start()
        self.addCleanup(proxy.stop)
        self.assertTrue(proxy.log_events("listen"))


if __name__ == "__main__":
    unittest.main()
