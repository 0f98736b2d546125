"""`castellan template exchange2010` (INTERFACE.md, command line; README "Generating a
config"): what it prints passes `--check` unchanged once the files it names exist
beside it, wrong command lines exit 2 naming the argument, and the acceptance of the
Exchange example runs on its output.

The acceptance starts castellan on the printed config as it is (Exchange's own ports:
135, the two static RPC ports, 25 and 443 on a VIP of 127.0.10.50) in front of two
fake CAS servers on 127.0.10.11 and 127.0.10.12 (loopback answers the whole 127/8;
these addresses are used by no other test). Each fake CAS answers DCE/RPC binds for
the interface of its port (so the dcerpc checks go up), greets SMTP with its name,
and serves HTTPS with the OWA logon page the health check asks for; a test client
learns which CAS it reached from the CAS itself (`who` on an RPC port, the SMTP
banner, the HTTP body). Ports below 1024 need root: without it the acceptance is
skipped.
"""

import collections
import http.client
import json
import os
import secrets
import shutil
import ssl
import struct
import tempfile
import unittest
import urllib.request
from pathlib import Path

from harness import (
    IntegrationTest,
    TcpServer,
    connect_via,
    free_port,
    is_closed,
    read_line,
    run_cli,
    wait_for,
)
from pki import make_self_signed
from test_dcerpc_health import MAILBOX, bind_ack, parse_bind

VIP = "127.0.10.50"
CAS = {"cas1": "127.0.10.11", "cas2": "127.0.10.12"}
ADDRESS_BOOK = ("f5cc5a18-4264-101a-8c59-08002b2f8426", 56, 0)
MBX_PORT, AB_PORT = 59532, 59533
RPC_SERVICES = ("cas-rpc-epm", "cas-rpc-mailbox", "cas-rpc-ab")
ALL_SERVICES = RPC_SERVICES + ("cas-smtp", "cas-https")
COOKIE = "CASTELLAN"
# The template's own check timing (2 s for RPC, 5 s for SMTP and HTTPS, fall 2):
# the first check lands within one interval, a failure shows after two more.
FIRST_CHECKS = 15.0
DOWN_LIMIT = 12.0


def template(*args):
    return run_cli(["template", "exchange2010", *args])


def cas_args(**cas):
    args = []
    for name, address in (cas or CAS).items():
        args += ["--cas", f"{name}={address}"]
    return args


def write_named_files(folder, config):
    """Creates what the template's config names beside it, as an administrator would:
    the admin token, the cookie secret, the certificate and key. Returns the config path."""
    for name in [config["admin"]["token_file"]] + [
        s["persistence"]["cookie_secret_file"]
        for s in config["virtual_services"]
        if "cookie_secret_file" in s.get("persistence", {})
    ]:
        (folder / name).write_text(secrets.token_hex(32) + "\n")
        os.chmod(folder / name, 0o600)
    for service in config["virtual_services"]:
        for pair in service.get("tls", {}).get("certificates", []):
            if not (folder / pair["cert"]).exists():
                make_self_signed(folder / pair["cert"], folder / pair["key"])


class TemplateCommandTest(unittest.TestCase):
    def setUp(self):
        self.folder = Path(tempfile.mkdtemp(prefix="castellan-template-"))
        self.addCleanup(shutil.rmtree, self.folder, True)

    def generate(self, *args):
        result = template(*args)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        return result.stdout

    def check(self, text):
        config_file = self.folder / "castellan.json"
        config_file.write_text(text)
        return run_cli(["--config", str(config_file), "--check"])

    def test_every_tls_mode_passes_check_unchanged(self):
        cases = {
            "passthrough": [],
            "reencrypt": ["--certificate", "mail.pem", "mail.key"],
            "terminate": ["--tls", "terminate", "--certificate", "mail.pem", "mail.key"],
            "everything": ["--tls", "reencrypt", "--certificate", "mail.pem", "mail.key", "--pop-imap",
                           "--vip", "192.168.0.30", "--rpc-ports", "6001,6004", "--admin", "127.0.0.1:8090"],
        }
        for name, extra in cases.items():
            with self.subTest(name):
                text = self.generate(*cas_args(cas1="192.168.0.34", cas2="192.168.0.35"), *extra)
                config = json.loads(text)
                write_named_files(self.folder, config)
                result = self.check(text)
                self.assertEqual(result.returncode, 0, f"{name}:\n{result.stderr}\n{text}")
                https = next(s for s in config["virtual_services"] if s["name"] == "cas-https")
                self.assertEqual(https["tls"]["mode"], "reencrypt" if name in ("reencrypt", "everything") else name)
        self.assertIn('"listen": "192.168.0.30:6001"', text)
        self.assertEqual(len(json.loads(text)["virtual_services"]), 9)

    def test_check_reads_the_files_the_config_names(self):
        text = self.generate(*cas_args(), "--certificate", "mail.pem", "mail.key")
        result = self.check(text)
        self.assertEqual(result.returncode, 1, result.stderr)
        for missing in ("/admin/token_file", "cookie_secret_file", "/tls/certificates/0/cert"):
            self.assertIn(missing, result.stderr)
        write_named_files(self.folder, json.loads(text))
        self.assertEqual(self.check(text).returncode, 0)

    def test_the_same_arguments_print_the_same_config(self):
        args = cas_args() + ["--certificate", "mail.pem", "mail.key"]
        self.assertEqual(self.generate(*args), self.generate(*args))

    def test_one_cas_is_a_warning(self):
        result = template("--cas", "cas1=192.168.0.34")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning: only one --cas", result.stderr)
        self.assertEqual(len(json.loads(result.stdout)["virtual_services"][0]["real_servers"]), 1)

    def test_wrong_command_lines_exit_2_naming_the_argument(self):
        cases = [
            ([], "--cas"),
            (cas_args(cas1="192.168.0.34", cas2="192.168.0.35") + ["--tls", "reencrypt"], "--certificate"),
            (cas_args(cas1="192.168.0.34", cas2="192.168.0.35") + ["--tls", "offload"], "--tls offload"),
            (["--cas", "cas 1=192.168.0.34"], "--cas cas 1=192.168.0.34"),
            (["--cas", "cas1=cas1.contoso.com"], "--cas cas1=cas1.contoso.com"),
            (["--cas", "cas1=192.168.0.34", "--cas", "cas1=192.168.0.35"], "cas1 is given twice"),
            (["--cas", "cas1"], "--cas cas1"),
            (cas_args() + ["--vip", "castellan"], "--vip castellan"),
            (cas_args() + ["--rpc-ports", "59532"], "--rpc-ports 59532"),
            (cas_args() + ["--admin", "127.0.0.1:135"], "--admin 127.0.0.1:135"),
            (cas_args() + ["--frobnicate"], "--frobnicate"),
        ]
        for args, named in cases:
            with self.subTest(args=args):
                result = template(*args)
                self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
                self.assertEqual(result.stdout, "", "nothing half-made on stdout")
                first = result.stderr.splitlines()[0]
                self.assertIn(named, first)

    def test_help_lists_every_flag(self):
        result = template("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        for flag in ("--cas", "--vip", "--rpc-ports", "--tls", "--certificate", "--pop-imap", "--admin"):
            self.assertIn(flag, result.stdout)


# ---------------------------------------------------------------------------
# The fake CAS servers of the acceptance


class CasRpcPort(TcpServer):
    """One CAS's RPC port: answers a DCE/RPC bind for `interface` with bind_ack (any
    other interface is rejected, as Windows does), and `who` with the CAS's name,
    then holds the connection open until the client or castellan closes it."""

    def __init__(self, name, host, port, interface):
        self.name = name
        self.interface = interface
        super().__init__(port=port, host=host)

    def handle(self, conn):
        data = self.recv(conn, 4096)
        if not data:
            return
        if data[:1] == b"\x05":  # a DCE/RPC PDU: castellan's health check
            while len(data) < 16 or len(data) < struct.unpack("<H", data[8:10])[0]:
                chunk = self.recv(conn, 4096)
                if not chunk:
                    return
                data += chunk
            interface, major, minor, call_id = parse_bind(data)
            accepted = (interface, major, minor) == self.interface
            self.sendall(conn, bind_ack(call_id, 0 if accepted else 2, 0 if accepted else 1))
            return
        if data.startswith(b"who"):
            self.sendall(conn, (self.name + "\n").encode())
        while self.recv(conn, 4096):  # held like an Outlook connection
            pass


class CasSmtp(TcpServer):
    """Greets with the CAS's name in the banner; answers QUIT."""

    def __init__(self, name, host):
        self.name = name
        super().__init__(port=25, host=host)

    def handle(self, conn):
        if not self.sendall(conn, f"220 {self.name} Microsoft ESMTP MAIL Service ready\r\n".encode()):
            return
        line = self.recv(conn, 1024)
        if line and line.upper().startswith(b"QUIT"):
            self.sendall(conn, b"221 2.0.0 Closing connection\r\n")


class CasHttps(TcpServer):
    """HTTPS on 443: the OWA logon page of a healthy 2010 CAS for the health check, and
    the CAS's name as the body of any other GET. One request per connection."""

    def __init__(self, name, host, cert, key):
        self.name = name
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.paths = []
        super().__init__(port=443, host=host)

    def handle(self, conn):
        conn.settimeout(5.0)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            head = bytearray()
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ", 2)[1].decode()
            with self._lock:
                self.paths.append(path)
            body = b"<html>logon</html>" if path == "/owa/auth/logon.aspx" else (self.name + "\n").encode()
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        finally:
            tls.close()


class Cas:
    """Every port of one fake CAS; stop() ends them all, take_down(port) one."""

    def __init__(self, name, host, cert, key):
        makers = {
            135: lambda: CasRpcPort(name, host, 135, MAILBOX),  # not checked: the template asks the mailbox port
            MBX_PORT: lambda: CasRpcPort(name, host, MBX_PORT, MAILBOX),
            AB_PORT: lambda: CasRpcPort(name, host, AB_PORT, ADDRESS_BOOK),
            25: lambda: CasSmtp(name, host),
            443: lambda: CasHttps(name, host, cert, key),
        }
        self.servers = {}
        try:
            for port, make in makers.items():
                self.servers[port] = make()
        except BaseException:
            self.stop()
            raise

    def take_down(self, port):
        self.servers[port].stop()

    def stop(self):
        for server in self.servers.values():
            server.stop()


# ---------------------------------------------------------------------------
# Clients of the VIP, each from its own 127.0.20.x address (a persistence key)


def client_address(number):
    return f"127.0.20.{number}"


def connect(port, source, timeout=5.0):
    return connect_via(port, source, timeout, host=VIP)


def rpc_who(port, source):
    """The CAS an RPC connection from `source` reached, and the open connection."""
    sock = connect(port, source)
    try:
        sock.sendall(b"who\n")
        return read_line(sock), sock
    except BaseException:
        sock.close()
        raise


def smtp_banner_name(source):
    with connect(25, source) as sock:
        banner = read_line(sock)
        sock.sendall(b"QUIT\r\n")
        return banner.split()[1]


def https_get(source, cookie=None):
    """(CAS name in the body, value of the CASTELLAN cookie set or None, peer certificate DER)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(VIP, 443, timeout=5.0, context=context, source_address=(source, 0))
    try:
        connection.connect()
        certificate = connection.sock.getpeercert(binary_form=True)
        headers = {"Host": "mail.contoso.com"}
        if cookie:
            headers["Cookie"] = f"{COOKIE}={cookie}"
        connection.request("GET", "/owa/", headers=headers)
        response = connection.getresponse()
        body = response.read().decode().strip()
        if response.status != 200:
            raise AssertionError(f"status {response.status}: {body}")
        value = None
        for header, text in response.getheaders():
            if header.lower() == "set-cookie" and text.startswith(COOKIE + "="):
                value = text.split(";", 1)[0].split("=", 1)[1]
        return body, value, certificate
    finally:
        connection.close()


class ExchangeAcceptanceOnTheTemplate(IntegrationTest):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("castellan and the fake CAS servers bind 135, 25 and 443: ports below 1024 need root")
        self.folder = Path(tempfile.mkdtemp(prefix="castellan-template-acceptance-"))
        self.addCleanup(shutil.rmtree, self.folder, True)
        cert, key = self.folder / "mail.pem", self.folder / "mail.key"
        make_self_signed(cert, key)
        self.cas = {}
        for name, host in CAS.items():
            try:
                self.cas[name] = Cas(name, host, str(cert), str(key))
            except OSError as error:
                self.skipTest(f"cannot bind the fake {name} on {host}: {error}")
            self.addCleanup(self.cas[name].stop)

        self.admin_port = free_port()
        printed = template(*cas_args(), "--vip", VIP, "--certificate", "mail.pem", "mail.key",
                           "--admin", f"127.0.0.1:{self.admin_port}")
        self.assertEqual(printed.returncode, 0, printed.stderr)
        self.text = printed.stdout
        config = json.loads(self.text)
        config_file = self.folder / "castellan.json"
        config_file.write_text(self.text)
        write_named_files(self.folder, config)
        check = run_cli(["--config", str(config_file), "--check"])
        self.assertEqual(check.returncode, 0, check.stderr)
        self.certificate_der = ssl.PEM_cert_to_DER_cert(cert.read_text())
        # Unchanged: the same text, and the files it names beside it.
        files = {name: (self.folder / name).read_text() for name in ("admin.token", "cookie.secret", "mail.pem", "mail.key")}
        self.start(self.text, files=files)

    # -- status

    def status(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/api/v1/status", timeout=5) as response:
            return json.loads(response.read())

    def states(self):
        """{(service, cas): (state, health ok or None)}."""
        shown = {}
        for vs in self.status()["virtual_services"]:
            for rs in vs["real_servers"]:
                shown[(vs["name"], rs["name"])] = (rs["state"], rs["health"] and rs["health"]["ok"])
        return shown

    def wait_all_checked_up(self):
        want = {(service, name): ("up", True) for service in ALL_SERVICES for name in CAS}
        shown = wait_for(lambda: self.states() == want, timeout=FIRST_CHECKS, interval=0.2)
        self.assertTrue(shown, f"not every CAS up and checked: {self.states()}" + self.log_tail())

    def wait_down(self, services, name):
        def down():
            states = self.states()
            return all(states[(service, name)][0] == "down" for service in services)

        self.assertTrue(wait_for(down, timeout=DOWN_LIMIT, interval=0.2),
                        f"{name} not down in {services}: {self.states()}" + self.log_tail())

    # -- the acceptance

    def rpc_client(self, number, keep=False):
        """The CAS of each RPC port for client `number`; with keep, its open 135 connection too."""
        source = client_address(number)
        landed, kept = {}, None
        for port in (135, MBX_PORT, AB_PORT):
            name, sock = rpc_who(port, source)
            landed[port] = name
            if keep and port == 135:
                kept = sock
                self.addCleanup(sock.close)
            else:
                sock.close()
        return landed, kept

    def test_the_exchange_example_on_the_templates_config(self):
        self.wait_all_checked_up()

        # RPC: the three ports of one client reach one CAS; clients spread over both.
        first_cas = collections.Counter()
        held = None
        for number in range(1, 7):
            landed, sock = self.rpc_client(number, keep=held is None)
            self.assertEqual(len(set(landed.values())), 1, f"client {number} split over CAS servers: {landed}")
            first_cas[landed[135]] += 1
            if sock is not None:
                if landed[135] == "cas1":
                    held = sock
                else:
                    sock.close()
        self.assertEqual(set(first_cas), {"cas1", "cas2"}, first_cas)
        self.assertIsNotNone(held, "no client landed on cas1 to hold")

        # SMTP: round robin over both.
        smtp = collections.Counter(smtp_banner_name(client_address(50)) for _ in range(10))
        self.assertEqual(smtp, {"cas1": 5, "cas2": 5})

        # 443: castellan's certificate, a persistence cookie, and the cookie keeps the CAS.
        name, cookie, der = https_get(client_address(60))
        self.assertEqual(der, self.certificate_der, "443 must present the --certificate given to the template")
        self.assertIsNotNone(cookie, f"no {COOKIE} cookie on the first answer")
        for _ in range(4):
            self.assertEqual(https_get(client_address(61), cookie)[0], name)
        cookies = {https_get(client_address(62))[0] for _ in range(4)}
        self.assertEqual(cookies, {"cas1", "cas2"}, "clients without a cookie are balanced")
        cas1_cookie = next(c for n, c, _ in (https_get(client_address(63)) for _ in range(4)) if n == "cas1")

        # cas1's mailbox service dies: its dcerpc check fails, cas1 is down in every member
        # of the group, its open connections are closed, new RPC clients go to cas2.
        self.cas["cas1"].take_down(MBX_PORT)
        self.wait_down(RPC_SERVICES, "cas1")
        self.assertTrue(wait_for(lambda: is_closed(held), timeout=3.0),
                        "on_server_down: close must close cas1's open 135 connection" + self.log_tail())
        for number in (1, 2, 3, 101, 102, 103):
            landed, _ = self.rpc_client(number)
            self.assertEqual(landed, {135: "cas2", AB_PORT: "cas2", MBX_PORT: "cas2"}, f"client {number}")

        # Then the whole of cas1: SMTP and 443 clients move to cas2 before any byte.
        self.cas["cas1"].stop()
        self.assertEqual({smtp_banner_name(client_address(51)) for _ in range(6)}, {"cas2"})
        moved, new_cookie, _ = https_get(client_address(64), cas1_cookie)
        self.assertEqual(moved, "cas2")
        self.assertIsNotNone(new_cookie, "a client whose CAS died gets a cookie for its new one")
        self.assertEqual(https_get(client_address(64), new_cookie)[0], "cas2")
        self.wait_down(("cas-smtp", "cas-https"), "cas1")
        self.assertEqual(self.states()[("cas-rpc-epm", "cas2")], ("up", True))


if __name__ == "__main__":
    unittest.main()
