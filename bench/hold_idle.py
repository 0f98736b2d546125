#!/usr/bin/env python3
"""Opens COUNT idle TCP connections to HOST:PORT and holds them.

Prints "ready COUNT" (flushed) once every connection is established, then
sleeps until it is sent SIGTERM or SIGINT, and closes them all. The benchmark
uses it to measure a proxy's memory per idle proxied connection.
"""
import resource
import signal
import socket
import sys
import time


def main() -> int:
    if len(sys.argv) != 4:
        print(f"usage: {sys.argv[0]} HOST PORT COUNT", file=sys.stderr)
        return 2
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    stop = False

    def on_signal(_number, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    held = []
    try:
        for _ in range(count):
            held.append(socket.create_connection((host, port), timeout=5))
    except OSError as error:
        print(f"hold_idle: connection {len(held) + 1} of {count} failed: {error}", file=sys.stderr)
        return 1
    print(f"ready {len(held)}", flush=True)
    while not stop:
        time.sleep(0.2)
    for connection in held:
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
