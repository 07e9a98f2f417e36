#!/usr/bin/env python3
"""merge-bench.py BENCHDIR KERNEL...: merge BENCHDIR/KERNEL/NAME.json of
every kernel into BENCHDIR/NAME.json as {"kernels": {KERNEL: ...}}."""
import json
import os
import sys

bench, kernels = sys.argv[1], sys.argv[2:]
for old in os.listdir(bench):     # only this run's merged results
    if old.endswith(".json"):
        os.unlink(os.path.join(bench, old))
names = set()
for k in kernels:
    d = os.path.join(bench, k)
    if os.path.isdir(d):
        names.update(n for n in os.listdir(d) if n.endswith(".json"))
for n in sorted(names):
    merged = {"kernels": {}}
    for k in kernels:
        p = os.path.join(bench, k, n)
        try:
            with open(p) as f:
                merged["kernels"][k] = json.load(f)
        except (OSError, ValueError) as e:
            merged["kernels"][k] = {"error": str(e)}
    with open(os.path.join(bench, n), "w") as f:
        json.dump(merged, f, indent=1)
    print(f"bench: wrote {os.path.join(bench, n)}")
