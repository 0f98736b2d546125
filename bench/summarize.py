#!/usr/bin/env python3
"""Turns the raw results of bench/run.sh into the summary table.

Input: a tab-separated file with lines of three kinds:
  meta    KEY     VALUE                          a line of the header
  result  METRIC  TARGET  ROUND  VALUE           one measurement
  rss     TARGET  BEFORE_KB  AFTER_KB  COUNT     memory for COUNT idle connections

Prints, per metric, the median and the spread (min-max) of each target, and for
each castellan variant the ratio of its median to HAProxy's. A ratio whose two
ranges overlap is marked as parity: the difference is inside the noise.
"""
import statistics
import sys

# name: (label, unit, higher is better, decimals)
METRICS = {
    "tput_up": ("bulk throughput, client to server", "Gbit/s", True, 2),
    "tput_down": ("bulk throughput, server to client", "Gbit/s", True, 2),
    "conn_rate": ("new connections per second", "conn/s", True, 0),
    "conn_p50": ("connection time, median", "us", False, 0),
    "conn_p99": ("connection time, 99th percentile", "us", False, 0),
    "conn_cpu": ("proxy CPU time per connection", "us", False, 1),
}
TARGET_ORDER = ["direct", "haproxy", "castellan", "castellan-copy", "castellan-splice"]


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
            elif fields[0] == "rss" and len(fields) == 5:
                rss[fields[1]] = (int(fields[2]), int(fields[3]), int(fields[4]))

    for key, value in meta:
        print(f"{key + ':':<14} {value}")
    print()

    targets = sorted({t for per in results.values() for t in per},
                     key=lambda t: TARGET_ORDER.index(t) if t in TARGET_ORDER else len(TARGET_ORDER))
    castellans = [t for t in targets if t.startswith("castellan")]
    header = ["metric"] + [f"{t} median (min-max)" for t in targets]
    header += [f"{c}/haproxy" for c in castellans if "haproxy" in targets]
    rows = []
    for metric, (label, unit, higher_better, decimals) in METRICS.items():
        per = results.get(metric)
        if not per:
            continue
        row = [f"{label} ({unit}{'' if higher_better else ', lower is better'})"]
        for target in targets:
            values = per.get(target)
            if not values:
                row.append("-")
                continue
            row.append(f"{fmt(statistics.median(values), decimals)} "
                       f"({fmt(min(values), decimals)}-{fmt(max(values), decimals)})")
        if "haproxy" in targets:
            for castellan in castellans:
                ours, theirs = per.get(castellan), per.get("haproxy")
                if not ours or not theirs or statistics.median(theirs) == 0:
                    row.append("-")
                    continue
                ratio = statistics.median(ours) / statistics.median(theirs)
                overlap = min(ours) <= max(theirs) and min(theirs) <= max(ours)
                row.append(f"{ratio:.2f}x" + (" (ranges overlap: parity)" if overlap else ""))
        rows.append(row)

    if rows:
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
        print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in rows:
            print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    else:
        print("(no throughput or connection-rate results)")

    if rss:
        print()
        print("Memory per idle proxied connection (VmRSS of the proxy process, before and after):")
        for target in sorted(rss, key=lambda t: TARGET_ORDER.index(t) if t in TARGET_ORDER else 99):
            before, after, count = rss[target]
            per_connection = (after - before) * 1024 / count if count else 0
            print(f"  {target:<17} {per_connection:8.0f} bytes per connection "
                  f"({before} kB -> {after} kB for {count} connections; kernel socket buffers not included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
