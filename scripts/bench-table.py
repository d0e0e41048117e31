#!/usr/bin/env python3
"""Prints criterion results (target/criterion) as a Markdown table: throughput of kafkit and
each peer per benchmark, and kafkit's ratio to the best peer.

    cargo bench -p kafkit-protocol --bench record_batch && scripts/bench-table.py
"""
import json, os, sys, glob, collections

root = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "target")
rows = collections.OrderedDict()
for est in sorted(glob.glob(os.path.join(root, "criterion", "*", "*", "*", "new", "estimates.json"))):
    bench_dir = os.path.dirname(os.path.dirname(est))
    meta = json.load(open(os.path.join(bench_dir, "new", "benchmark.json")))
    group, lib, param = meta["group_id"], meta["function_id"], meta.get("value_str")
    tp = meta.get("throughput") or {}
    nbytes = tp.get("Bytes") or tp.get("BytesDecimal")
    ns = json.load(open(est))["median"]["point_estimate"]
    rows.setdefault((group, param), {})[lib] = (nbytes / ns) if nbytes else 1e9 / ns
unit = "GB/s"
print(f"| benchmark | kafkit ({unit}) | peers ({unit}) | kafkit / best peer |")
print("|---|---|---|---|")
for (group, param), libs in rows.items():
    k = libs.get("kafkit")
    peers = {l: v for l, v in libs.items() if l != "kafkit"}
    if k is None:
        continue
    best = max(peers.values()) if peers else None
    ptxt = ", ".join(f"{l} {v:.2f}" for l, v in peers.items()) or "-"
    ratio = f"{k / best:.2f}x" if best else "-"
    print(f"| {group}/{param} | {k:.2f} | {ptxt} | {ratio} |")
