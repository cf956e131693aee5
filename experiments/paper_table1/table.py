#!/usr/bin/env python3
"""The core paper's Table 1 layout from one or more heldout run folders (issue 15).

usage: experiments/paper_table1/table.py [--seeds 0,1] RUN_DIR[!METHOD,METHOD...] [RUN_DIR ...]

`--seeds` keeps only those seeds (e.g. the seeds every method finished in a run that was stopped).

`RUN_DIR!mtae` reads RUN_DIR without the rows of method `mtae` (e.g. when a method was rerun in
another folder after a fix; RESULTS.md says where).

Reads each folder's metrics.csv (the τ* rows: threshold val_best_f1, or the 0.5 fallback) and
prints, per block of three held-out families and the macro average last, one row per method
with P / R / AUC / F1 (mean ± population std over seeds), the best mean per (family, column) in
bold: the layout of `heldout`'s own summary.md / table1.md, for a table whose methods ran in more
than one folder (a method appearing in two folders is refused). Also each method's macro AP and
the seeds it has. Standard library only.
"""
import csv
import math
import os
import sys
from collections import defaultdict

PRIMARY = ("val_best_f1", "fallback_0.5", "unrecorded")
COLS = (("P", "precision"), ("R", "recall"), ("AUC", "auc_roc"), ("F1", "f1"))


def ms(v):
    m = sum(v) / len(v)
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / len(v))


def main(dirs, seeds=None):
    rows = []
    owner = {}
    for arg in dirs:
        d, _, drop = arg.partition("!")
        drop = set(filter(None, drop.split(",")))
        with open(os.path.join(d, "metrics.csv"), newline="") as f:
            for r in csv.DictReader(f):
                if r.get("threshold", "unrecorded") not in PRIMARY or r["method"] in drop:
                    continue
                if seeds is not None and r["seed"] not in seeds:
                    continue
                o = owner.setdefault(r["method"], d)
                if o != d:
                    sys.exit(f"{r['method']} is in both {o} and {d}")
                rows.append(r)
    methods, fams = [], []
    for r in rows:
        if r["method"] not in methods:
            methods.append(r["method"])
        if r["held_out"] not in fams:
            fams.append(r["held_out"])
    cell = defaultdict(list)  # (method, family, key) -> values over seeds
    per_seed = defaultdict(lambda: defaultdict(list))  # (method, key) -> seed -> values
    for r in rows:
        for _, k in COLS + (("AP", "ap"),):
            v = float(r[k])
            cell[(r["method"], r["held_out"], k)].append(v)
            per_seed[(r["method"], k)][r["seed"]].append(v)
    for m in methods:
        for _, k in COLS + (("AP", "ap"),):
            cell[(m, "macro", k)] = [
                sum(v) / len(v) for v in per_seed[(m, k)].values()
            ]
    out = []
    blocks = fams + ["macro"]
    for i in range(0, len(blocks), 3):
        b = blocks[i : i + 3]
        head = "| method |" + "".join(f" {f} {c} |" for f in b for c, _ in COLS)
        out += [head, "|---|" + "---|" * (4 * len(b))]
        best = {}
        for f in b:
            for _, k in COLS:
                means = [ms(cell[(m, f, k)])[0] for m in methods if cell[(m, f, k)]]
                best[(f, k)] = max(means) if means else None
        for m in methods:
            line = f"| {m} |"
            for f in b:
                for _, k in COLS:
                    v = cell[(m, f, k)]
                    if not v:
                        line += " – |"
                        continue
                    mu, sd = ms(v)
                    t = f"{mu:.3f} ± {sd:.3f}" if len(v) > 1 else f"{mu:.3f}"
                    line += f" **{t}** |" if mu == best[(f, k)] else f" {t} |"
            out.append(line)
        out.append("")
    out.append("| method | macro AP | seeds |")
    out.append("|---|---|---|")
    for m in methods:
        mu, sd = ms(cell[(m, "macro", "ap")])
        seeds = sorted(per_seed[(m, "ap")], key=int)
        out.append(f"| {m} | {mu:.3f} ± {sd:.3f} | {', '.join(seeds)} |")
    print("\n".join(out))


if __name__ == "__main__":
    args = sys.argv[1:]
    seeds = None
    if args[:1] == ["--seeds"] and len(args) > 1:
        seeds = set(args[1].split(","))
        args = args[2:]
    if not args:
        sys.exit(__doc__)
    main(args, seeds)
