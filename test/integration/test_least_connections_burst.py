"""least_connections counts a connection from the moment its connect starts: a burst
of new clients (every Outlook reconnecting after a CAS failover) sees the connects
still in flight, instead of piling onto the server that looked idle when the burst
began. The real servers here take 0.5 s to complete their TLS handshake (a
re-encrypting service connects within that), so the burst's connects overlap."""

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import HOST, IntegrationTest, TcpServer, connect_via, free_port, make_config, tcp_service, wait_for

HANDSHAKE_DELAY = 0.5
HELD = 10
BURST = 20


class SlowTlsServer(TcpServer):
    """A TLS real server that waits before its handshake, then says its name and
    holds the connection open until the client closes."""

    def __init__(self, name, cert, key):
        self.name = name
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        super().__init__()

    def handle(self, conn):
        time.sleep(HANDSHAKE_DELAY)
        conn.settimeout(10.0)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.sendall((self.name + "\n").encode())
                while not self.stopping():
                    try:
                        if not tls.recv(1024):
                            return
                    except socket.timeout:
                        continue
        except (ssl.SSLError, OSError):
            return


class LeastConnectionsBurstTest(IntegrationTest):
    def setUp(self):
        if not shutil.which("openssl"):
            self.skipTest("the openssl command line is not installed")
        folder = tempfile.mkdtemp(prefix="castellan-lc-burst-")
        self.addCleanup(shutil.rmtree, folder, True)
        self.cert, self.key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-days", "1", "-subj", "/CN=cas.test", "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True, timeout=60)
        self.client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client_context.check_hostname = False
        self.client_context.verify_mode = ssl.CERT_NONE

    def set_state(self, admin, server, state):
        connection = http.client.HTTPConnection(HOST, admin, timeout=5)
        try:
            connection.request("POST", f"/api/v1/virtual-services/owa/real-servers/{server}/state",
                               body=f'{{"state": "{state}"}}', headers={"Content-Type": "application/json"})
            self.assertEqual(connection.getresponse().status, 200)
        finally:
            connection.close()

    def open_client(self, port):
        """A client through castellan (TLS to castellan), and the name of its real server."""
        raw = connect_via(port, timeout=10.0)
        tls = self.client_context.wrap_socket(raw, server_hostname="cas.test")
        tls.settimeout(10.0)
        self.addCleanup(tls.close)
        name = b""
        while not name.endswith(b"\n"):
            chunk = tls.recv(64)
            if not chunk:
                break
            name += chunk
        return tls, name.decode().strip()

    def test_a_burst_is_spread_by_the_connects_in_flight(self):
        cas1 = self.serve(SlowTlsServer("cas1", self.cert, self.key))
        cas2 = self.serve(SlowTlsServer("cas2", self.cert, self.key))
        port, admin = free_port(), free_port()
        service = tcp_service("owa", port, [("cas1", cas1.port), ("cas2", cas2.port)], scheduler="least_connections",
                              tls={"mode": "reencrypt", "certificates": [{"cert": self.cert, "key": self.key}]})
        self.start(make_config([service], admin={"listen": f"{HOST}:{admin}"}))

        # cas1 holds HELD long connections; cas2 none.
        self.set_state(admin, "cas2", "disabled")
        held = [self.open_client(port) for _ in range(HELD)]
        self.assertEqual({name for _, name in held}, {"cas1"})
        self.set_state(admin, "cas2", "enabled")

        # BURST clients at once: counted from their connect's start, the first
        # HELD go to cas2 and the rest alternate; counted only once connected,
        # every one of them would see cas2 at 0 and go there.
        names, lock = [], threading.Lock()

        def one():
            try:
                _, name = self.open_client(port)
            except OSError as error:
                name = f"error: {error}"
            with lock:
                names.append(name)

        threads = [threading.Thread(target=one) for _ in range(BURST)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20.0)
        self.assertEqual(len(names), BURST, names)
        counts = {name: names.count(name) for name in set(names)}
        self.assertEqual(set(counts), {"cas1", "cas2"}, f"{counts}" + self.log_tail())
        # Balanced would be cas1 5, cas2 15; allow for clients that arrive after
        # earlier connects have completed.
        self.assertGreaterEqual(counts["cas1"], 3, f"the burst piled onto cas2: {counts}")
        self.assertLessEqual(counts["cas2"], 17, f"the burst piled onto cas2: {counts}")


if __name__ == "__main__":
    unittest.main()
