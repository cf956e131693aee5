#!/usr/bin/env python3
"""Tables for heldout's own method (issue 13), from run folders and the reference's raw CSVs.

usage: experiments/fusion/tables.py [--gate] DATASET=RUN_DIR[,RUN_DIR...] ...

For each dataset: the reference's best method by macro AUC-ROC (recomputed here from
../shared/reference/results/DATASET.csv: mean over held-out families within a seed, then mean and
population std over seeds 0-2), and every method of the run folders per seed group (macro AUC-ROC
and AP, mean ± std over the seeds present); then the threshold-transfer table (macro precision,
recall, F1 and realised test FPR per method and threshold policy) and the per-family AUC-ROC of
each method. With --gate, also each seed's macro AUC-ROC / AP per method (the families it has),
the fusion gate's choice per (seed, rotation) from epochs.csv, and per (seed, left-out seen
family) the range of each component's fold AUC over the rotations it was a fold in. Standard
library only.
"""
import csv
import math
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "..", "..", "shared", "reference", "results")
PRIMARY = ("val_best_f1", "fallback_0.5", "unrecorded")


def ms(v):
    m = sum(v) / len(v)
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / len(v))


def fmt(v):
    if not v:
        return "–"
    m, s = ms(v)
    return f"{m:.3f} ± {s:.3f}" if len(v) > 1 else f"{m:.3f}"


def macro(rows, key):
    """{method: {seed: mean of key over families}} of rows."""
    by = defaultdict(lambda: defaultdict(list))
    for r in rows:
        v = float(r[key])
        if math.isfinite(v):
            by[r["method"]][int(r["seed"])].append(v)
    return {m: {s: sum(v) / len(v) for s, v in d.items()} for m, d in by.items()}


def reference_best(ds):
    rows = list(csv.DictReader(open(os.path.join(REF, f"{ds}.csv"))))
    rows = [r for r in rows if int(r["seed"]) in (0, 1, 2)]
    auc, ap = macro(rows, "auc"), macro(rows, "ap")
    best = max(auc, key=lambda m: ms(list(auc[m].values()))[0])
    return best, list(auc[best].values()), list(ap[best].values())


def gate_report(ds, dirs):
    """Per-seed macros, the gate's choices and the fold AUC ranges of the run folders `dirs`."""
    print(f"\n### {ds}: per seed")
    print("| method | seed | families | macro AUC | macro AP |\n|---|---:|---:|---:|---:|")
    for d in dirs:
        rows = [r for r in csv.DictReader(open(os.path.join(d, "metrics.csv"))) if r["threshold"] in PRIMARY]
        by = defaultdict(list)
        for r in rows:
            by[(r["method"], int(r["seed"]))].append((float(r["auc_roc"]), float(r["ap"])))
        for (m, s), v in sorted(by.items()):
            print(f"| {m} | {s} | {len(v)} | {sum(a for a, _ in v) / len(v):.4f} | {sum(b for _, b in v) / len(v):.4f} |")
    print(f"\n### {ds}: the fusion gate's choice per (seed, rotation)")
    print("| seed | held out | weights | floor | objective |\n|---:|---|---|---|---:|")
    folds = defaultdict(lambda: defaultdict(list))
    for d in dirs:
        ep = os.path.join(d, "epochs.csv")
        if not os.path.exists(ep):
            continue
        gate = defaultdict(dict)
        fold_rows = defaultdict(lambda: defaultdict(list))
        for r in csv.DictReader(open(ep)):
            k = (int(r["seed"]), r["rotation"])
            if r["phase"] == "gate":
                gate[k][r["term"]] = float(r["value"])
            elif r["phase"] == "gate fold":
                fold_rows[k][r["term"]].append(float(r["value"]))
        for k, v in sorted(gate.items()):
            w = " ".join(f"{t[2:]} {x:.2f}" for t, x in v.items() if t.startswith("w_"))
            print(f"| {k[0]} | {k[1]} | {w} | {v.get('floor')} | {v.get('objective', float('nan')):.3f} |")
        # the folds of a rotation are its seen families in sorted order
        fams = sorted({k[1] for k in gate})
        for (seed, rot), terms in fold_rows.items():
            seen = [f for f in fams if f != rot]
            for term, vals in terms.items():
                for fam, x in zip(seen, vals):
                    folds[(seed, fam)][term].append(x)
    if folds:
        print(f"\n### {ds}: fold AUC of each component per (seed, left-out seen family), min-max over rotations")
        print("| seed | left out | component: min-max |\n|---:|---|---|")
        for (seed, fam), terms in sorted(folds.items()):
            cells = " · ".join(f"{t[4:]} {min(v):.2f}-{max(v):.2f}" for t, v in terms.items())
            print(f"| {seed} | {fam} | {cells} |")


def main(args):
    if args and args[0] == "--gate":
        for a in args[1:]:
            ds, dirs = a.split("=", 1)
            gate_report(ds, dirs.split(","))
        return
    transfer_out, family_out = [], []
    print("| dataset | reference's best (seeds 0-2) | its macro AUC | its macro AP | heldout method | seeds | macro AUC | macro AP |")
    print("|---|---|---:|---:|---|---|---:|---:|")
    for a in args:
        ds, dirs = a.split("=", 1)
        rows = []
        for d in dirs.split(","):
            rows += list(csv.DictReader(open(os.path.join(d, "metrics.csv"))))
        prim = [r for r in rows if r["threshold"] in PRIMARY]
        best, bauc, bap = reference_best(ds)
        auc, ap = macro(prim, "auc_roc"), macro(prim, "ap")
        for m in auc:
            for group in ((0, 1, 2), (3, 4, 5)):
                a_ = [v for s, v in auc[m].items() if s in group]
                p_ = [v for s, v in ap[m].items() if s in group]
                if a_:
                    seeds = ",".join(str(s) for s in sorted(auc[m]) if s in group)
                    print(f"| {ds} | {best} | {fmt(bauc)} | {fmt(bap)} | {m} | {seeds} | {fmt(a_)} | {fmt(p_)} |")
        # threshold transfer, per seed group
        for group in ((0, 1, 2), (3, 4, 5)):
            g = [r for r in rows if int(r["seed"]) in group]
            if not g:
                continue
            pol = lambda r: "val_best_f1" if r["threshold"] in PRIMARY else r["threshold"]
            keys = []
            for r in g:
                k = (r["method"], pol(r))
                if k not in keys:
                    keys.append(k)
            for m, p in keys:
                sel = [r for r in g if r["method"] == m and pol(r) == p]
                cells = []
                for key in ("precision", "recall", "f1", "fpr"):
                    per_seed = defaultdict(list)
                    for r in sel:
                        v = float(r[key])
                        if math.isfinite(v):
                            per_seed[int(r["seed"])].append(v)
                    cells.append(fmt([sum(v) / len(v) for v in per_seed.values()]))
                seeds = ",".join(str(s) for s in group if any(int(r["seed"]) == s for r in sel))
                transfer_out.append(f"| {ds} | {m} | {p} | {seeds} | " + " | ".join(cells) + " |")
        # per family AUC, seeds 0-2 and 3-5
        fams = []
        for r in prim:
            if r["held_out"] not in fams:
                fams.append(r["held_out"])
        for m in auc:
            for f in fams:
                cell = []
                for group in ((0, 1, 2), (3, 4, 5)):
                    v = [float(r["auc_roc"]) for r in prim if r["method"] == m and r["held_out"] == f
                         and int(r["seed"]) in group]
                    cell.append(fmt(v))
                family_out.append(f"| {ds} | {m} | {f} | {cell[0]} | {cell[1]} |")
    print()
    print("| dataset | method | threshold | seeds | precision | recall | F1 | test FPR |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    print("\n".join(transfer_out))
    print()
    print("| dataset | method | held-out family | AUC-ROC, seeds 0-2 | AUC-ROC, seeds 3-5 |")
    print("|---|---|---|---:|---:|")
    print("\n".join(family_out))


if __name__ == "__main__":
    main(sys.argv[1:])
