#!/usr/bin/python3
"""A test server for the network-namespace tests: it says who it is and whom it sees.

Run inside a namespace (`ip netns exec NS python3 netns_peer_server.py NAME
--tcp-port P --http-port Q`). On the tcp port it greets each connection with
"NAME PEER_ADDRESS\\n" and then echoes what it gets; on the http port it answers
every HTTP/1.1 request of a connection with 200 and the body "NAME PEER_ADDRESS\\n"
(keep-alive). Each accepted connection is also printed on stdout as
"accepted PORT PEER_ADDRESS", after a first line "ready" once both ports listen:
the test reads who connected (a client through castellan, or castellan's own
health check). It exits on SIGTERM or after --lifetime seconds, whichever comes first.
"""

import argparse
import os
import signal
import socket
import sys
import threading

RECV_TIMEOUT = 30.0


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve_tcp(conn, name, peer):
    conn.sendall(f"{name} {peer}\n".encode())
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def serve_http(conn, name, peer):
    pending = b""
    while True:
        while b"\r\n\r\n" not in pending:
            data = conn.recv(65536)
            if not data:
                return
            pending += data
        _, pending = pending.split(b"\r\n\r\n", 1)
        body = f"{name} {peer}\n".encode()
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)


def accept_loop(listener, port, handler, name):
    while True:
        try:
            conn, peer = listener.accept()
        except OSError:
            return
        say(f"accepted {port} {peer[0]}")
        threading.Thread(target=run_one, args=(conn, handler, name, peer[0]), daemon=True).start()


def run_one(conn, handler, name, peer):
    try:
        conn.settimeout(RECV_TIMEOUT)
        handler(conn, name, peer)
    except OSError:
        pass
    finally:
        conn.close()


def listen(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", port))
    sock.listen(128)
    return sock


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--tcp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--lifetime", type=float, default=300.0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    for port, handler in ((args.tcp_port, serve_tcp), (args.http_port, serve_http)):
        threading.Thread(target=accept_loop, args=(listen(port), port, handler, args.name), daemon=True).start()
    say("ready")
    threading.Event().wait(args.lifetime)
    os._exit(0)


if __name__ == "__main__":
    main()
