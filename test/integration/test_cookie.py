"""Cookie persistence in http mode: a client keeping its cookie jar stays on one real
server, clients without cookies are balanced, a forged or expired cookie is replaced,
the cookie names no address, and two castellan processes given one cookie_secret_file
honour each other's cookies (an HA pair needs no state sync)."""

import http.client
import os
import re
import shutil
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import HOST, IntegrationTest, Castellan, free_port, make_config, tcp_service

COOKIE = "CASTELLAN"


class NamedHttpServer:
    """An HTTP/1.1 server on 127.0.0.1 answering every GET with its own name."""

    def __init__(self, name):
        server_name = name

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = (server_name + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.name = name
        self.httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def get(port, cookie=None, timeout=5.0):
    """One GET on a fresh connection: (server name, the Set-Cookie value or None)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
        connection.request("GET", "/owa/", headers=headers)
        response = connection.getresponse()
        body = response.read().decode().strip()
        set_cookie = response.getheader("Set-Cookie")
        value = None
        if set_cookie:
            match = re.match(rf"{COOKIE}=([^;]*)", set_cookie)
            value = match.group(1) if match else None
        return body, value, set_cookie
    finally:
        connection.close()


class CookieTest(IntegrationTest):
    def setUp(self):
        self.servers = []
        for name in ("cas1", "cas2", "cas3"):
            server = NamedHttpServer(name)
            self.addCleanup(server.stop)
            self.servers.append(server)
        self.folder = tempfile.mkdtemp(prefix="castellan-cookie-")
        self.addCleanup(shutil.rmtree, self.folder, True)

    def service(self, port, **persistence):
        return tcp_service("owa", port, [(s.name, s.port) for s in self.servers], mode="http",
                           persistence={"type": "cookie", **persistence})

    def test_a_cookie_jar_keeps_a_client_on_one_server_and_cookie_less_clients_are_balanced(self):
        port = free_port()
        self.start(make_config([self.service(port, timeout_s=600)]))
        name, cookie, header = get(port)
        self.assertIsNotNone(cookie, "no Set-Cookie on the first response")
        self.assertIn("HttpOnly", header)
        self.assertIn("Path=/", header)
        self.assertIn("Max-Age=600", header)
        self.assertIn("Expires=", header)
        self.assertNotIn("Secure", header)  # plain HTTP
        for _ in range(20):
            again, update, _ = get(port, cookie)
            self.assertEqual(again, name)
            self.assertIsNone(update, "a valid, fresh cookie was replaced")
        seen = {get(port)[0] for _ in range(12)}
        self.assertEqual(seen, {"cas1", "cas2", "cas3"}, "clients without a cookie are not balanced")

    def test_the_cookie_names_no_address_or_port(self):
        port = free_port()
        self.start(make_config([self.service(port)]))
        _, cookie, header = get(port)
        for server in self.servers:
            self.assertNotIn(str(server.port), cookie)
        self.assertNotIn("127.0.0.1", cookie)
        self.assertNotIn("Max-Age", header, "a cookie without timeout_s is a session cookie")

    def test_a_tampered_or_foreign_cookie_is_replaced_and_the_request_served(self):
        port = free_port()
        self.start(make_config([self.service(port)]))
        name, cookie, _ = get(port)
        server_field, expiry, mac = cookie.split(".")
        forged = ".".join([server_field, expiry, ("A" if mac[0] != "A" else "B") + mac[1:]])
        for bad in (forged, "garbage", cookie + "x", "Y2FzMg.-.AAAAAAAAAAAAAAAAAAAAAA"):
            served, replacement, _ = get(port, bad)
            self.assertIn(served, {"cas1", "cas2", "cas3"})
            self.assertIsNotNone(replacement, f"{bad!r} was not replaced")
            self.assertNotEqual(replacement, bad)
        self.assertEqual(get(port, cookie)[0], name, "the genuine cookie stopped working")

    def test_a_cookie_for_a_disabled_server_moves_the_client(self):
        port = free_port()
        admin = free_port()
        self.start(make_config([self.service(port)], admin={"listen": f"{HOST}:{admin}"}))
        name, cookie, _ = get(port)
        connection = http.client.HTTPConnection(HOST, admin, timeout=5)
        connection.request("POST", f"/api/v1/virtual-services/owa/real-servers/{name}/state",
                           body='{"state": "disabled"}', headers={"Content-Type": "application/json"})
        self.assertEqual(connection.getresponse().status, 200)
        connection.close()
        moved, replacement, _ = get(port, cookie)
        self.assertNotEqual(moved, name)
        self.assertIsNotNone(replacement)
        self.assertEqual(get(port, replacement)[0], moved)

    def test_two_castellans_with_one_secret_file_honour_each_others_cookies(self):
        secret = os.path.join(self.folder, "cookie.secret")
        with open(secret, "w") as out:
            out.write("an HA pair's shared secret\n")
        first_port, second_port = free_port(), free_port()
        self.start(make_config([self.service(first_port, cookie_secret_file=secret)]))
        second = Castellan(make_config([self.service(second_port, cookie_secret_file=secret)]))
        second.start()
        self.addCleanup(second.stop)
        for _ in range(6):
            name, cookie, _ = get(first_port)
            served, update, _ = get(second_port, cookie)
            self.assertEqual(served, name, "the second castellan did not honour the first one's cookie")
            self.assertIsNone(update)

        # Without the shared secret (a random one each), the cookie means nothing.
        third_port = free_port()
        third = Castellan(make_config([self.service(third_port)]))
        third.start()
        self.addCleanup(third.stop)
        _, cookie, _ = get(first_port)
        self.assertIsNotNone(get(third_port, cookie)[1], "a cookie under another secret was honoured")


if __name__ == "__main__":
    unittest.main()
