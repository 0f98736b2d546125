"""TLS passthrough (tls.mode "passthrough"): castellan reads the ClientHello for its
SNI, logs it on the close line, and passes every byte on untouched, so the client
completes its handshake with the real server's own certificate."""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import (
    HOST,
    IntegrationTest,
    TcpServer,
    addr,
    connect_via,
    free_port,
    make_config,
    read_to_end,
    tcp_service,
    wait_for,
)

SNI = "mail.contoso.com"


def make_certificate(folder, common_name):
    """A throwaway self-signed certificate and key for `common_name`: (cert, key) paths."""
    cert, key = os.path.join(folder, common_name + ".pem"), os.path.join(folder, common_name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=" + common_name,
         "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


class TlsNamedServer(TcpServer):
    """A TLS server that says its name once the handshake is done, then echoes."""

    def __init__(self, name, cert, key):
        self.name = name
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.handshakes = 0
        super().__init__()

    def handle(self, conn):
        conn.settimeout(5.0)
        with self.context.wrap_socket(conn, server_side=True) as tls:
            with self._lock:
                self.handshakes += 1
            tls.sendall((self.name + "\n").encode())
            while not self.stopping():
                try:
                    data = tls.recv(65536)
                except (socket.timeout, ssl.SSLError, OSError):
                    return
                if not data:
                    return
                tls.sendall(data)


def client_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def client_hello_bytes(server_name):
    """The ClientHello Python's TLS client sends first, taken from a memory BIO."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context().wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class PassthroughTest(IntegrationTest):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("openssl is not installed")
        cls.folder = tempfile.mkdtemp(prefix="castellan-passthrough-")
        cls.certs = {name: make_certificate(cls.folder, name) for name in ("cas1.contoso.com", "cas2.contoso.com")}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.folder, ignore_errors=True)

    def start_passthrough(self, **extra):
        self.servers = {
            name: self.serve(TlsNamedServer(name.split(".")[0], *self.certs[name])) for name in self.certs
        }
        self.port = free_port()
        service = tcp_service(
            "cas-https", self.port,
            [(name.split(".")[0], server.port) for name, server in self.servers.items()],
            tls={"mode": "passthrough"}, **extra,
        )
        self.start(make_config([service]))

    def tls_round(self, server_name=SNI):
        """(real server's name as it said it, its certificate's CN) over TLS through castellan."""
        raw = connect_via(self.port)
        with client_context().wrap_socket(raw, server_hostname=server_name) as tls:
            tls.settimeout(5.0)
            name = tls.recv(64).decode().strip()
            tls.sendall(b"ping\n")
            self.assertEqual(tls.recv(64), b"ping\n")
            der = tls.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der)
        subject = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True,
                                 text=True, timeout=10).stdout
        return name, subject

    def close_lines(self):
        return self.proxy.log_events("close")

    def test_handshake_reaches_the_real_server_and_sni_is_logged(self):
        self.start_passthrough()
        seen = set()
        for _ in range(4):
            name, subject = self.tls_round()
            # The certificate is the real server's own: castellan took no part in the TLS.
            self.assertIn(f"CN = {name}.contoso.com", subject)
            seen.add(name)
        self.assertEqual(seen, {"cas1", "cas2"})
        self.assertTrue(wait_for(lambda: len(self.close_lines()) == 4, timeout=3.0), self.log_tail())
        for line in self.close_lines():
            self.assertEqual(line.get("sni"), SNI, line)
            self.assertEqual(line.get("reason"), "closed", line)
            self.assertGreater(int(line.get("bytes_in", "0")), 100, line)  # the ClientHello counted too

    def test_openssl_s_client_gets_the_real_servers_certificate(self):
        self.start_passthrough()
        result = subprocess.run(
            ["openssl", "s_client", "-connect", addr(self.port), "-servername", "owa.contoso.com", "-brief"],
            input="", capture_output=True, text=True, timeout=20,
        )
        output = result.stdout + result.stderr
        self.assertRegex(output, r"CN ?= ?cas[12]\.contoso\.com", output)
        self.assertTrue(wait_for(lambda: self.close_lines(), timeout=3.0), self.log_tail())
        self.assertEqual(self.close_lines()[0].get("sni"), "owa.contoso.com", self.log_tail())

    def test_client_hello_in_one_byte_segments(self):
        self.start_passthrough()
        hello = client_hello_bytes("slow.contoso.com")
        self.assertGreater(len(hello), 100)
        with connect_via(self.port) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(0, 40):
                sock.sendall(hello[i:i + 1])
                time.sleep(0.002)
            sock.sendall(hello[40:])
            # The real server answers the hello: castellan passed it on whole.
            sock.settimeout(5.0)
            self.assertTrue(sock.recv(5), "no ServerHello came back" + self.log_tail())
        self.assertTrue(wait_for(lambda: self.close_lines(), timeout=3.0), self.log_tail())
        self.assertEqual(self.close_lines()[0].get("sni"), "slow.contoso.com", self.log_tail())

    def test_no_sni_is_logged_as_a_dash(self):
        self.start_passthrough()
        raw = connect_via(self.port)
        with client_context().wrap_socket(raw) as tls:  # no server_hostname: no SNI
            tls.settimeout(5.0)
            self.assertIn(tls.recv(64).decode().strip(), ("cas1", "cas2"))
        self.assertTrue(wait_for(lambda: self.close_lines(), timeout=3.0), self.log_tail())
        self.assertEqual(self.close_lines()[0].get("sni"), "-", self.log_tail())

    def test_plain_http_is_closed_and_logged(self):
        self.start_passthrough()
        with connect_via(self.port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: mail.contoso.com\r\n\r\n")
            data, how = read_to_end(sock, timeout=3.0)
        self.assertEqual(data, b"")
        failed = lambda: self.proxy.log_events("tls_handshake_failed")
        self.assertTrue(wait_for(failed, timeout=3.0), self.log_tail())
        self.assertEqual(failed()[0].get("reason"), "not_tls", self.log_tail())
        self.assertEqual(sum(s.connections for s in self.servers.values()), 0, "a real server got the connection")

    def test_silent_client_is_closed_after_handshake_ms(self):
        self.start_passthrough(timeouts={"handshake_ms": 400})
        with connect_via(self.port) as sock:
            started = time.monotonic()
            data, how = read_to_end(sock, timeout=5.0)
            elapsed = time.monotonic() - started
        self.assertEqual(data, b"")
        self.assertGreater(elapsed, 0.3)
        self.assertLess(elapsed, 3.0)
        failed = lambda: self.proxy.log_events("tls_handshake_failed")
        self.assertTrue(wait_for(failed, timeout=3.0), self.log_tail())
        self.assertEqual(failed()[0].get("reason"), "timeout", self.log_tail())


if __name__ == "__main__":
    unittest.main()
