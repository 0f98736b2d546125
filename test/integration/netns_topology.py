"""A small network of namespaces for the network-placement tests (gateway, transparent, HA pair).

    client (10.77.1.50-69) ─┐                       ┌─ cas1 (10.77.2.21, gateway: see below)
    outside (10.77.1.200) ──┼─ client network ─ node1 (10.77.1.11 | 10.77.2.11) ─ server network ─┼─ cas2 (10.77.2.22)
                            └─ 10.77.1.0/24 ─── node2 (10.77.1.12 | 10.77.2.12) ─ 10.77.2.0/24 ──┘

Every box is a network namespace; the two networks are bridges in a "switch"
namespace of their own, so nothing is added to the host's network. A castellan
node has a client arm (`cli0`) and a server arm (`srv0`); the clients' virtual
address is 10.77.1.100, the CAS servers' gateway address on the server side
10.77.2.1 (with keepalived, both move with the pair; a single node holds both
statically). The CAS servers' default route goes through that gateway, so the
"outside" namespace is reachable from them only through castellan (it has no
route to their network: their connections must be NATed).

In the CAS and outside namespaces runs netns_peer_server.py: "NAME PEER\\n" on
port 7000 (then echo), HTTP on port 8080.

The test's own thread enters a namespace (setns) to make a socket there and to
start castellan (the child inherits the namespace), and leaves at once. The
contrib/ files are used as they are, with only their site definitions (the
`define` lines of gateway.nft, the `$NAME=` lines of keepalived.conf) replaced
by this network's interfaces and addresses.

Names start with a prefix made of "cnp" and the process id, so that tests of
other runs never meet; close() kills every process left in the namespaces
(only processes this test started can be there) and deletes them, whatever
state the test left.
"""

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

from harness import REPO, SOCKET_TIMEOUT, Castellan, wait_for

CLONE_NEWNET = 0x40000000
CONTRIB = REPO / "contrib"
PEER_SERVER = Path(__file__).resolve().parent / "netns_peer_server.py"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"

CLIENT_NET, SERVER_NET = "10.77.1", "10.77.2"
CLIENT_VIP = f"{CLIENT_NET}.100"
SERVER_VIP = f"{SERVER_NET}.1"
OUTSIDE = f"{CLIENT_NET}.200"
CLIENT_ADDRESSES = [f"{CLIENT_NET}.{50 + i}" for i in range(20)]
CAS_TCP_PORT, CAS_HTTP_PORT = 7000, 8080
ADMIN = ("127.0.0.1", 9090)
STEP_TIMEOUT = 15  # seconds for any one ip/nft/sysctl command

_topologies = itertools.count()


def require_tools(*tools):
    """Raises SkipTest with the reason when not root or a tool is missing."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise unittest.SkipTest("needs root to make network namespaces")
    missing = [tool for tool in ("ip",) + tools if not shutil.which(tool)]
    if missing:
        raise unittest.SkipTest(f"needs {', '.join(missing)} (scripts/setup.sh installs them)")


def run(*args, check=True, timeout=STEP_TIMEOUT, stdin_text=None):
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin_text,
        stdin=None if stdin_text is not None else subprocess.DEVNULL,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


class Namespace:
    """One named network namespace with loopback up."""

    def __init__(self, name):
        self.name = name
        made = run("ip", "netns", "add", name, check=False)
        if made.returncode != 0:
            raise unittest.SkipTest(f"cannot make a network namespace here: {made.stderr.strip()}")
        self._fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args, check=True):
        return run("ip", "-n", self.name, *args, check=check)

    def exec(self, *args, check=True, stdin_text=None):
        return run("ip", "netns", "exec", self.name, *args, check=check, stdin_text=stdin_text)

    @contextlib.contextmanager
    def entered(self):
        """The calling thread inside the namespace: sockets made and processes started meanwhile live there."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(self._fd)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)

    def connect(self, address, port, source=None, timeout=SOCKET_TIMEOUT):
        """A TCP connection made from this namespace (from `source` when given)."""
        with self.entered():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            if source:
                sock.bind((source, 0))
            sock.connect((address, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def addresses(self, device):
        shown = self.ip("-4", "-o", "addr", "show", "dev", device, check=False).stdout
        return re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", shown)

    def pids(self):
        return [int(p) for p in run("ip", "netns", "pids", self.name, check=False).stdout.split()]

    def close(self):
        # Only what this test started can live here: kill it all before the
        # namespace goes (deleting a namespace kills nothing).
        for _ in range(3):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            time.sleep(0.1)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        run("ip", "netns", "del", self.name, check=False)


class _Lines:
    """Collects a process's output lines in a thread."""

    def __init__(self, stream):
        self.lines = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, text, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while text not in self.lines:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def snapshot(self):
        with self._cond:
            return list(self.lines)


class PeerServer:
    """netns_peer_server.py running in a namespace."""

    def __init__(self, namespace, name):
        self.name = name
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace.name, PYTHON, str(PEER_SERVER), name,
             "--tcp-port", str(CAS_TCP_PORT), "--http-port", str(CAS_HTTP_PORT)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self._out = _Lines(self.proc.stdout)
        if not self._out.wait_for("ready", 10.0):
            self.stop()
            raise AssertionError(f"peer server {name} did not start: {self._out.snapshot()}")

    def peers(self, port=CAS_TCP_PORT):
        """The peer address of every connection accepted on `port`, in order."""
        prefix = f"accepted {port} "
        return [line[len(prefix):] for line in self._out.snapshot() if line.startswith(prefix)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdout.close()


class Topology:
    """The network above with `nodes` castellan nodes (1 or 2); close() undoes it all."""

    def __init__(self, nodes=2):
        self.prefix = f"cnp{os.getpid()}x{next(_topologies)}"
        self.dir = Path(tempfile.mkdtemp(prefix="castellan-netns-"))
        self.namespaces = []
        self.processes = []
        try:
            self._build(nodes)
        except BaseException:
            self.close()
            raise

    def _namespace(self, role):
        namespace = Namespace(f"{self.prefix}-{role}")
        self.namespaces.append(namespace)
        return namespace

    def _plug(self, namespace, bridge, tag, device, addresses):
        """A veth from `namespace` (named `device` there) to `bridge` of the switch, with `addresses`."""
        self.switch.ip("link", "add", tag, "type", "veth", "peer", "name", device, "netns", namespace.name)
        self.switch.ip("link", "set", tag, "master", bridge, "up")
        for address in addresses:
            namespace.ip("addr", "add", f"{address}/24", "dev", device)
        namespace.ip("link", "set", device, "up")

    def _build(self, node_count):
        self.switch = self._namespace("sw")
        for bridge in ("brc", "brs"):
            self.switch.ip("link", "add", bridge, "type", "bridge")
            self.switch.ip("link", "set", bridge, "up")
        self.client = self._namespace("client")
        self._plug(self.client, "brc", "c-client", "eth0", CLIENT_ADDRESSES)
        self.outside = self._namespace("out")
        self._plug(self.outside, "brc", "c-out", "eth0", [OUTSIDE])
        self.nodes = []
        for i in range(1, node_count + 1):
            node = self._namespace(f"n{i}")
            self._plug(node, "brc", f"c-n{i}", "cli0", [self.node_client_address(i)])
            self._plug(node, "brs", f"s-n{i}", "srv0", [self.node_server_address(i)])
            node.exec("sysctl", "-q", "-p", str(CONTRIB / "sysctl-castellan.conf"))
            self.nodes.append(node)
        self.cas = []
        for i in (1, 2):
            cas = self._namespace(f"cas{i}")
            self._plug(cas, "brs", f"s-cas{i}", "eth0", [self.cas_address(i)])
            self.cas.append(cas)
        self.peer_servers = {}
        for name, namespace in (("cas1", self.cas[0]), ("cas2", self.cas[1]), ("outside", self.outside)):
            server = PeerServer(namespace, name)
            self.processes.append(server)
            self.peer_servers[name] = server

    # -- addresses ------------------------------------------------------------

    @staticmethod
    def node_client_address(i):
        return f"{CLIENT_NET}.{10 + i}"

    @staticmethod
    def node_server_address(i):
        return f"{SERVER_NET}.{10 + i}"

    @staticmethod
    def cas_address(i):
        return f"{SERVER_NET}.{20 + i}"

    # -- set-ups --------------------------------------------------------------

    def route_cas_through(self, gateway):
        for cas in self.cas:
            cas.ip("route", "replace", "default", "via", gateway)

    def hold_virtual_addresses(self, i):
        """A single node without keepalived: it holds both virtual addresses itself."""
        node = self.nodes[i - 1]
        node.ip("addr", "add", f"{CLIENT_VIP}/24", "dev", "cli0")
        node.ip("addr", "add", f"{SERVER_VIP}/24", "dev", "srv0")

    def load_gateway_nft(self, i):
        """contrib/gateway.nft with this network's interface and subnet in its two definitions."""
        text = (CONTRIB / "gateway.nft").read_text()
        text, count = re.subn(r'(?m)^define server_if = .*$', 'define server_if = "srv0"', text)
        text, count2 = re.subn(r"(?m)^define cas_net = .*$", f"define cas_net = {SERVER_NET}.0/24", text)
        assert count == 1 and count2 == 1, "contrib/gateway.nft: its two define lines were not found"
        path = self.dir / f"gateway-n{i}.nft"
        path.write_text(text)
        self.nodes[i - 1].exec("nft", "-f", str(path))

    def transparent_routing(self, i):
        self.nodes[i - 1].exec("sh", str(CONTRIB / "transparent-routing.sh"), "up")

    def keepalived_conf(self):
        """contrib/keepalived.conf with this network's interfaces and addresses in its definitions."""
        values = {
            "CLIENT_IF": "cli0",
            "CLIENT_VIP": f"{CLIENT_VIP}/24",
            "SERVER_IF": "srv0",
            "SERVER_VIP": f"{SERVER_VIP}/24",
            "STATUS_URL": f"http://{ADMIN[0]}:{ADMIN[1]}/api/v1/status",
        }
        text = (CONTRIB / "keepalived.conf").read_text()
        for name, value in values.items():
            text, count = re.subn(rf"(?m)^\${name}=.*$", f"${name}={value}", text)
            assert count == 1, f"contrib/keepalived.conf: no ${name}= line"
        path = self.dir / "keepalived.conf"
        path.write_text(text)
        return path

    def start_keepalived(self, i):
        """keepalived in the foreground in node i's namespace, as instance castellan<i>; gives a Keepalived."""
        keepalived = Keepalived(self.nodes[i - 1], self.keepalived_conf(), self.dir / f"n{i}", f"castellan{i}")
        self.processes.append(keepalived)
        return keepalived

    def start_castellan(self, i, config):
        with self.nodes[i - 1].entered():
            proxy = Castellan(config)
            proxy.start()
        self.processes.append(proxy)
        return proxy

    # -- looking ----------------------------------------------------------------

    def nodes_holding(self, address, device):
        """The nodes (1, 2) that have `address` on `device`."""
        return [i for i, node in enumerate(self.nodes, 1) if address in node.addresses(device)]

    def holder(self, address=CLIENT_VIP, device="cli0"):
        """Which node (1, 2) holds `address` on `device`; None if none, -1 if several."""
        holders = self.nodes_holding(address, device)
        return holders[0] if len(holders) == 1 else (None if not holders else -1)

    def banner(self, namespace, address, port, source=None):
        """The "NAME PEER" line a peer server sends first, over a fresh connection; (name, peer)."""
        sock = namespace.connect(address, port, source=source)
        try:
            line = read_line(sock)
        finally:
            sock.close()
        name, peer = line.split()
        return name, peer

    def close(self):
        for process in reversed(self.processes):
            with contextlib.suppress(Exception):
                process.stop()
        for namespace in reversed(self.namespaces):
            namespace.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Keepalived:
    """keepalived -n (foreground) in a namespace with its own pid files and log."""

    def __init__(self, namespace, conf, workdir, instance):
        workdir.mkdir(parents=True, exist_ok=True)
        self.pid_file, self.vrrp_pid_file = workdir / "keepalived.pid", workdir / "vrrp.pid"
        self.log = workdir / "keepalived.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", namespace.name, "keepalived", "-n", "-l", "-D", "-P",
                 "-f", str(conf), "-p", str(self.pid_file), "-r", str(self.vrrp_pid_file), "-i", instance],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )

    def vrrp_pid(self):
        with contextlib.suppress(OSError, ValueError):
            return int(self.vrrp_pid_file.read_text().split()[0])
        return None

    def kill(self):
        """SIGKILL to keepalived and its VRRP process: it dies without a word (no priority-0 advert)."""
        child = wait_for(self.vrrp_pid, timeout=5.0)
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, 9)
        self.proc.kill()
        self.proc.wait(5)

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self):
        if self.proc.poll() is None:
            self.kill()


def read_line(sock, limit=1024):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise EOFError(f"connection closed after {data!r}")
        data += chunk
        if len(data) > limit:
            raise AssertionError(f"no line within {limit} bytes: {data!r}")
    return data.decode().strip()
