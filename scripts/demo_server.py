#!/usr/bin/env python3
"""A tiny real server for castellan's demo that says who it is.

usage: demo_server.py NAME HOST PORT

Every connection hears which server it reached:
  - a client that starts with an HTTP request (curl) gets an HTTP answer whose
    body names this server;
  - any other client (nc, telnet, a Python one-liner) gets a one-line greeting
    after a short pause, then each line it sends echoed back with the name in
    front, until it closes;
  - a client that shuts its sending side at once (nc </dev/null) gets the
    greeting and the connection is closed; a health check that has already
    gone away costs nothing but a failed send.
"""
import socket
import socketserver
import sys

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ")


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        name, address = self.server.demo_name, self.server.demo_address
        connection: socket.socket = self.request
        connection.settimeout(0.3)
        try:
            first = connection.recv(4096)
        except socket.timeout:
            first = None  # a silent client: greet it
        except OSError:
            return
        try:
            if first is not None and first.startswith(HTTP_METHODS):
                body = f"{name}: hello from demo real server {address}\n".encode()
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                        f"X-Demo-Server: {name}\r\nConnection: close\r\n\r\n").encode()
                connection.sendall(head + (b"" if first.startswith(b"HEAD ") else body))
                return
            connection.sendall(f"{name}: hello from demo real server {address}\r\n".encode())
            if first == b"":
                return  # the client has nothing to say (nc </dev/null; a health check)
            connection.settimeout(300)
            pending = first or b""
            while True:
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    connection.sendall(name.encode() + b": " + line.rstrip(b"\r") + b"\r\n")
                chunk = connection.recv(4096)
                if not chunk:
                    return
                pending += chunk
        except OSError:
            return


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Server((host, port), Handler) as server:
        server.demo_name = name
        server.demo_address = f"{host}:{port}"
        print(f"demo real server {name} listening on {host}:{port}", file=sys.stderr, flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
