"""TLS terminate and reencrypt (tls.mode "terminate" / "reencrypt", tcp mode).

castellan completes the client's TLS handshake itself with the certificate chosen by
SNI, then splices the plaintext to the real server (terminate) or to a TLS connection
of its own to the real server (reencrypt, optionally verified against a CA and with
its own SNI). Every test here runs the real binary against real servers on 127.0.0.1
and a throwaway PKI made with the `openssl` command line at module set-up: a test CA,
leaf certificates for a.test, b.test, *.wild.test, x.wild.test and the backend
(backend.test, IP 127.0.0.1), and a second CA that castellan does not trust.
"""

import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import warnings

from pki import random_serial as _serial, run_openssl as _openssl, write_text as _write
from harness import (
    HOST,
    ConfigDir,
    EchoServer,
    IntegrationTest,
    NamedServer,
    TcpServer,
    addr,
    connect_via,
    free_port,
    make_config,
    parse_log_line,
    read_line,
    read_to_end,
    run_cli,
    tcp_service,
    wait_for,
)

VS = "tls-front"
RELOAD_TIMEOUT = 10.0
RELOAD_LINE = re.compile(r"\bevent=reload(\s|$)")
FAILURE_METRIC = "castellan_tls_handshake_failures_total"
HANDSHAKE_METRIC = "castellan_tls_handshakes_total"


# ---------------------------------------------------------------------------
# A throwaway PKI made with the openssl command line




def make_ca(folder, stem, common_name):
    """A self-signed CA (EC P-256): (cert path, key path)."""
    cnf = os.path.join(folder, stem + ".cnf")
    _write(cnf, "\n".join([
        "[req]", "distinguished_name = dn", "prompt = no",
        "[dn]", f"CN = {common_name}",
        "[ca]", "basicConstraints = critical,CA:TRUE", "keyUsage = critical,keyCertSign,cRLSign",
        "subjectKeyIdentifier = hash", "",
    ]))
    cert, key = os.path.join(folder, stem + ".pem"), os.path.join(folder, stem + ".key")
    _openssl("req", "-x509", "-new", "-config", cnf, "-extensions", "ca", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
             "-days", "3", "-set_serial", _serial())
    return cert, key


def make_leaf(folder, stem, common_name, alt_names, ca, chain=False):
    """A server certificate signed by `ca` ((cert, key) paths) with subjectAltName
    `alt_names` (e.g. ["DNS:a.test", "IP:127.0.0.1"]): (cert path, key path).
    chain=True appends the CA certificate to the cert file (a PEM chain)."""
    cnf = os.path.join(folder, stem + ".cnf")
    _write(cnf, "\n".join([
        "[req]", "distinguished_name = dn", "prompt = no",
        "[dn]", f"CN = {common_name}",
        "[leaf]", "basicConstraints = critical,CA:FALSE", "keyUsage = critical,digitalSignature",
        "extendedKeyUsage = serverAuth", "subjectAltName = " + ",".join(alt_names),
        "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid", "",
    ]))
    cert, key = os.path.join(folder, stem + ".pem"), os.path.join(folder, stem + ".key")
    csr = os.path.join(folder, stem + ".csr")
    _openssl("req", "-new", "-config", cnf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", csr)
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial", _serial(),
             "-days", "3", "-extfile", cnf, "-extensions", "leaf", "-out", cert)
    if chain:
        with open(ca[0]) as ca_pem, open(cert, "a") as out:
            out.write(ca_pem.read())
    return cert, key


def der_of(cert_path):
    """DER bytes of the first certificate in a PEM file."""
    with open(cert_path) as pem:
        text = pem.read()
    match = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S)
    assert match, f"no certificate in {cert_path}"
    return ssl.PEM_cert_to_DER_cert(match.group(0) + "\n")


PKI = {}  # name -> (cert, key); filled by setUpModule
PKI_DIR = None


def setUpModule():
    global PKI_DIR
    if not shutil.which("openssl"):
        raise unittest.SkipTest("the openssl command line is not installed")
    PKI_DIR = tempfile.mkdtemp(prefix="castellan-tls-pki-")
    ca = make_ca(PKI_DIR, "ca", "castellan test CA")
    other_ca = make_ca(PKI_DIR, "other-ca", "castellan untrusted CA")
    PKI["ca"] = ca
    PKI["other_ca"] = other_ca
    PKI["a"] = make_leaf(PKI_DIR, "a", "a.test", ["DNS:a.test"], ca)
    PKI["b"] = make_leaf(PKI_DIR, "b", "b.test", ["DNS:b.test"], ca, chain=True)
    PKI["wild"] = make_leaf(PKI_DIR, "wild", "wild.test wildcard", ["DNS:*.wild.test"], ca)
    PKI["x_wild"] = make_leaf(PKI_DIR, "x-wild", "x.wild.test", ["DNS:x.wild.test"], ca)
    PKI["backend"] = make_leaf(PKI_DIR, "backend", "backend.test", ["DNS:backend.test", "IP:127.0.0.1"], ca)
    PKI["backend_untrusted"] = make_leaf(PKI_DIR, "backend-untrusted", "backend.test",
                                         ["DNS:backend.test", "IP:127.0.0.1"], other_ca)


def tearDownModule():
    if PKI_DIR:
        shutil.rmtree(PKI_DIR, ignore_errors=True)


def certificate_entry(name):
    cert, key = PKI[name]
    return {"cert": cert, "key": key}


# ---------------------------------------------------------------------------
# Clients


def client_context(version=None, verify=True, check_hostname=False):
    """A client context trusting the test CA. version: None (1.2 and 1.3), "1.2" or "1.3"
    (that version only)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if verify:
        context.load_verify_locations(PKI["ca"][0])
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = check_hostname
    else:
        context.verify_mode = ssl.CERT_NONE
    if version == "1.2":
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
    return context


def tls11_context():
    """A client context offering TLS 1.1 only, or None if this OpenSSL cannot."""
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT@SECLEVEL=0")
        hello = client_hello_bytes(context, "a.test")
    except (ssl.SSLError, ValueError, AttributeError):
        return None
    # Record header (5) + handshake header (4), then the hello's version: 3.2 is TLS 1.1.
    if len(hello) < 11 or hello[0] != 0x16 or hello[9:11] != b"\x03\x02":
        return None
    return context


def client_hello_bytes(context, server_name):
    """The first flight (ClientHello) of `context`'s client, taken from a memory BIO."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def split_records(data):
    """[(content type, version bytes, payload)] of whole TLS records in `data`."""
    records, offset = [], 0
    while offset + 5 <= len(data):
        length = int.from_bytes(data[offset + 3:offset + 5], "big")
        records.append((data[offset], data[offset + 1:offset + 3], data[offset + 5:offset + 5 + length]))
        offset += 5 + length
    assert offset == len(data), "trailing partial record"
    return records


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---------------------------------------------------------------------------
# Real servers


class TlsBackend(TcpServer):
    """A TLS real server: says its name once the handshake is done, then echoes.
    Records the SNI and protocol version of every handshake."""

    def __init__(self, name, cert, key):
        self.name = name
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.sni_callback = self._note_sni
        self.server_names = []
        self.versions = []
        self.resumed = []  # per handshake: did the client (castellan) resume a session?
        self.handshakes = 0
        self.handshake_errors = 0
        super().__init__()

    def _note_sni(self, ssl_object, server_name, context):
        with self._lock:
            self.server_names.append(server_name)
        return None

    def handle(self, conn):
        conn.settimeout(5.0)
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            with self._lock:
                self.handshake_errors += 1
            return
        with tls:
            with self._lock:
                self.handshakes += 1
                self.versions.append(tls.version())
                self.resumed.append(tls.session_reused)
            tls.settimeout(0.2)
            try:
                tls.sendall((self.name + "\n").encode())
                while not self.stopping():
                    try:
                        data = tls.recv(65536)
                    except socket.timeout:
                        continue
                    if not data:
                        return
                    tls.sendall(data)
            except (ssl.SSLError, OSError):
                return


class Nginx:
    """nginx serving `return 200 "hello\\n"` over TLS on 127.0.0.1:port, logging
    $ssl_protocol and $ssl_server_name per request."""

    def __init__(self, binary, cert, key):
        self.dir = tempfile.mkdtemp(prefix="castellan-tls-nginx-")
        self.port = free_port()
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        conf = os.path.join(self.dir, "nginx.conf")
        d = self.dir
        _write(conf, f"""
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format tls 'proto=$ssl_protocol sni=$ssl_server_name "$request" $status';
    access_log {self.access_log} tls;
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        return 200 "hello\\n";
    }}
}}
""")
        self.proc = subprocess.Popen([binary, "-c", conf, "-p", d + "/"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, timeout=10.0):
        def up():
            if self.proc.poll() is not None:
                return True
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        wait_for(up, timeout=timeout, interval=0.05)
        return self.proc.poll() is None

    def log_text(self, path):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# Metrics


_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {label: value}, float)] of a Prometheus text page."""
    samples = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(2) or ""))
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        samples.append((match.group(1), labels, value))
    return samples


# ---------------------------------------------------------------------------
# The tests' base


class TlsTestBase(IntegrationTest):
    def start_tls(self, tls, servers, timeouts=None, threads=2, **service_extra):
        """castellan with one tcp-mode service VS on self.port whose tls block is `tls`,
        and an admin API on self.admin_port."""
        self.port = free_port()
        self.admin_port = free_port()
        extra = dict(service_extra)
        if timeouts:
            extra["timeouts"] = timeouts
        service = tcp_service(VS, self.port, servers, tls=tls, **extra)
        self.config = make_config([service], threads=threads, admin={"listen": addr(self.admin_port)})
        return self.start(self.config)

    def terminate(self, certificates=("a",), servers=None, **tls_extra):
        if servers is None:
            servers = [("cas1", self.serve(NamedServer("cas1")).port)]
        tls = {"mode": "terminate", "certificates": [certificate_entry(c) for c in certificates]}
        timeouts = tls_extra.pop("timeouts", None)
        tls.update(tls_extra)
        return self.start_tls(tls, servers, timeouts=timeouts)

    # -- clients

    def tls_connect(self, server_name="a.test", context=None, session=None, port=None):
        """A TLS client connection through castellan, handshake done (cleaned up)."""
        raw = connect_via(port or self.port)
        try:
            tls = (context or client_context()).wrap_socket(raw, server_hostname=server_name, session=session)
        except BaseException:
            raw.close()
            raise
        self.addCleanup(tls.close)
        tls.settimeout(5.0)
        return tls

    def echo_round(self, tls, expect_name="cas1", payload=b"ping\n"):
        """Reads the real server's name line, then checks one echo."""
        self.assertEqual(read_line(tls), expect_name, self.log_tail())
        tls.sendall(payload)
        got = bytearray()
        deadline = time.monotonic() + 5.0
        while len(got) < len(payload) and time.monotonic() < deadline:
            chunk = tls.recv(len(payload) - len(got))
            if not chunk:
                break
            got += chunk
        self.assertEqual(bytes(got), payload, self.log_tail())

    def refused(self, context, server_name="a.test"):
        """Asserts that a handshake with `context` fails (alert, reset or EOF)."""
        raw = connect_via(self.port)
        self.addCleanup(raw.close)
        try:
            tls = context.wrap_socket(raw, server_hostname=server_name)
        except OSError:
            return
        self.addCleanup(tls.close)
        # TLS 1.3: the client's side of the handshake may end before the server's
        # verdict; then a refusal shows on the first read.
        tls.settimeout(5.0)
        try:
            data = tls.recv(1)
        except socket.timeout:
            self.fail("the handshake was neither refused nor served within 5 s" + self.log_tail())
        except OSError:
            return
        self.fail(f"a {tls.version()} handshake was accepted (then read {data!r})" + self.log_tail())

    # -- logs and metrics

    def failures(self, reason=None):
        lines = self.proxy.log_events("tls_handshake_failed")
        return [l for l in lines if reason is None or l.get("reason") == reason]

    def close_lines(self):
        return self.proxy.log_events("close")

    def metrics(self):
        url = f"http://{HOST}:{self.admin_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return parse_metrics(response.read().decode())

    def metric(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels`."""
        return sum(v for n, l, v in self.metrics() if n == name and all(l.get(k) == w for k, w in labels.items()))

    def failure_count(self, reason=None):
        labels = {"virtual_service": VS}
        if reason:
            labels["reason"] = reason
        return self.metric(FAILURE_METRIC, **labels)

    def handshake_count(self, resumed):
        return self.metric(HANDSHAKE_METRIC, virtual_service=VS, resumed="true" if resumed else "false")

    def assert_failure_logged(self, reason, sni=None, count=1):
        """At least `count` tls_handshake_failed lines and counter samples with `reason`."""
        self.assertTrue(wait_for(lambda: len(self.failures(reason)) >= count, timeout=5.0),
                        f"no {count} tls_handshake_failed reason={reason}" + self.log_tail())
        for line in self.failures(reason):
            self.assertEqual(line.get("vs"), VS, line)
            self.assertIn("client", line)
            self.assertIn("sni", line)
            if sni is not None:
                self.assertEqual(line.get("sni"), sni, line)
        self.assertTrue(wait_for(lambda: self.failure_count(reason) >= count, timeout=3.0),
                        f"{FAILURE_METRIC}{{reason={reason}}} < {count}: "
                        + repr([s for s in self.metrics() if s[0] == FAILURE_METRIC]))

    def reload_lines(self):
        return [line for line in self.proxy.stderr_lines() if RELOAD_LINE.search(line)]

    def sighup(self):
        before = len(self.reload_lines())
        self.proxy.signal(signal.SIGHUP)
        lines = wait_for(lambda: self.reload_lines()[before:], timeout=RELOAD_TIMEOUT, interval=0.01)
        self.assertTrue(lines, "no event=reload line after SIGHUP" + self.log_tail())
        event = parse_log_line(lines[0])
        self.assertEqual(event.get("ok"), "true", self.log_tail())
        return event


# ---------------------------------------------------------------------------
# terminate


class TerminateTest(TlsTestBase):
    def test_plain_bytes_reach_the_real_server_and_close_line_has_sni(self):
        self.terminate()
        tls = self.tls_connect("a.test", client_context(check_hostname=True))
        self.assertEqual(tls.getpeercert(binary_form=True), der_of(PKI["a"][0]), "not castellan's certificate")
        # NamedServer is plain TCP: its name and the echo arrive only if castellan
        # decrypted the client's bytes and encrypted the server's.
        self.echo_round(tls)
        tls.close()
        no_sni = self.tls_connect(None, client_context())
        self.echo_round(no_sni)
        no_sni.close()
        self.assertTrue(wait_for(lambda: len(self.close_lines()) >= 2, timeout=5.0), self.log_tail())
        lines = self.close_lines()
        for line in lines:
            for key in ("vs", "client", "server", "bytes_in", "bytes_out", "duration_ms", "reason", "sni"):
                self.assertIn(key, line, line)
            self.assertEqual(line["vs"], VS, line)
            self.assertEqual(line["server"], "cas1", line)
            self.assertGreaterEqual(int(line["bytes_in"]), 5, line)
            self.assertGreaterEqual(int(line["bytes_out"]), 10, line)
        self.assertEqual(sorted(l["sni"] for l in lines), ["-", "a.test"], self.log_tail())
        self.assertTrue(wait_for(lambda: self.handshake_count(resumed=False) >= 2, timeout=3.0),
                        repr([s for s in self.metrics() if s[0] == HANDSHAKE_METRIC]))

    def test_sni_chooses_the_certificate(self):
        # The wildcard comes before the exact x.wild.test: exact still wins.
        self.terminate(certificates=("a", "b", "wild", "x_wild"))
        expected = {
            "b.test": "b",
            "x.wild.test": "x_wild",      # exact preferred over the earlier wildcard
            "y.wild.test": "wild",
            "a.b.wild.test": "a",         # a wildcard covers one label only
            "wild.test": "a",
            "unknown.test": "a",
            "a.test": "a",
            None: "a",                    # no SNI: the first certificate
        }
        for server_name, cert in expected.items():
            with self.subTest(sni=server_name):
                tls = self.tls_connect(server_name, client_context())
                self.assertEqual(tls.getpeercert(binary_form=True), der_of(PKI[cert][0]),
                                 f"SNI {server_name!r} did not get {cert}'s certificate")
                self.echo_round(tls)
                tls.close()
        # b.test's cert file is a chain (leaf + CA): hostname checking against it passes.
        tls = self.tls_connect("b.test", client_context(check_hostname=True))
        self.echo_round(tls)

    def test_default_min_version_refuses_tls11_and_serves_12_and_13(self):
        self.terminate()
        for version in ("1.2", "1.3"):
            with self.subTest(version=version):
                tls = self.tls_connect("a.test", client_context(version))
                self.assertEqual(tls.version(), "TLSv1." + version[-1])
                self.echo_round(tls)
                tls.close()
        old = tls11_context()
        if old is None:
            self.skipTest("this OpenSSL client cannot offer TLS 1.1 (even at SECLEVEL=0)")
        self.refused(old)
        self.assert_failure_logged("version", sni="a.test")
        self.assertTrue(self.proxy.running())
        self.echo_round(self.tls_connect("a.test"))

    def test_min_version_13_refuses_a_tls12_only_client(self):
        self.terminate(min_version="1.3")
        self.refused(client_context("1.2"))
        self.assert_failure_logged("version", sni="a.test")
        tls = self.tls_connect("a.test", client_context())
        self.assertEqual(tls.version(), "TLSv1.3")
        self.echo_round(tls)

    def test_ciphers_and_ciphersuites_are_applied(self):
        self.terminate(ciphers="ECDHE-ECDSA-CHACHA20-POLY1305", ciphersuites="TLS_CHACHA20_POLY1305_SHA256")
        tls12 = self.tls_connect("a.test", client_context("1.2"))
        self.assertEqual(tls12.cipher()[0], "ECDHE-ECDSA-CHACHA20-POLY1305")
        self.echo_round(tls12)
        tls13 = self.tls_connect("a.test", client_context("1.3"))
        self.assertEqual(tls13.cipher()[0], "TLS_CHACHA20_POLY1305_SHA256")
        self.echo_round(tls13)
        no_shared = client_context("1.2")
        no_shared.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        self.refused(no_shared)
        self.assert_failure_logged("cipher")

    def test_client_hello_in_one_byte_records(self):
        self.terminate(certificates=("a", "b"))
        for version in ("1.3", "1.2"):
            with self.subTest(version=version):
                self.one_byte_record_round(version)
        self.assertTrue(wait_for(lambda: len(self.close_lines()) >= 2, timeout=5.0), self.log_tail())
        self.assertEqual([l.get("sni") for l in self.close_lines()], ["b.test", "b.test"], self.log_tail())

    def one_byte_record_round(self, version):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = client_context(version, check_hostname=True).wrap_bio(incoming, outgoing, server_hostname="b.test")
        with self.assertRaises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        records = split_records(hello)
        self.assertTrue(records and all(r[0] == 0x16 for r in records), hello[:16])
        version_bytes = records[0][1]
        payload = b"".join(r[2] for r in records)
        reframed = [bytes([0x16]) + version_bytes + b"\x00\x01" + payload[i:i + 1] for i in range(len(payload))]
        sock = connect_via(self.port)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for record in reframed[:20]:  # a few in TCP segments of their own too
            sock.sendall(record)
            time.sleep(0.002)
        sock.sendall(b"".join(reframed[20:]))

        deadline = time.monotonic() + 10.0

        def pump_in():
            """Moves what castellan sent into the TLS object; False at EOF."""
            if outgoing.pending:
                sock.sendall(outgoing.read())
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("TLS exchange took over 10 s" + self.log_tail())
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                raise AssertionError("castellan closed during the split-hello handshake" + self.log_tail())
            incoming.write(data)

        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump_in()
        if outgoing.pending:
            sock.sendall(outgoing.read())
        self.assertEqual(tls.version(), "TLSv1." + version[-1])
        self.assertEqual(tls.getpeercert(binary_form=True), der_of(PKI["b"][0]))
        tls.write(b"ping\n")
        sock.sendall(outgoing.read())
        got = bytearray()
        while not got.endswith(b"ping\n"):
            try:
                got += tls.read(65536)
            except ssl.SSLWantReadError:
                pump_in()
        self.assertEqual(bytes(got), b"cas1\nping\n")
        sock.close()

    def test_client_renegotiation_is_refused(self):
        self.terminate(servers=[("echo", self.serve(EchoServer()).port)])
        proc = subprocess.Popen(
            ["openssl", "s_client", "-tls1_2", "-connect", addr(self.port), "-servername", "a.test",
             "-CAfile", PKI["ca"][0]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        )
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait(5)))
        output = []
        lock = threading.Lock()

        def collect():
            for line in proc.stdout:
                with lock:
                    output.append(line)

        reader = threading.Thread(target=collect, daemon=True)
        reader.start()

        def text():
            with lock:
                return "".join(output)

        def write(line):
            try:
                proc.stdin.write(line)
                proc.stdin.flush()
                return True
            except (BrokenPipeError, ValueError, OSError):
                return False

        self.assertTrue(write("before\n"))
        self.assertTrue(wait_for(lambda: "\nbefore\n" in text(), timeout=10.0),
                        "the echo never came back before renegotiating:\n" + text()[-2000:] + self.log_tail())
        write("R\n")
        # Refused: s_client reports an error and ends; allowed: a second handshake
        # (its verify lines) and the connection still echoing.
        wait_for(lambda: proc.poll() is not None, timeout=3.0)
        write("after\n")
        time.sleep(0.5)
        try:
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        reader.join(5)
        out = text()
        self.assertIn("RENEGOTIATING", out, out[-2000:])
        after = out.split("RENEGOTIATING", 1)[1]
        self.assertNotIn("verify return", after, "the renegotiation handshake succeeded:\n" + after)
        self.assertNotIn("\nafter\n", after, "the connection went on after the renegotiation:\n" + after)
        self.assertTrue(self.proxy.running(), self.log_tail())
        tls = self.tls_connect("a.test")
        tls.sendall(b"still there\n")
        self.assertEqual(read_line(tls), "still there")


# ---------------------------------------------------------------------------
# session resumption


class SessionResumptionTest(TlsTestBase):
    def new_session(self, context):
        """A session from a full handshake; application data read first so that a
        TLS 1.3 ticket has arrived."""
        tls = self.tls_connect("a.test", context)
        self.assertFalse(tls.session_reused)
        self.echo_round(tls)
        session = tls.session
        tls.close()
        self.assertIsNotNone(session)
        self.assertTrue(session.has_ticket, "castellan sent no session ticket")
        return session

    def assert_resumes(self, context, session):
        tls = self.tls_connect("a.test", context, session=session)
        self.assertTrue(tls.session_reused, f"{tls.version()} session was not resumed" + self.log_tail())
        self.echo_round(tls)
        tls.close()

    def test_tls12_and_tls13_sessions_resume(self):
        self.terminate()
        for version in ("1.2", "1.3"):
            with self.subTest(version=version):
                context = client_context(version)  # a session resumes with the context that made it
                self.assert_resumes(context, self.new_session(context))
        self.assertTrue(wait_for(lambda: self.handshake_count(resumed=True) >= 2, timeout=3.0),
                        repr([s for s in self.metrics() if s[0] == HANDSHAKE_METRIC]))
        self.assertGreaterEqual(self.handshake_count(resumed=False), 2)

    def test_a_tls13_resumption_hands_out_a_new_ticket(self):
        # TLS 1.3 clients use a ticket once (RFC 8446 C.4): a resumed connection
        # must bring a fresh ticket, or every other connection is a full handshake.
        self.terminate()
        context = client_context("1.3")
        session = self.new_session(context)
        for _ in range(3):
            tls = self.tls_connect("a.test", context, session=session)
            self.assertTrue(tls.session_reused, "a ticket from a resumed connection did not resume" + self.log_tail())
            self.echo_round(tls)  # the new ticket arrives after the handshake
            self.assertIsNot(tls.session, session)
            self.assertTrue(tls.session.has_ticket, "no ticket on a resumed TLS 1.3 connection")
            session = tls.session
            tls.close()

    def test_sessions_resume_after_a_reload(self):
        self.terminate()
        contexts = {version: client_context(version) for version in ("1.2", "1.3")}
        sessions = {version: self.new_session(context) for version, context in contexts.items()}
        self.sighup()
        for version, context in contexts.items():
            with self.subTest(version=version):
                self.assert_resumes(context, sessions[version])


# ---------------------------------------------------------------------------
# certificates on reload, config errors


class CertificateReloadTest(TlsTestBase):
    def test_reload_rereads_the_certificate_files(self):
        folder = tempfile.mkdtemp(prefix="castellan-tls-reload-")
        self.addCleanup(shutil.rmtree, folder, True)
        cert, key = os.path.join(folder, "live.pem"), os.path.join(folder, "live.key")
        shutil.copy(PKI["a"][0], cert)
        shutil.copy(PKI["a"][1], key)
        self.start_tls({"mode": "terminate", "certificates": [{"cert": cert, "key": key}]},
                       [("cas1", self.serve(NamedServer("cas1")).port)])
        before = self.tls_connect("a.test", client_context(check_hostname=True))
        self.assertEqual(before.getpeercert(binary_form=True), der_of(PKI["a"][0]))
        self.assertEqual(read_line(before), "cas1")

        new_cert, new_key = make_leaf(folder, "a-v2", "a.test v2", ["DNS:a.test"], PKI["ca"])
        self.assertNotEqual(der_of(new_cert), der_of(cert))
        os.replace(new_key, key)
        os.replace(new_cert, cert)
        self.sighup()

        after = self.tls_connect("a.test", client_context(check_hostname=True))
        self.assertEqual(after.getpeercert(binary_form=True), der_of(cert), "the old certificate after the reload")
        self.echo_round(after)
        # The connection made before the reload goes on.
        before.sendall(b"old\n")
        self.assertEqual(read_line(before), "old")


class ConfigCheckTest(IntegrationTest):
    def check(self, certificates):
        config = make_config([tcp_service(VS, free_port(), [("cas1", free_port())],
                                          tls={"mode": "terminate", "certificates": certificates})])
        with ConfigDir(config) as d:
            return run_cli(["--config", str(d.config_file), "--check"])

    def test_matching_certificates_pass(self):
        result = self.check([certificate_entry("a"), certificate_entry("b")])
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_a_key_that_does_not_match_its_certificate_is_refused(self):
        result = self.check([{"cert": PKI["a"][0], "key": PKI["b"][1]}])
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("/virtual_services/0/tls/certificates/0/key", result.stderr)

    def test_an_unreadable_certificate_is_refused(self):
        folder = tempfile.mkdtemp(prefix="castellan-tls-check-")
        self.addCleanup(shutil.rmtree, folder, True)
        garbage = os.path.join(folder, "garbage.pem")
        _write(garbage, "this is not a certificate\n")
        for name, path in (("missing", os.path.join(folder, "missing.pem")), ("garbage", garbage)):
            with self.subTest(cert=name):
                result = self.check([{"cert": path, "key": PKI["a"][1]}])
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn("/virtual_services/0/tls/certificates/0/cert", result.stderr)
        # A later entry is named by its own index.
        result = self.check([certificate_entry("a"), {"cert": garbage, "key": PKI["b"][1]}])
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("/virtual_services/0/tls/certificates/1/cert", result.stderr)


# ---------------------------------------------------------------------------
# handshake_ms, garbage, descriptors


class HandshakeAbuseTest(TlsTestBase):
    CLIENTS = 1000

    def baseline_fds(self):
        """castellan's descriptor count after one full TLS connection has come and gone."""
        tls = self.tls_connect("a.test")
        self.echo_round(tls)
        tls.close()
        self.assertTrue(wait_for(lambda: self.close_lines(), timeout=5.0), self.log_tail())
        time.sleep(0.2)
        return fd_count(self.proxy.pid)

    def test_silent_clients_are_closed_after_handshake_ms(self):
        self.terminate(timeouts={"handshake_ms": 1000})
        baseline = self.baseline_fds()
        socks, opened = {}, {}
        self.addCleanup(lambda: [s.close() for s in list(socks.values())])
        connect_deadline = time.monotonic() + 20.0
        for _ in range(self.CLIENTS):
            self.assertLess(time.monotonic(), connect_deadline, f"only {len(socks)} connects in 20 s")
            sock = connect_via(self.port)
            sock.setblocking(False)
            socks[sock.fileno()] = sock
            opened[sock.fileno()] = time.monotonic()
        last_connect = time.monotonic()
        poller = select.poll()
        for fd in socks:
            poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        closed_at = {}
        deadline = last_connect + 1.0 + 3.0
        while len(closed_at) < len(socks) and time.monotonic() < deadline:
            for fd, _ in poller.poll(100):
                try:
                    data = socks[fd].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    continue  # an alert, perhaps: wait for the close itself
                closed_at[fd] = time.monotonic()
                poller.unregister(fd)
        self.assertEqual(len(closed_at), self.CLIENTS,
                         f"{self.CLIENTS - len(closed_at)} silent clients still open 3 s after handshake_ms"
                         + self.log_tail())
        earliest = min(closed_at[fd] - opened[fd] for fd in closed_at)
        self.assertGreater(earliest, 0.9, "a silent client was closed before handshake_ms")
        for sock in socks.values():
            sock.close()
        self.assertTrue(wait_for(lambda: self.failure_count("timeout") >= self.CLIENTS, timeout=5.0),
                        repr([s for s in self.metrics() if s[0] == FAILURE_METRIC]))
        self.assertEqual(self.failure_count(), self.CLIENTS)
        self.assertTrue(wait_for(lambda: len(self.failures("timeout")) >= self.CLIENTS, timeout=5.0),
                        f"{len(self.failures('timeout'))} timeout lines" + self.log_tail())
        self.assertEqual(len(self.failures()), self.CLIENTS, "a failure logged more than once")
        self.assertTrue(wait_for(lambda: fd_count(self.proxy.pid) <= baseline, timeout=5.0),
                        f"{fd_count(self.proxy.pid)} descriptors open, {baseline} before")
        self.echo_round(self.tls_connect("a.test"))

    def garbage(self, rng, index):
        """One of: random bytes, plain HTTP, a truncated ClientHello, a TLS record
        header over random bytes."""
        kind = index % 4
        if kind == 0:
            return rng.randbytes(rng.randint(1, 600)), "random"
        if kind == 1:
            return b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "http"
        if kind == 2:
            hello = self.hellos[index % len(self.hellos)]
            return hello[:rng.randint(1, len(hello) - 1)], "truncated"
        body = rng.randbytes(rng.randint(0, 300))
        return bytes([0x16, 0x03, rng.choice([0x01, 0x03])]) + rng.randint(0, 0xFFFF).to_bytes(2, "big") + body, "record"

    def test_garbage_leaves_castellan_healthy_and_its_descriptors_at_baseline(self):
        self.terminate()
        baseline = self.baseline_fds()
        self.hellos = [client_hello_bytes(client_context(v), name)
                       for v in (None, "1.2", "1.3") for name in ("a.test", "b.test", None)]
        rng = random.Random(20261201)
        kinds = {}
        batch = 100
        deadline = time.monotonic() + 30.0
        for start in range(0, self.CLIENTS, batch):
            self.assertLess(time.monotonic(), deadline, "garbage clients took over 30 s")
            socks = []
            try:
                for index in range(start, start + batch):
                    sock = connect_via(self.port)
                    socks.append(sock)
                    data, kind = self.garbage(rng, index)
                    kinds[kind] = kinds.get(kind, 0) + 1
                    try:
                        sock.sendall(data)
                    except OSError:
                        pass  # castellan may already have given up on it
            finally:
                for sock in socks:
                    sock.close()
        self.assertTrue(wait_for(lambda: self.failure_count() >= self.CLIENTS, timeout=10.0),
                        repr([s for s in self.metrics() if s[0] == FAILURE_METRIC]) + self.log_tail())
        self.assertEqual(self.failure_count(), self.CLIENTS, "each garbage client counted once")
        self.assertGreaterEqual(self.failure_count("not_tls"), kinds["http"], "plain HTTP is not_tls")
        known = {"timeout", "closed", "not_tls", "version", "cipher", "protocol", "malformed"}
        reasons = {l.get("reason") for n, l, v in self.metrics() if n == FAILURE_METRIC and v > 0}
        self.assertLessEqual(reasons, known)
        self.assertTrue(wait_for(lambda: len(self.failures()) >= self.CLIENTS, timeout=5.0), self.log_tail())
        self.assertEqual(len(self.failures()), self.CLIENTS, "a failure logged more than once")
        self.assertTrue(wait_for(lambda: fd_count(self.proxy.pid) <= baseline, timeout=5.0),
                        f"{fd_count(self.proxy.pid)} descriptors open, {baseline} before")
        self.assertTrue(self.proxy.running())
        tls = self.tls_connect("a.test", client_context(check_hostname=True))
        self.echo_round(tls)


# ---------------------------------------------------------------------------
# reencrypt


class ReencryptTest(TlsTestBase):
    def reencrypt(self, servers, **upstream):
        tls = {"mode": "reencrypt", "certificates": [certificate_entry("a")], "upstream": upstream}
        return self.start_tls(tls, servers)

    def backend(self, name, cert="backend"):
        return self.serve(TlsBackend(name, *PKI[cert]))

    def connect_failed(self, server):
        return [l for l in self.proxy.log_events("connect_failed") if l.get("server") == server]

    def test_verified_real_server_gets_tls_with_the_upstream_sni(self):
        backend = self.backend("tls1")
        self.reencrypt([("tls1", backend.port)], verify=True, ca=PKI["ca"][0], sni="backend.test")
        tls = self.tls_connect("a.test", client_context(check_hostname=True))
        self.assertEqual(tls.getpeercert(binary_form=True), der_of(PKI["a"][0]), "not castellan's certificate")
        self.echo_round(tls, "tls1")
        tls.close()
        self.assertEqual(backend.handshakes, 1)
        self.assertEqual(backend.server_names, ["backend.test"])
        self.assertTrue(wait_for(lambda: self.close_lines(), timeout=5.0), self.log_tail())
        line = self.close_lines()[0]
        self.assertEqual((line.get("server"), line.get("sni")), ("tls1", "a.test"), line)

    def test_connections_to_a_real_server_resume_its_tls_session(self):
        # One full handshake with the CAS, then resumptions: castellan keeps the
        # last session of each real server (a TLS 1.3 ticket arrives after the
        # handshake, with the first bytes read from it).
        backend = self.backend("tls1")
        self.reencrypt([("tls1", backend.port)], verify=True, ca=PKI["ca"][0], sni="backend.test")
        for _ in range(4):
            tls = self.tls_connect("a.test", client_context(check_hostname=True))
            self.echo_round(tls, "tls1")
            tls.close()
        self.assertTrue(wait_for(lambda: backend.handshakes == 4, timeout=5.0), self.log_tail())
        self.assertFalse(backend.resumed[0])
        self.assertTrue(all(backend.resumed[1:]), f"resumed per handshake: {backend.resumed}" + self.log_tail())

    def test_unverified_upstream_is_the_default(self):
        backend = self.backend("tls1", cert="backend_untrusted")
        self.start_tls({"mode": "reencrypt", "certificates": [certificate_entry("a")]}, [("tls1", backend.port)])
        self.echo_round(self.tls_connect("a.test"), "tls1")
        self.assertEqual(backend.handshakes, 1)

    def test_an_untrusted_real_server_certificate_fails_the_connect(self):
        backend = self.backend("tls1", cert="backend_untrusted")
        self.reencrypt([("tls1", backend.port)], verify=True, ca=PKI["ca"][0], sni="backend.test")
        raw = connect_via(self.port)
        self.addCleanup(raw.close)
        try:
            tls = client_context().wrap_socket(raw, server_hostname="a.test")
            self.addCleanup(tls.close)
            data, how = read_to_end(tls, timeout=5.0)
        except OSError:
            data, how = b"", "handshake refused"
        self.assertEqual(data, b"", "the client got bytes from an unverified real server")
        self.assertNotEqual(how, "timeout", "the client was left hanging")
        self.assertTrue(wait_for(lambda: self.connect_failed("tls1"), timeout=5.0), self.log_tail())

    def test_failover_past_a_plain_tcp_real_server(self):
        plain = self.serve(NamedServer("plain1"))
        good = self.backend("tls2")
        self.reencrypt([("plain1", plain.port), ("tls2", good.port)])
        for _ in range(4):
            tls = self.tls_connect("a.test")
            self.echo_round(tls, "tls2")
            tls.close()
        self.assertTrue(wait_for(lambda: self.connect_failed("plain1"), timeout=5.0), self.log_tail())
        self.assertFalse(self.connect_failed("tls2"), self.log_tail())

    def test_failover_past_an_untrusted_real_server_under_verify(self):
        untrusted = self.backend("tls1", cert="backend_untrusted")
        good = self.backend("tls2")
        self.reencrypt([("tls1", untrusted.port), ("tls2", good.port)], verify=True, ca=PKI["ca"][0],
                       sni="backend.test")
        for _ in range(4):
            tls = self.tls_connect("a.test")
            self.echo_round(tls, "tls2")
            tls.close()
        self.assertTrue(wait_for(lambda: self.connect_failed("tls1"), timeout=5.0), self.log_tail())
        self.assertFalse(self.connect_failed("tls2"), self.log_tail())
        self.assertEqual(untrusted.handshakes, 0)

    def test_nginx_as_the_tls_real_server(self):
        binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
        if not binary:
            self.skipTest("nginx is not installed")
        nginx = Nginx(binary, *PKI["backend"])
        self.addCleanup(nginx.stop)
        self.assertTrue(nginx.wait_ready(), "nginx did not start:\n" + nginx.log_text(nginx.error_log)[-2000:])
        self.reencrypt([("nginx", nginx.port)], verify=True, ca=PKI["ca"][0], sni="backend.test")
        tls = self.tls_connect("a.test", client_context(check_hostname=True))
        tls.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        data, how = read_to_end(tls, timeout=5.0)
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), repr(data[:200]) + self.log_tail())
        self.assertTrue(data.endswith(b"\r\n\r\nhello\n"), repr(data[-200:]))
        logged = wait_for(lambda: nginx.log_text(nginx.access_log), timeout=5.0)
        self.assertRegex(logged, r'proto=TLSv1\.[23] sni=backend\.test "GET / HTTP/1\.1" 200', logged)


if __name__ == "__main__":
    unittest.main()
