"""Transparent mode (`transparent: true`): the CAS servers see the client's own address.

In network namespaces (netns_topology.py): one castellan node is the CAS
servers' gateway (contrib/gateway.nft) with the policy routing of
contrib/transparent-routing.sh, both used as they are. A client's connection
reaches the CAS server from the client's address, and the CAS server's replies,
sent to that address through castellan, come back to castellan's socket and on
to the client. Health checks still come from castellan's own address.

Without the network (any machine): `--check` refuses transparent together with
source_addresses, with the JSON path; a castellan without CAP_NET_ADMIN (and
CAP_NET_RAW, which the kernel accepts too) refuses to start, to pass --check and
to reload into a transparent service, naming the capability and the systemd
line. As root the capabilities are dropped from the child's bounding set; as
another user it has none to begin with.
"""

import ctypes
import json
import os
import signal
import subprocess
import unittest

from harness import (
    IntegrationTest,
    NamedServer,
    ConfigDir,
    castellan_bin,
    free_port,
    make_config,
    run_cli,
    tcp_service,
    wait_for,
)
from netns_topology import (
    CAS_TCP_PORT,
    CLIENT_ADDRESSES,
    CLIENT_VIP,
    SERVER_VIP,
    Topology,
    read_line,
    require_tools,
)
from test_gateway import LISTEN_PORT, rpc_config

PR_CAPBSET_DROP = 24
CAP_NET_ADMIN, CAP_NET_RAW = 12, 13


def drop_transparent_capabilities():
    """preexec_fn: the child and what it execs lose CAP_NET_ADMIN and CAP_NET_RAW."""
    if os.geteuid() != 0:
        return  # an ordinary user has neither
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_NET_ADMIN, CAP_NET_RAW):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


class TransparentNetworkTest(IntegrationTest):
    def setUp(self):
        require_tools("nft")
        self.topo = Topology(nodes=1)
        self.addCleanup(self.topo.close)
        self.topo.hold_virtual_addresses(1)
        self.topo.route_cas_through(SERVER_VIP)
        self.topo.load_gateway_nft(1)
        self.topo.transparent_routing(1)

    def test_the_cas_sees_the_client_address_and_replies_flow_back(self):
        self.proxy = self.topo.start_castellan(1, rpc_config(transparent=True))
        node_address = Topology.node_server_address(1)
        seen = {}
        for source in CLIENT_ADDRESSES[:6]:
            sock = self.topo.client.connect(CLIENT_VIP, LISTEN_PORT, source=source)
            self.addCleanup(sock.close)
            name, peer = read_line(sock).split()
            self.assertEqual(peer, source, f"{name} saw {peer}, not the client" + self.log_tail())
            # Bytes both ways: the CAS server's replies to the client's address
            # came back through castellan's socket.
            sock.sendall(f"hello from {source}\n".encode())
            self.assertEqual(read_line(sock), f"hello from {source}")
            seen[source] = name
        self.assertEqual(set(seen.values()), {"cas1", "cas2"})
        # Health checks come from castellan's own address, never a client's.
        for cas in ("cas1", "cas2"):
            checked = lambda: node_address in self.topo.peer_servers[cas].peers()
            self.assertTrue(wait_for(checked, timeout=3.0), f"{cas} got no health check from castellan's address")
            peers = set(self.topo.peer_servers[cas].peers())
            self.assertLessEqual(peers - {node_address}, set(CLIENT_ADDRESSES[:6]))
        self.assertEqual(self.proxy.log_events("transparent_bind_failed"), [], self.log_tail())


class TransparentConfigTest(IntegrationTest):
    def transparent_config(self, **extra):
        return make_config([tcp_service("smtp", free_port(), [("cas1", free_port())], transparent=True, **extra)])

    def test_check_refuses_transparent_with_source_addresses(self):
        with ConfigDir(self.transparent_config(source_addresses=["127.0.0.2"])) as folder:
            done = run_cli(["--config", str(folder.config_file), "--check"])
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(
            done.stderr.strip(),
            "/virtual_services/0/transparent: cannot be used with source_addresses: a transparent connection comes "
            "from the client's own address; leave source_addresses out",
        )

    def run_without_capability(self, *args):
        return subprocess.run(
            [castellan_bin(), *args], capture_output=True, text=True, timeout=15,
            stdin=subprocess.DEVNULL, preexec_fn=drop_transparent_capabilities,
        )

    def assert_names_the_capability(self, text):
        self.assertIn("/virtual_services/0/transparent: castellan may not set IP_TRANSPARENT", text)
        self.assertIn("CAP_NET_ADMIN", text)
        self.assertIn("AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_NET_ADMIN", text)

    def test_without_the_capability_check_and_start_fail_naming_it(self):
        with ConfigDir(self.transparent_config()) as folder:
            checked = self.run_without_capability("--config", str(folder.config_file), "--check")
            started = self.run_without_capability("--config", str(folder.config_file))
        self.assertEqual(checked.returncode, 1, checked.stderr)
        self.assert_names_the_capability(checked.stderr)
        self.assertEqual(started.returncode, 1, started.stderr)
        self.assertIn("event=config_error", started.stderr)
        self.assert_names_the_capability(started.stderr)
        self.assertNotIn("event=ready", started.stderr)

    def test_a_reload_turning_transparent_on_without_the_capability_is_refused(self):
        real = self.serve(NamedServer("cas1"))
        service = tcp_service("smtp", free_port(), [("cas1", real.port)])
        proxy = self.start(make_config([service]), preexec_fn=drop_transparent_capabilities)
        proxy.config_file.write_text(json.dumps(make_config([dict(service, transparent=True)])))
        proxy.signal(signal.SIGHUP)
        line = proxy.wait_for_log(lambda l: "event=reload " in l, timeout=10.0)
        self.assertIsNotNone(line, self.log_tail())
        self.assertIn("ok=false", line)
        self.assert_names_the_capability(line)
        self.assertTrue(proxy.running())


if __name__ == "__main__":
    unittest.main()
