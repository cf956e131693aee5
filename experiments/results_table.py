#!/usr/bin/env python3
"""heldout run folders beside the PyTorch reference: per-family AUC-ROC / AP as mean ± std (ddof 0)
over the seeds both have, and the macro row (mean over held-out families within a seed, then mean ±
std over seeds). Prints Markdown (used for RESULTS.md). Standard library only.

usage:
  results_table.py REFERENCE_CSV[,REFERENCE_CSV...] RUN_DIR [RUN_DIR ...]
      per-family table of one dataset
  results_table.py --summary REFERENCE_DIR NAME=RUN_DIR[,RUN_DIR...] [NAME=...]
      one macro row per dataset and method (NAME = the reference's dataset name, its CSV being
      REFERENCE_DIR/NAME.csv), with the standard error of the difference that seed-to-seed
      spread alone gives: sqrt(s²_heldout/n + s²_reference/n), s the sample std of the per-seed
      macro values

Reference CSVs: `../shared/reference/results/<dataset>.csv` (`method`, `held_out_family`, `seed`,
`auc`, `ap`), or a raw file of the reference's `run.py` (same columns plus `dataset`).
"""
import csv
import statistics as st
import sys

REF_NAME = {"meta_learner": "mdml", "odin_T1000_eps0.0014": "odin_T1000_eps0.0014",
            # the standard detectors (issue 12) use the reference's names
            **{m: m for m in ("iforest", "ecod", "ocsvm", "deepsvdd", "deepsad", "devnet",
                              "mlp_fewshot", "mlp_full")}}


def load_ours(runs):
    ours = {}
    for d in runs:
        for r in csv.DictReader(open(f"{d}/metrics.csv")):
            # one row per threshold policy since issue 13: AUC and AP are on every row alike
            if r.get("threshold", "unrecorded") not in ("val_best_f1", "fallback_0.5", "unrecorded"):
                continue
            ours[(r["method"], r["held_out"], int(r["seed"]))] = (float(r["auc_roc"]), float(r["ap"]))
    return ours


def load_ref(paths):
    ref = {}
    for p in paths:
        for r in csv.DictReader(open(p)):
            ref[(r["method"], r["held_out_family"], int(r["seed"]))] = (float(r["auc"]), float(r["ap"]))
    return ref


def ms(v):
    if not v:
        return "—"
    return f"{st.mean(v):.3f} ± {st.pstdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def common(ours, ref, m):
    """Seeds and families present for method m on both sides."""
    seeds = sorted({k[2] for k in ours if k[0] == m})
    fams = sorted({k[1] for k in ours if k[0] == m})
    seeds = [s for s in seeds if all((m, f, s) in ours and (REF_NAME[m], f, s) in ref for f in fams)]
    return seeds, fams


def macro(src, name, fams, seeds, i):
    return [st.mean([src[(name, f, s)][i] for f in fams]) for s in seeds]


def per_family(ref, ours):
    methods = [m for m in REF_NAME if any(k[0] == m for k in ours)]
    for m in methods:
        seeds, fams = common(ours, ref, m)
        print(f"\n| method | held-out family | heldout AUC, seeds {seeds} | reference AUC, same seeds "
              f"| heldout AP | reference AP |")
        print("|---|---|---:|---:|---:|---:|")
        for f in fams:
            get = lambda src, name, i: [src[(name, f, s)][i] for s in seeds]
            print(f"| {m} | {f} | {ms(get(ours, m, 0))} | {ms(get(ref, REF_NAME[m], 0))} | "
                  f"{ms(get(ours, m, 1))} | {ms(get(ref, REF_NAME[m], 1))} |")
        print(f"| {m} | **macro** | {ms(macro(ours, m, fams, seeds, 0))} | "
              f"{ms(macro(ref, REF_NAME[m], fams, seeds, 0))} | {ms(macro(ours, m, fams, seeds, 1))} | "
              f"{ms(macro(ref, REF_NAME[m], fams, seeds, 1))} |")


def summary(ref_dir, specs):
    print("| dataset | method | seeds | held-out families | heldout macro AUC | reference macro AUC "
          "| Δ AUC | seed-noise SE of Δ | heldout macro AP | reference macro AP |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec in specs:
        name, dirs = spec.split("=", 1)
        ours = load_ours(dirs.split(","))
        ref = load_ref([f"{ref_dir}/{name}.csv"])
        for m in REF_NAME:
            if not any(k[0] == m for k in ours):
                continue
            seeds, fams = common(ours, ref, m)
            if not seeds:
                continue
            a, ra = macro(ours, m, fams, seeds, 0), macro(ref, REF_NAME[m], fams, seeds, 0)
            p, rp = macro(ours, m, fams, seeds, 1), macro(ref, REF_NAME[m], fams, seeds, 1)
            # standard error of the difference of two means over seeds (sample std, ddof 1)
            se = (st.variance(a) / len(a) + st.variance(ra) / len(ra)) ** 0.5 if len(seeds) > 1 else float("nan")
            print(f"| {name} | {m} | {','.join(map(str, seeds))} | {len(fams)} | {ms(a)} | {ms(ra)} | "
                  f"{st.mean(a) - st.mean(ra):+.3f} | {se:.3f} | {ms(p)} | {ms(rp)} |")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--summary":
        summary(sys.argv[2], sys.argv[3:])
    else:
        per_family(load_ref(sys.argv[1].split(",")), load_ours(sys.argv[2:]))


if __name__ == "__main__":
    main()
