"""castellan as the CAS servers' default gateway (contrib/gateway.nft), in network namespaces.

One castellan node holds the clients' virtual address and the CAS servers'
gateway address (netns_topology.py draws the network). Clients reach both CAS
servers through the virtual address, balanced, and the CAS servers see
castellan's own address (non-transparent). A CAS server opens a connection of
its own to the "outside" namespace, which has no route back to the CAS network:
it works only because castellan forwards it and NATs it (contrib/gateway.nft,
loaded as it is but for its two definitions), while a proxied connection stays
open and keeps working beside it.

Skipped, with the reason, when not root or when ip or nft are missing.
"""

import collections
import unittest

from harness import IntegrationTest, make_config
from netns_topology import (
    ADMIN,
    CAS_TCP_PORT,
    CLIENT_ADDRESSES,
    CLIENT_VIP,
    OUTSIDE,
    SERVER_VIP,
    Topology,
    read_line,
    require_tools,
)

LISTEN_PORT = 7135


def rpc_config(**extra):
    service = {
        "name": "rpc",
        "listen": f"{CLIENT_VIP}:{LISTEN_PORT}",
        "mode": "tcp",
        "real_servers": [
            {"name": "cas1", "address": f"{Topology.cas_address(1)}:{CAS_TCP_PORT}"},
            {"name": "cas2", "address": f"{Topology.cas_address(2)}:{CAS_TCP_PORT}"},
        ],
        "health_check": {"type": "tcp", "interval_ms": 500, "timeout_ms": 300},
    }
    service.update(extra)
    return make_config([service], threads=2, admin={"listen": f"{ADMIN[0]}:{ADMIN[1]}"})


class GatewayTest(IntegrationTest):
    def setUp(self):
        require_tools("nft")
        self.topo = Topology(nodes=1)
        self.addCleanup(self.topo.close)
        self.topo.hold_virtual_addresses(1)
        self.topo.route_cas_through(SERVER_VIP)
        self.topo.load_gateway_nft(1)

    def test_clients_balanced_cas_see_castellan_and_cas_reach_outside(self):
        self.proxy = self.topo.start_castellan(1, rpc_config())
        node_address = Topology.node_server_address(1)

        # Round robin over two CAS servers, from twenty client addresses.
        seen = [self.topo.banner(self.topo.client, CLIENT_VIP, LISTEN_PORT, source=s) for s in CLIENT_ADDRESSES]
        self.assertEqual(collections.Counter(name for name, _ in seen), {"cas1": 10, "cas2": 10}, self.log_tail())
        self.assertEqual({peer for _, peer in seen}, {node_address}, "the CAS servers see castellan's address")

        # A proxied connection stays open while a CAS server goes outside.
        held = self.topo.client.connect(CLIENT_VIP, LISTEN_PORT, source=CLIENT_ADDRESSES[0])
        self.addCleanup(held.close)
        name, _ = read_line(held).split()
        for cas, expected_name in ((self.topo.cas[0], "cas1"), (self.topo.cas[1], "cas2")):
            outside_name, seen_as = self.topo.banner(cas, OUTSIDE, CAS_TCP_PORT)
            self.assertEqual(outside_name, "outside")
            # NATed to castellan's address on the client network: outside has
            # no route to the CAS network.
            self.assertEqual(seen_as, Topology.node_client_address(1), expected_name)
        held.sendall(b"still here\n")
        self.assertEqual(read_line(held), "still here", f"the proxied connection to {name} after the outbound ones")

        # The outbound connections were NATed, the proxied ones not: outside saw
        # only castellan's client-side address, the CAS servers only its server-side one.
        self.assertEqual(set(self.topo.peer_servers["outside"].peers()), {Topology.node_client_address(1)})
        for cas in ("cas1", "cas2"):
            self.assertEqual(set(self.topo.peer_servers[cas].peers()), {node_address})

    def test_nothing_but_the_cas_servers_own_connections_is_forwarded(self):
        # A client going around the virtual service straight to a CAS server
        # (given a route through castellan) is dropped by the forward policy.
        self.topo.client.ip("route", "add", "10.77.2.0/24", "via", Topology.node_client_address(1))
        with self.assertRaises(OSError):
            self.topo.client.connect(Topology.cas_address(1), CAS_TCP_PORT, source=CLIENT_ADDRESSES[0], timeout=1.0)
        self.assertEqual(self.topo.peer_servers["cas1"].peers(), [])


if __name__ == "__main__":
    unittest.main()
