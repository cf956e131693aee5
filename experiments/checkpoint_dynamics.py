#!/usr/bin/env python3
"""What each stage of an episode does to separation, from a heldout run folder's checkpoints.csv:
mean AUC change of the inner stage (after inner − pre) and of the outer stage (after outer − after
inner) per episode, for the held-out family and for the seen families, and how much the held-out
AUC moves from one episode to the next. Standard library only; prints Markdown.

usage: checkpoint_dynamics.py RUN_DIR [RUN_DIR ...]
       checkpoint_dynamics.py --reference MDML_EPISODES_CSV
           the same from the reference's per-episode log (its seen-family AUC is one pooled
           validation AUC per episode rather than one per family)
"""
import csv
import statistics as st
import sys
from collections import defaultdict


def reference(path):
    rows = list(csv.DictReader(open(path)))
    print("| family role | episodes | inner stage: mean Δ AUC | share of episodes it lowers AUC "
          "| outer stage: mean Δ AUC | share it raises AUC |")
    print("|---|---:|---:|---:|---:|---:|")
    for role, key in (("held-out", "heldout"), ("seen (pooled)", "seenval")):
        i = [float(r[f"inner_{key}_auc"]) - float(r[f"pre_{key}_auc"]) for r in rows]
        o = [float(r[f"outer_{key}_auc"]) - float(r[f"inner_{key}_auc"]) for r in rows]
        print(f"| {role} | {len(i)} | {st.mean(i):+.3f} | {sum(x < 0 for x in i) / len(i):.2f} | "
              f"{st.mean(o):+.3f} | {sum(x > 0 for x in o) / len(o):.2f} |")
    by = defaultdict(dict)
    for r in rows:
        by[(r["held_out_family"], r["seed"])][int(r["episode"])] = float(r["outer_heldout_auc"])
    swings = [abs(v[e] - v[e - 1]) for v in by.values() for e in v if e - 1 in v]
    print(f"\nHeld-out AUC after the outer stage moves by {st.mean(swings):.3f} on average (median "
          f"{st.median(swings):.3f}) from one episode to the next ({len(swings)} episode pairs).")


def main():
    if sys.argv[1] == "--reference":
        return reference(sys.argv[2])
    rows = []
    for d in sys.argv[1:]:
        rows += [r for r in csv.DictReader(open(f"{d}/checkpoints.csv")) if r["method"] == "meta_learner"]
    auc = {}
    for r in rows:
        auc[(r["seed"], r["rotation"], int(r["episode"]), r["stage"], r["family"])] = (
            float(r["auc"]), r["role"])
    delta = defaultdict(list)  # (role, stage) -> changes
    swings, final = [], []
    units = {(k[0], k[1]) for k in auc}
    for seed, rot in sorted(units):
        eps = sorted({k[2] for k in auc if k[:2] == (seed, rot)})
        fams = sorted({k[4] for k in auc if k[:2] == (seed, rot)})
        for f in fams:
            for e in eps:
                g = lambda s: auc.get((seed, rot, e, s, f), (None, None))
                (pre, role), (inn, _), (out, _) = g("pre"), g("inner"), g("outer")
                if None in (pre, inn, out):
                    continue
                delta[(role, "inner")].append(inn - pre)
                delta[(role, "outer")].append(out - inn)
                if role == "held_out" and e > 1:
                    prev = auc[(seed, rot, e - 1, "outer", f)][0]
                    swings.append(abs(out - prev))
    print("| family role | episodes × families | inner stage: mean Δ AUC | share of episodes it lowers AUC "
          "| outer stage: mean Δ AUC | share it raises AUC |")
    print("|---|---:|---:|---:|---:|---:|")
    for role in ("held_out", "seen"):
        i, o = delta[(role, "inner")], delta[(role, "outer")]
        if not i:
            continue
        print(f"| {role.replace('_', '-')} | {len(i)} | {st.mean(i):+.3f} | "
              f"{sum(x < 0 for x in i) / len(i):.2f} | {st.mean(o):+.3f} | {sum(x > 0 for x in o) / len(o):.2f} |")
    if swings:
        print(f"\nHeld-out AUC after the outer stage moves by {st.mean(swings):.3f} on average (median "
              f"{st.median(swings):.3f}) from one episode to the next ({len(swings)} episode pairs).")


if __name__ == "__main__":
    main()
