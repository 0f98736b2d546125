#!/usr/bin/env python3
"""Turns the raw results of bench/run.sh into the summary table.

Input: a tab-separated file with lines of three kinds:
  meta    KEY     VALUE                          a line of the header
  result  METRIC  TARGET  ROUND  VALUE           one measurement
  rss     TARGET  BEFORE_KB  AFTER_KB  COUNT     memory for COUNT idle connections
  rss_tls TARGET  BEFORE_KB  AFTER_KB  COUNT     the same for idle TLS connections

Prints, per metric, the median and the spread (min-max) of each target, and for
each castellan variant the ratio of its median to HAProxy's (and to nginx's,
for the http case, where nginx is a target too). A ratio whose two ranges
overlap is marked as parity: the difference is inside the noise. Some figures
only describe a run (the proxy's CPU use, the tickets it sent): they get no
ratio. The tcp and tls figures make one table, the http case's another, each
with the targets that have figures in it.
"""
import statistics
import sys

# name: (label, unit, higher is better (None: no ratio), decimals)
METRICS = {
    "tput_up": ("bulk throughput, client to server", "Gbit/s", True, 2),
    "tput_down": ("bulk throughput, server to client", "Gbit/s", True, 2),
    "conn_rate": ("new connections per second", "conn/s", True, 0),
    "conn_p50": ("connection time, median", "us", False, 0),
    "conn_p99": ("connection time, 99th percentile", "us", False, 0),
    "conn_cpu": ("proxy CPU time per connection", "us", False, 1),
    "tls_hs_rate": ("TLS full handshakes per second", "conn/s", True, 0),
    "tls_hs_p50": ("TLS full handshake connection time, median", "us", False, 0),
    "tls_hs_p99": ("TLS full handshake connection time, 99th percentile", "us", False, 0),
    "tls_hs_cpu": ("proxy CPU time per TLS full handshake", "us", False, 1),
    "tls_hs_busy": ("proxy CPU use during TLS full handshakes (under ~95: the client was the limit)", "%", None, 0),
    "tls_hs_tickets": ("TLS tickets sent per full handshake", "tickets", None, 2),
    "tls_res_rate": ("TLS resumed handshakes per second (one ticket reused)", "conn/s", True, 0),
    "tls_res_p50": ("TLS resumed connection time, median", "us", False, 0),
    "tls_res_p99": ("TLS resumed connection time, 99th percentile", "us", False, 0),
    "tls_res_cpu": ("proxy CPU time per TLS resumed handshake", "us", False, 1),
    "tls_res_busy": ("proxy CPU use during TLS resumptions", "%", None, 0),
    "tls_res_tickets": ("TLS tickets sent per resumed handshake", "tickets", None, 2),
    "tls_res_missed": ("TLS resumptions refused (full handshake instead)", "conn", None, 0),
    "tls_su_rate": ("TLS connections per second, single-use tickets (browser-like)", "conn/s", True, 0),
    "tls_su_resumed": ("share of those that resumed", "%", True, 0),
    "tls_su_cpu": ("proxy CPU time per connection, single-use tickets", "us", False, 1),
    "tls_tput": ("TLS echo throughput, each way", "MB/s", True, 0),
    "tls_tput_cpu": ("proxy CPU time per MB of TLS echo", "us/MB", False, 0),
    "tls_tput_busy": ("proxy CPU use during TLS echo", "%", None, 0),
}
# The http case (bench/run.sh http): http_* plain, https_* over TLS.
HTTP_METRICS = {}
for scheme, over in (("http", ""), ("https", " over TLS")):
    HTTP_METRICS.update({
        f"{scheme}_ka_rate": (f"HTTP{over} keep-alive requests per second, small response", "req/s", True, 0),
        f"{scheme}_ka_per_cpu": (f"HTTP{over} keep-alive requests per second of proxy CPU", "req/CPU-s", True, 0),
        f"{scheme}_ka_cpu": (f"HTTP{over} proxy CPU time per keep-alive request", "us", False, 2),
        f"{scheme}_ka_p50": (f"HTTP{over} keep-alive request time, median", "us", False, 0),
        f"{scheme}_ka_p99": (f"HTTP{over} keep-alive request time, 99th percentile", "us", False, 0),
        f"{scheme}_ka_busy": (f"HTTP{over} proxy CPU use, keep-alive (under ~95: the load side was the limit)",
                              "%", None, 0),
        f"{scheme}_close_rate": (f"HTTP{over} connection per request (Connection: close), requests per second",
                                 "req/s", True, 0),
        f"{scheme}_close_per_cpu": (f"HTTP{over} connection per request, requests per second of proxy CPU",
                                    "req/CPU-s", True, 0),
        f"{scheme}_close_cpu": (f"HTTP{over} proxy CPU time per connection and request", "us", False, 1),
        f"{scheme}_close_busy": (f"HTTP{over} proxy CPU use, connection per request", "%", None, 0),
        f"{scheme}_big_tput": (f"HTTP{over} 1 MiB responses, throughput", "MiB/s", True, 0),
        f"{scheme}_big_cpu": (f"HTTP{over} proxy CPU time per MiB of 1 MiB responses", "us/MiB", False, 0),
        f"{scheme}_big_busy": (f"HTTP{over} proxy CPU use, 1 MiB responses", "%", None, 0),
    })
TARGET_ORDER = ["direct", "haproxy", "nginx", "castellan", "castellan-copy", "castellan-splice"]
REFERENCES = ["haproxy", "nginx"]  # what castellan's ratios are taken against


def target_key(target: str) -> int:
    return TARGET_ORDER.index(target) if target in TARGET_ORDER else len(TARGET_ORDER)


def print_table(metrics: dict, results: dict[str, dict[str, list[float]]]) -> bool:
    """Prints one table of METRICS' figures found in RESULTS, with a column per
    target that has one of them and castellan's ratios; False when none is there."""
    present = {metric: results[metric] for metric in metrics if results.get(metric)}
    if not present:
        return False
    targets = sorted({t for per in present.values() for t in per}, key=target_key)
    castellans = [t for t in targets if t.startswith("castellan")]
    references = [r for r in REFERENCES if r in targets]
    header = ["metric"] + [f"{t} median (min-max)" for t in targets]
    header += [f"{c}/{r}" for r in references for c in castellans]
    rows = []
    for metric, per in present.items():
        label, unit, higher_better, decimals = metrics[metric]
        row = [f"{label} ({unit}{', lower is better' if higher_better is False else ''})"]
        for target in targets:
            values = per.get(target)
            if not values:
                row.append("-")
                continue
            row.append(f"{fmt(statistics.median(values), decimals)} "
                       f"({fmt(min(values), decimals)}-{fmt(max(values), decimals)})")
        for reference in references:
            for castellan in castellans:
                ours, theirs = per.get(castellan), per.get(reference)
                if higher_better is None or not ours or not theirs or statistics.median(theirs) == 0:
                    row.append("-")
                    continue
                ratio = statistics.median(ours) / statistics.median(theirs)
                overlap = min(ours) <= max(theirs) and min(theirs) <= max(ours)
                row.append(f"{ratio:.2f}x" + (" (ranges overlap: parity)" if overlap else ""))
        rows.append(row)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    return True


def fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} RESULTS.tsv", file=sys.stderr)
        return 2
    meta = []
    results: dict[str, dict[str, list[float]]] = {}
    rss = {}
    with open(sys.argv[1], encoding="utf-8") as file:
        for line in file:
            fields = line.rstrip("\n").split("\t")
            if fields[0] == "meta" and len(fields) == 3:
                meta.append((fields[1], fields[2]))
            elif fields[0] == "result" and len(fields) == 5:
                try:
                    value = float(fields[4])
                except ValueError:
                    continue  # a failed measurement is recorded as "failed"
                results.setdefault(fields[1], {}).setdefault(fields[2], []).append(value)
            elif fields[0] in ("rss", "rss_tls") and len(fields) == 5:
                rss.setdefault(fields[0], {})[fields[1]] = (int(fields[2]), int(fields[3]), int(fields[4]))

    for key, value in meta:
        print(f"{key + ':':<14} {value}")
    print()

    printed = print_table(METRICS, results)
    if HTTP_METRICS.keys() & results.keys():
        if printed:
            print()
        print("HTTP (mode http; castellan, HAProxy and nginx in front of one nginx origin):")
        printed = print_table(HTTP_METRICS, results) or printed
    if not printed:
        print("(no throughput or connection-rate results)")

    titles = {
        "rss": "Memory per idle proxied connection (VmRSS of the proxy process, before and after):",
        "rss_tls": "Memory per idle TLS connection (handshake and one echo done, real-server connection open):",
    }
    for kind, title in titles.items():
        if kind not in rss:
            continue
        print()
        print(title)
        per_target = {}
        for target in sorted(rss[kind], key=target_key):
            before, after, count = rss[kind][target]
            per_connection = (after - before) * 1024 / count if count else 0
            per_target[target] = per_connection
            print(f"  {target:<17} {per_connection:8.0f} bytes per connection "
                  f"({before} kB -> {after} kB for {count} connections; kernel socket buffers not included)")
        for target, per_connection in per_target.items():
            if target.startswith("castellan") and per_target.get("haproxy", 0) > 0:
                print(f"  {target}/haproxy: {per_connection / per_target['haproxy']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
