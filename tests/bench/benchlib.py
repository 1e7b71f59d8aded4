#!/usr/bin/env python3
"""Helpers for tests/bench/compare.sh: free ports, /proc figures of a process tree,
query files, dnsperf output parsing, and the report (table, ratios, markdown, chart).

Standard library only. Every subcommand is small and bounded; see `compare.sh`.
"""

import argparse
import os
import random
import re
import socket
import subprocess
import sys

# Column order of the chart and of the report (servers not run are skipped).
SERVERS = ["names", "unbound", "dnsmasq", "nsd", "reflector"]
WORKLOADS = ["CACHE-HIT", "FORWARD-MISS", "SYNTH", "ZONE", "LIMIT", "RECURSE-COLD", "RECURSE-WARM"]
FIELDS = [
    "server", "workload", "threads", "qps", "cpu_us", "latency_us", "lost_pct",
    "noerror_pct", "peak_rss_kib", "answers", "cpu_s",
]


# ---------------------------------------------------------------- /proc

def _children_map():
    """ppid -> [pid] for every process now alive."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        kids.setdefault(int(rest[1]), []).append(int(entry))
    return kids


def tree(pid):
    """`pid` and all its descendants (NSD forks its servers; the others are one process)."""
    kids = _children_map()
    out, todo = [], [pid]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def ticks(pid):
    """utime + stime of the tree, in clock ticks (all threads, as /proc/PID/stat counts them)."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After "comm)": state is field 3, so utime (14) and stime (15) are rest[11], rest[12].
        total += int(rest[11]) + int(rest[12])
    return total


def status_kib(pid, key):
    """Sum over the tree of a `/proc/PID/status` field in kB (VmRSS, VmHWM)."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def reset_peak(pid):
    """Resets VmHWM of the tree to the current RSS (`echo 5 > /proc/PID/clear_refs`, Linux 4.0+),
    so a row's peak RSS is that row's, not the process's lifetime peak."""
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


# ---------------------------------------------------------------- ports

def free_ports(base, count):
    """`count` ports from `base` up that are free for UDP and TCP on 127.0.0.1."""
    found = []
    for port in range(base, min(base + 2000, 65536)):
        ok = True
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            found.append(port)
            if len(found) == count:
                return found
    sys.exit(f"benchlib: fewer than {count} free ports from {base}")


# ---------------------------------------------------------------- query files

def write_queries(kind, count, path, tag=""):
    """dnsperf input, one `NAME TYPE` a line.

    cache: c0..c{n-1}.bench.test (the wildcard answers them upstream);
    zone: host0..host{n-1}.bench.test (explicit records of bench.test.zone);
    synth: workstation0..255.synth.example, repeated (outside bench.test, so a zone never owns them);
    miss: names never asked before: a random run tag and a counter under bench.test;
    mem: m0..m{n-1}.bench.test.
    """
    rnd = random.Random()
    run = tag or "%08x" % rnd.getrandbits(32)
    with open(path, "w") as f:
        for i in range(count):
            if kind == "cache":
                name = f"c{i}.bench.test"
            elif kind == "zone":
                name = f"host{i}.bench.test"
            elif kind == "synth":
                name = f"workstation{i % 256}.synth.example"
            elif kind == "miss":
                name = f"{run}-{i}.bench.test"
            elif kind == "mem":
                name = f"m{i}.{run}.bench.test"
            else:
                sys.exit(f"benchlib: unknown query kind {kind}")
            f.write(f"{name} A\n")


# ---------------------------------------------------------------- dnsperf

def parse_dnsperf(text):
    """Completed, lost %, QPS, mean latency (us), NOERROR % from dnsperf's summary."""

    def grab(pattern, default=None):
        m = re.search(pattern, text, re.M)
        return m.group(1) if m else default

    completed = int(grab(r"^\s*Queries completed:\s+(\d+)", "0"))
    sent = int(grab(r"^\s*Queries sent:\s+(\d+)", "0"))
    lost = int(grab(r"^\s*Queries lost:\s+(\d+)", "0"))
    qps = float(grab(r"^\s*Queries per second:\s+([\d.]+)", "0"))
    latency = float(grab(r"^\s*Average Latency \(s\):\s+([\d.]+)", "0")) * 1e6
    noerror = int(grab(r"NOERROR (\d+)", "0"))
    return {
        "answers": completed,
        "lost_pct": 100.0 * lost / sent if sent else 100.0,
        "qps": qps,
        "latency_us": latency,
        "noerror_pct": 100.0 * noerror / completed if completed else 0.0,
    }


def row(args):
    with open(args.dnsperf_out) as f:
        r = parse_dnsperf(f.read())
    clk = os.sysconf("SC_CLK_TCK")
    cpu_s = (args.ticks1 - args.ticks0) / clk
    r.update(
        server=args.server,
        workload=args.workload,
        threads=args.threads,
        cpu_s=cpu_s,
        cpu_us=1e6 * cpu_s / r["answers"] if r["answers"] else float("nan"),
        peak_rss_kib=args.hwm,
    )
    with open(args.tsv, "a") as f:
        f.write("\t".join(str(r[k]) for k in FIELDS) + "\n")
    print(
        f"  {args.server:9} {args.workload:12} t={args.threads} "
        f"qps={r['qps']:.0f} cpu={r['cpu_us']:.2f}us/answer lat={r['latency_us']:.0f}us "
        f"lost={r['lost_pct']:.2f}% noerror={r['noerror_pct']:.1f}%",
        flush=True,
    )
    if r["answers"] and r["noerror_pct"] < 99.0:
        print(f"  WARNING: {args.server} {args.workload}: only {r['noerror_pct']:.1f}% NOERROR", flush=True)


# ---------------------------------------------------------------- report

def load_rows(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(FIELDS):
                continue
            r = dict(zip(FIELDS, parts))
            for k in FIELDS[3:]:
                r[k] = float(r[k])
            r["threads"] = int(r["threads"])
            rows.append(r)
    return rows


def fmt(x, digits=1):
    return "-" if x != x else f"{x:,.{digits}f}"


def table(rows):
    head = ["server", "workload", "threads", "QPS", "CPU us/answer", "mean latency us",
            "lost %", "NOERROR %", "peak RSS MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = {w: i for i, w in enumerate(WORKLOADS)}
    srv = {s: i for i, s in enumerate(SERVERS)}
    for r in sorted(rows, key=lambda r: (order.get(r["workload"], 99), r["threads"], srv.get(r["server"], 99))):
        lines.append("| " + " | ".join([
            r["server"], r["workload"], str(r["threads"]), fmt(r["qps"], 0), fmt(r["cpu_us"], 2),
            fmt(r["latency_us"], 0), fmt(r["lost_pct"], 2), fmt(r["noerror_pct"], 1),
            fmt(r["peak_rss_kib"] / 1024, 1),
        ]) + " |")
    return lines


def ratios(rows):
    """names against every peer measured on the same workload and thread count, and
    names' CACHE-HIT/SYNTH against the reflector's LIMIT."""
    by = {(r["server"], r["workload"], r["threads"]): r for r in rows}
    head = ["workload", "threads", "names vs", "QPS ratio (higher: names faster)",
            "CPU/answer ratio (lower: names cheaper)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    limit = by.get(("reflector", "LIMIT", 1))
    for w in WORKLOADS:
        for t in sorted({r["threads"] for r in rows}):
            n = by.get(("names", w, t))
            if not n:
                continue
            peers = [(p, by.get((p, w, t))) for p in SERVERS if p != "names"]
            if w in ("CACHE-HIT", "SYNTH") and limit:
                peers.append(("reflector (LIMIT, 1 thread)", limit))
            for p, r in peers:
                if not r or not r["qps"]:
                    continue
                q = n["qps"] / r["qps"]
                c = n["cpu_us"] / r["cpu_us"] if r["cpu_us"] else float("nan")
                lines.append(f"| {w} | {t} | {p} | {q:.2f} | {fmt(c, 2)} |")
    return lines


def memory_lines(path):
    lines = []
    if not os.path.exists(path):
        return lines
    head = ["server", "names cached", "RSS idle MiB", "RSS after MiB", "bytes per cached name"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    with open(path) as f:
        for line in f:
            server, answered, idle, after = line.split()
            answered, idle, after = int(answered), int(idle), int(after)
            per = (after - idle) * 1024 / answered if answered else float("nan")
            lines.append(f"| {server} | {answered:,} | {idle / 1024:.1f} | {after / 1024:.1f} | {fmt(per, 0)} |")
    return lines


def chart(rows, outdir):
    """Two clustered bar charts side by side: CPU per answer and QPS, per workload/threads."""
    servers = [s for s in SERVERS if any(r["server"] == s for r in rows)]
    cats = []
    for w in WORKLOADS:
        for t in sorted({r["threads"] for r in rows}):
            if any(r["workload"] == w and r["threads"] == t for r in rows):
                cats.append((w, t))
    by = {(r["server"], r["workload"], r["threads"]): r for r in rows}
    dat = os.path.join(outdir, "compare.dat")
    with open(dat, "w") as f:
        for key in ("cpu_us", "qps"):
            f.write("category " + " ".join(servers) + "\n")
            for w, t in cats:
                vals = []
                for s in servers:
                    r = by.get((s, w, t))
                    v = r[key] if r else float("nan")
                    if key == "qps" and v == v:
                        v /= 1000
                    vals.append("?" if v != v else f"{v:.3f}")
                short = {"CACHE-HIT": "HIT", "FORWARD-MISS": "MISS", "RECURSE-COLD": "R-COLD",
                         "RECURSE-WARM": "R-WARM"}.get(w, w)
                f.write(f'"{short} t{t}" ' + " ".join(vals) + "\n")
            f.write("\n\n")
    here = os.path.dirname(os.path.abspath(__file__))
    svg = os.path.join(outdir, "compare.svg")
    n = len(servers) + 1
    subprocess.run(
        ["gnuplot", "-e", f"datafile='{dat}'; outfile='{svg}'; ncols={n}",
         os.path.join(here, "compare.gnuplot")],
        check=True,
    )
    os.remove(dat)
    return svg


def report(args):
    rows = load_rows(args.tsv)
    out = []
    out.append("## Results" + (" (" + args.title + ")" if args.title else ""))
    out.append("")
    if args.meta and os.path.exists(args.meta):
        with open(args.meta) as f:
            out.extend(line.rstrip("\n") for line in f)
        out.append("")
    out.extend(table(rows))
    out.append("")
    out.append("### names against each peer, same run")
    out.append("")
    out.extend(ratios(rows))
    mem = memory_lines(args.mem)
    if mem:
        out.append("")
        out.append("### Memory per cached name")
        out.append("")
        out.extend(mem)
    text = "\n".join(out) + "\n"
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "compare.md"), "w") as f:
        f.write(text)
    print(text)
    if rows and not args.no_chart:
        print("chart:", chart(rows, args.outdir))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ports"); p.add_argument("base", type=int); p.add_argument("count", type=int)
    p = sub.add_parser("ticks"); p.add_argument("pid", type=int)
    p = sub.add_parser("kib"); p.add_argument("pid", type=int); p.add_argument("key")
    p = sub.add_parser("tree"); p.add_argument("pid", type=int)
    p = sub.add_parser("reset-peak"); p.add_argument("pid", type=int)
    p = sub.add_parser("queries")
    p.add_argument("kind"); p.add_argument("count", type=int); p.add_argument("path")
    p.add_argument("--tag", default="")
    p = sub.add_parser("row")
    for a in ("tsv", "server", "workload", "dnsperf_out"):
        p.add_argument("--" + a.replace("_", "-"), dest=a, required=True)
    for a in ("threads", "ticks0", "ticks1", "hwm"):
        p.add_argument("--" + a, dest=a, type=int, required=True)
    p = sub.add_parser("report")
    p.add_argument("--tsv", required=True); p.add_argument("--mem", default="")
    p.add_argument("--meta", default=""); p.add_argument("--outdir", required=True)
    p.add_argument("--title", default=""); p.add_argument("--no-chart", action="store_true")
    a = ap.parse_args()
    if a.cmd == "ports":
        print(" ".join(map(str, free_ports(a.base, a.count))))
    elif a.cmd == "ticks":
        print(ticks(a.pid))
    elif a.cmd == "kib":
        print(status_kib(a.pid, a.key))
    elif a.cmd == "reset-peak":
        reset_peak(a.pid)
    elif a.cmd == "tree":
        print(" ".join(map(str, tree(a.pid))))
    elif a.cmd == "queries":
        write_queries(a.kind, a.count, a.path, a.tag)
    elif a.cmd == "row":
        row(a)
    elif a.cmd == "report":
        report(a)


if __name__ == "__main__":
    main()
