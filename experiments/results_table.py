#!/usr/bin/env python3
"""Per-family AUC-ROC / AP of heldout run folders beside the PyTorch reference, per seed and as
mean ± std (ddof 0) over the seeds both have. Prints a Markdown table (used for RESULTS.md).

usage: results_table.py REFERENCE_CSV RUN_DIR [RUN_DIR ...]
"""
import csv
import statistics as st
import sys

REF_NAME = {"meta_learner": "mdml", "odin_T1000_eps0.0014": "odin_T1000_eps0.0014"}


def main():
    ref_csv, runs = sys.argv[1], sys.argv[2:]
    ours = {}
    for d in runs:
        for r in csv.DictReader(open(f"{d}/metrics.csv")):
            ours[(r["method"], r["held_out"], int(r["seed"]))] = (float(r["auc_roc"]), float(r["ap"]))
    ref = {}
    for r in csv.DictReader(open(ref_csv)):
        ref[(r["method"], r["held_out_family"], int(r["seed"]))] = (float(r["auc"]), float(r["ap"]))
    seeds = sorted({k[2] for k in ours})
    methods = [m for m in REF_NAME if any(k[0] == m for k in ours)]
    fams = sorted({k[1] for k in ours})
    ms = lambda v: f"{st.mean(v):.3f} ± {st.pstdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
    print(f"| method | held-out family | heldout AUC, seeds {seeds} | reference AUC, same seeds | heldout AP | reference AP |")
    print("|---|---|---:|---:|---:|---:|")
    macro = {}
    for m in methods:
        for f in fams:
            a = [ours[(m, f, s)][0] for s in seeds if (m, f, s) in ours]
            p = [ours[(m, f, s)][1] for s in seeds if (m, f, s) in ours]
            ra = [ref[(REF_NAME[m], f, s)][0] for s in seeds if (REF_NAME[m], f, s) in ref]
            rp = [ref[(REF_NAME[m], f, s)][1] for s in seeds if (REF_NAME[m], f, s) in ref]
            print(f"| {m} | {f} | {ms(a)} | {ms(ra)} | {ms(p)} | {ms(rp)} |")
        # macro: mean over families within a seed, then mean ± std over seeds
        for key, src, name in (("ours", ours, m), ("ref", ref, REF_NAME[m])):
            for i in (0, 1):
                per_seed = [st.mean([src[(name, f, s)][i] for f in fams]) for s in seeds]
                macro[(m, key, i)] = per_seed
        print(f"| {m} | **macro** | {ms(macro[(m,'ours',0)])} | {ms(macro[(m,'ref',0)])} | "
              f"{ms(macro[(m,'ours',1)])} | {ms(macro[(m,'ref',1)])} |")


if __name__ == "__main__":
    main()
