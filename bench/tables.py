#!/usr/bin/env python3
"""Rebuild the README's speed tables from the raw benchmark outputs in bench/results/.

Reads the newest raw file of each kind (by the UTC stamp YYYYmmdd-HHMMSS in its name;
`*.partial` files, which a failed section of bench/run_all.sh leaves, are ignored):

  kind     raw file                               written by                    README block
  load     load-STAMP.txt                         bench/run_all.sh PY load      sentence + load table
  episode  episode-STAMP.txt                      bench/run_all.sh PY episode   meta-learner table,
                                                                                sitting + ratios
  methods  methods-STAMP.txt, methods-STAMP-tN.txt  bench/run_all.sh PY methods,  sentence + detector
                                                  or bench/methods.sh PY        table
  frames   frames-STAMP.txt                       bench/run_all.sh PY frames    the "Frame times"
                                                                                paragraph

and replaces, in README.md, the text between `<!-- tables.py:KIND -->` and
`<!-- /tables.py:KIND -->` (each marker on a line of its own) with what that raw file gives.
Every block names the raw file it came from, with its commit, date, machine and load.

Units: heldout's `bench episode` / `bench methods` print peak RSS in MiB (VmHWM / 2^20) and
`bench load` in MB (10^6 bytes); bench/pandas_load.py prints MiB (ru_maxrss / 1024), converted
here to MB so that the load table compares like with like.

usage:
  python3 bench/tables.py               check: print a diff and exit 1 if a block of README.md
                                        differs from what the raw files give (or a block's
                                        markers or raw file are missing)
  python3 bench/tables.py --write       rewrite the blocks in place (then exit as check would
                                        for anything it could not write)
  python3 bench/tables.py --print       print the generated blocks (no README needed)
  --only KIND[,KIND]                    only these kinds (e.g. --only methods)
  --readme PATH, --results DIR          other files (default: README.md, bench/results/)
exit status: 0 up to date, 1 differs / missing, 2 a raw file could not be parsed.

Python 3 standard library only.
"""
import argparse
import difflib
import os
import re
import statistics
import sys

KINDS = ("load", "episode", "methods", "frames")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAMP = re.compile(r"(\d{8}-\d{6})")


class ParseError(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# raw files


def newest(results, kind):
    """The newest raw file of a kind, or None."""
    best = None
    for name in os.listdir(results) if os.path.isdir(results) else []:
        if not name.endswith(".txt") or not name.startswith(kind + "-"):
            continue
        m = STAMP.search(name)
        if m and (best is None or m.group(1) > best[0]):
            best = (m.group(1), name)
    return os.path.join(results, best[1]) if best else None


def header(text, path):
    """The header keys of a raw file: commit, date, machine, cores, load at start / end, ..."""
    h = {}
    for line in text.splitlines():
        m = re.match(r"^(command|sitting|commit|date|uname|machine|versions):\s*(.*)$", line)
        if m and m.group(1) not in h:
            h[m.group(1)] = m.group(2).strip()
        m = re.match(r"^load:\s+([\d.]+)\s+[\d.]+\s+[\d.]+ \(1/5/15 min\) at (start|end)", line)
        if m:
            h["load_" + m.group(2)] = float(m.group(1))
    for k in ("commit", "date", "machine"):
        if k not in h:
            raise ParseError(f"{path}: no '{k}:' line in the header")
    h["commit_id"] = h["commit"].split()[0]
    m = re.search(r"\((\d+) files modified\)", h["commit"])  # bench/methods.sh's form
    if m and int(m.group(1)) > 0 and not h["commit_id"].endswith("-dirty"):
        h["commit_id"] += "-dirty"
    h["day"] = h["date"].split()[0]
    m = re.match(r"(\d+) cores(?:, [^,]+, (.*))?", h["machine"])
    if not m:
        raise ParseError(f"{path}: machine line without cores: {h['machine']}")
    h["cores"] = int(m.group(1))
    h["cpu"] = (m.group(2) or "").strip()
    h["file"] = os.path.relpath(path, ROOT)
    return h


def version(h, module):
    m = re.search(r"\b%s (\d[\w.+-]*)" % re.escape(module), h.get("versions", ""))
    return m.group(1) if m else None


def provenance(h):
    load = ""
    if "load_start" in h:
        load = f", load {h['load_start']:.2f} at the start"
        if "load_end" in h:
            load += f" and {h['load_end']:.2f} at the end"
    return (f"`{h['file']}` (commit `{h['commit_id']}`, {h['day']}, "
            f"{h['cores']}-core machine{load})")


def sections(text):
    """[(section line without '## ', [lines])] in file order."""
    out = []
    for line in text.splitlines():
        if line.startswith("## "):
            out.append((line[3:], []))
        elif out:
            out[-1][1].append(line)
    return out


def median(v):
    return statistics.median(v)


def rng(v, fmt):
    """`a–b` over runs, one value when they print the same."""
    lo, hi = fmt.format(min(v)), fmt.format(max(v))
    return lo if lo == hi else f"{lo}–{hi}"


def num(x, digits):
    return f"{x:,.{digits}f}"


# ------------------------------------------------------------------------------------------------
# load


def load_block(path):
    text = open(path, encoding="utf-8").read()
    h = header(text, path)
    heldout, pandas, repeat = {}, {}, None
    for title, lines in sections(text):
        if title.startswith("heldout"):
            m = re.search(r"--repeat (\d+)", title)
            repeat = int(m.group(1)) if m else 3  # bench load's default
            for line in lines:
                f = line.split()
                if len(f) == 9 and f[1].isdigit():
                    heldout[f[0]] = dict(rows=int(f[1]), cols=int(f[2]), text_mb=float(f[3]),
                                         best=float(f[4]), rows_s=float(f[5]), mb_s=float(f[6]),
                                         peak_mb=float(f[7]), x_f32=float(f[8]))
        elif title.startswith("pandas"):
            for line in lines:
                m = re.match(r"pandas (\S+) rows (\d+) cols (\d+) dups (\d+) seconds ([\d.]+) "
                             r"peak_mb ([\d.]+)", line)
                if m:
                    pandas.setdefault(m.group(1), []).append(
                        (float(m.group(5)), float(m.group(6)) * 1.048576))  # MiB -> MB
    if not heldout:
        raise ParseError(f"{path}: no heldout bench load table")
    runs = {len(v) for v in pandas.values()}
    pv = version(h, "pandas")
    lines = [
        f"Measured in one sitting, raw output {provenance(h)}: heldout's release build, best of {repeat}; "
        f"pandas{' ' + pv if pv else ''}, best of {'/'.join(map(str, sorted(runs))) or '?'} runs, "
        f"each a fresh process. Peak memory: the most any run's resident memory rose above the "
        f"process's own at start (MB = 10^6 bytes).",
        "",
        "| file | heldout | pandas | speed-up | heldout peak memory | pandas peak memory |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in heldout.items():
        m = re.match(r"cic2018_shaped_(\d+)\.csv", name)
        if name.startswith("kddcup"):
            label = f"KDD Cup 99 10% ({r['rows']:,} rows, gzip, {r['text_mb']:.0f} MB of text)"
        elif m:
            label = (f"CIC-IDS2018-shaped CSV ({int(m.group(1)):,} rows × {r['cols']}, "
                     f"{r['text_mb']:.0f} MB)")
        else:
            label = f"`{name}` ({r['rows']:,} rows, {r['text_mb']:.0f} MB of text)"
        p = pandas.get(name, [])
        ps = min(s for s, _ in p) if p else None
        sec = lambda s: f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
        best = r["best"]
        speedup = f"{ps / best:.1f}×" if p else "–"
        p_peak = num(max(m for _, m in p), 0) + " MB" if p else "–"
        lines.append(
            f"| {label} | {sec(best)} ({r['rows_s'] / 1e3:.0f}k rows/s, {r['mb_s']:.0f} MB/s) "
            f"| {sec(ps) if p else '–'} | {speedup} "
            f"| {num(r['peak_mb'], 0)} MB ({r['x_f32']:.2f}× the f32 table) | {p_peak} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# episode


def parse_heldout_episode(lines, where):
    t = {}
    for line in lines:
        s = line.strip()
        for key, pat in (
            ("s_ep", r"^s / episode\s+([\d.]+)"),
            ("ms_inner", r"ms / inner step\s+([\d.]+)"),
            ("ms_outer", r"ms / outer step\s+([\d.]+)"),
            ("outer_steps", r"^outer steps / ep\.\s+([\d.]+)"),
            ("rest", r"^(?:eval|rest) s / episode\s+([\d.]+)"),
            ("ckpt", r"^checkpoints s / ep(?:isode|\.)\s+([\d.]+)"),  # measured, if printed
            ("rows", r"checkpoints of (\d+) rows"),
            ("ck_per_ep", r"([\d.]+) checkpoints of"),
            ("rss", r"^peak RSS Mi?B\s+([\d.]+)"),
        ):
            m = re.search(pat, s)
            if m:
                t[key] = float(m.group(1))
    for k in ("s_ep", "ms_inner", "ms_outer", "rss"):
        if k not in t:
            raise ParseError(f"{where}: no '{k}' in the bench episode output")
    return t


def parse_reference_episode(lines, where):
    for line in lines:
        if line.startswith("reference: "):
            v = {}
            for key in ("s/episode", "ms/inner", "ms/outer", "eval s/ep", "rest s/ep",
                        "outer steps/ep", "peak MiB"):
                m = re.search(r"(?:^|\s)%s ([\d.]+)" % re.escape(key), line[len("reference:"):])
                if not m:
                    raise ParseError(f"{where}: no '{key}' on the 'reference:' line")
                v[key] = float(m.group(1))
            return dict(s_ep=v["s/episode"], ms_inner=v["ms/inner"], ms_outer=v["ms/outer"],
                        ckpt=v["eval s/ep"], rest=v["rest s/ep"],
                        outer_steps=v["outer steps/ep"], rss=v["peak MiB"])
    raise ParseError(f"{where}: no 'reference:' line")


def episode_block(path):
    text = open(path, encoding="utf-8").read()
    h = header(text, path)
    runs = {}  # (variant, threads) -> [timings]
    cap = None
    for title, lines in sections(text):
        m = re.match(r"^(heldout(?:-cap(\d+))?|reference) threads=(\d+) run=(\d+):", title)
        if not m:
            continue
        variant, threads = m.group(1), int(m.group(3))
        if m.group(2):
            cap = int(m.group(2))
        where = f"{path}: section '{title[:60]}'"
        t = (parse_reference_episode(lines, where) if variant == "reference"
             else parse_heldout_episode(lines, where))
        runs.setdefault((variant.split("-")[0] + ("-cap" if m.group(2) else ""), threads),
                        []).append(t)
    multi = sorted({t for _, t in runs if t != 1}) or [1]
    T = multi[0]
    hv = [t for (v, _), ts in runs.items() if v.startswith("heldout") for t in ts]
    measured = bool(hv) and all("ckpt" in t for t in hv)
    col = "checkpoints s / episode" if measured else "rest s / episode¹"
    ckey_h, ckey_r = ("ckpt", "ckpt") if measured else ("rest", "rest")
    tv = version(h, "torch")
    order = [
        (("heldout", T), f"heldout (release, {T} threads)"),
        (("heldout-cap", T), f"heldout, `--checkpoint-cap {cap}`"),
        (("reference", T), f"reference, PyTorch {tv or '?'}, {T} threads"),
    ]
    if T != 1:
        order += [
            (("heldout", 1), "heldout, `HELDOUT_THREADS=1`"),
            (("heldout-cap", 1), f"heldout, 1 thread, `--checkpoint-cap {cap}`"),
            (("reference", 1), "reference, 1 thread"),
        ]
    lines = [
        f"| | s / episode | ms / inner step | ms / outer step | {col} | peak RSS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in order:
        ts = runs.get(key)
        if not ts:
            continue
        ck = ckey_r if key[0] == "reference" else ckey_h
        cells = [
            rng([t["s_ep"] for t in ts], "{:.2f}"),
            rng([t["ms_inner"] for t in ts], "{:.1f}"),
            rng([t["ms_outer"] for t in ts], "{:.1f}"),
            rng([t[ck] for t in ts], "{:.2f}") if all(ck in t for t in ts) else "–",
            rng([t["rss"] for t in ts], "{:.0f}") + " MiB",
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    n = len(runs.get(("heldout", T), []))
    lines.append("")
    if not measured:
        ref_ck = [t["ckpt"] for t in runs.get(("reference", T), [])]
        lines.append(
            "¹ Not a measurement: seconds per episode minus the timed inner and outer steps — "
            "checkpoint scoring, τ\\*, the episode draw and bookkeeping (`bench episode`'s "
            "\"eval s / episode\"); the reference's computed the same way from its `cost.json` "
            "(`episode_s − inner_s − outer_s`; its own timer around the checkpoints, `eval_s`, "
            f"gives {rng(ref_ck, '{:.2f}')} s at {T} threads)." if ref_ck else
            "¹ Not a measurement: seconds per episode minus the timed inner and outer steps.")
        lines.append("")
    sitting = (f"One sitting, raw output {provenance(h)}; the three {T}-thread rows alternating {n} times"
               + (", then the one-thread rows once each" if T != 1 and runs.get(("heldout", 1))
                  else "") + "; ranges over the runs.")
    # heldout / reference: medians, and the range of the per-run ratios (runs paired in order)
    def ratio(a, b, key):
        x, y = runs.get(a, []), runs.get(b, [])
        if not x or not y:
            return None
        r = median([t[key] for t in x]) / median([t[key] for t in y])
        pairs = [p[key] / q[key] for p, q in zip(x, y)]
        return r, pairs

    def fr(r, with_range=True):
        if r is None:
            return "–"
        v, pairs = r
        s = f"{v:.2f}×"
        if with_range and len(pairs) > 1 and "–" in rng(pairs, "{:.2f}"):
            s += f" ({rng(pairs, '{:.2f}')})"
        return s

    ref = ("reference", T)
    parts = [
        f"heldout / reference, medians: per episode {fr(ratio(('heldout', T), ref, 's_ep'))} with "
        f"the spec's checkpoint pools and {fr(ratio(('heldout-cap', T), ref, 's_ep'))} with "
        f"`--checkpoint-cap {cap}`; per inner step {fr(ratio(('heldout', T), ref, 'ms_inner'), False)}, "
        f"per outer step {fr(ratio(('heldout', T), ref, 'ms_outer'), False)} ({T} threads)"]
    if T != 1 and runs.get(("reference", 1)):
        parts.append(f"; one thread: {fr(ratio(('heldout', 1), ('reference', 1), 's_ep'), False)} "
                     f"and {fr(ratio(('heldout-cap', 1), ('reference', 1), 's_ep'), False)}")
    hs = runs.get(("heldout", T), [])
    rs = runs.get(ref, [])
    steps = ""
    if hs and rs and all("outer_steps" in t for t in hs + rs):
        steps = (f" Outer steps per episode: heldout {median([t['outer_steps'] for t in hs]):.1f}, "
                 f"the reference {median([t['outer_steps'] for t in rs]):.1f}.")
    if hs and all("rows" in t and "ck_per_ep" in t for t in hs):
        steps += (f" heldout scores {median([t['ck_per_ep'] for t in hs]):.1f} checkpoints of "
                  f"{median([t['rows'] for t in hs]):,.0f} rows per episode (spec pools).")
    lines.append(sitting + " " + "".join(parts) + "." + steps)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# methods

METHOD_ORDER = ["iforest", "ecod", "ocsvm", "deepsvdd", "deepsad", "devnet", "mlp_fewshot",
                "mlp_full"]


def methods_block(path):
    text = open(path, encoding="utf-8").read()
    h = header(text, path)
    hd, rf, threads = {}, {}, None
    for title, lines in sections(text):
        if title.startswith("heldout"):
            for line in lines:
                m = re.search(r"CPU, (\d+) thread", line)
                if m:
                    threads = int(m.group(1))
                f = line.split()
                if len(f) == 7 and re.match(r"^[\d.]+$", f[1]) and f[3].isdigit():
                    hd.setdefault(f[0], []).append(dict(fit=float(f[1]), score=float(f[2]),
                                                        rss=float(f[6])))
        elif title.startswith("reference"):
            for line in lines:
                f = line.split()
                if len(f) >= 5 and re.match(r"^[\d.]+$", f[1]) and f[-1].startswith("("):
                    rf.setdefault(f[0], []).append(dict(fit=float(f[1]), score=float(f[2]),
                                                        rss=float(f[4])))
    if not hd or not rf:
        raise ParseError(f"{path}: no heldout or no reference table")
    names = [n for n in METHOD_ORDER if n in hd] + [n for n in hd if n not in METHOD_ORDER]
    n_runs = sorted({len(v) for v in hd.values()} | {len(v) for k, v in rf.items() if k in hd})
    lines = [
        f"The table is {provenance(h)}, {threads if threads else '?'} "
        f"thread{'' if threads == 1 else 's'} on each side: "
        f"medians of {'/'.join(map(str, n_runs))} runs; peak RSS in MiB on both sides "
        f"(heldout's the whole process, the loaded table included).",
        "",
        "| method | heldout fit s | reference fit s | fit ratio | heldout score s | reference score s "
        "| fit + score ratio | heldout peak RSS | reference peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        a, b = hd[name], rf.get(name)
        mf, ms, mr = (median([r[k] for r in a]) for k in ("fit", "score", "rss"))
        if not b:
            lines.append(f"| {name} | {mf:.3f} | – | – | {ms:.3f} | – | – | {mr:.0f} MiB | – |")
            continue
        rf_, rs_, rr_ = (median([r[k] for r in b]) for k in ("fit", "score", "rss"))
        fit_ratio = mf / rf_
        both = (mf + ms) / (rf_ + rs_)
        bold = lambda x: f"**{x:.2f}×**" if x > 1.0 else f"{x:.2f}×"
        lines.append(f"| {name} | {mf:.3f} | {rf_:.3f} | {bold(fit_ratio)} | {ms:.3f} | {rs_:.3f} "
                     f"| {bold(both)} | {mr:.0f} MiB | {rr_:.0f} MiB |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# frames


STATS = re.compile(r"frames (\d+) · median ([\d.]+) ms · p99 ([\d.]+) ms · max ([\d.]+) ms · "
                   r"UI build p99 ([\d.]+|NaN) ms · peak RSS (\d+|n/a)(?: MB)? · RSS at exit (\d+|n/a)(?: MB)? · "
                   r"live rows kept (\d+) · during: (.*)")


def frames_stats(text, heading, path):
    """The frame statistics line after the section `## HEADING...`, as a dict."""
    at = text.find("## " + heading)
    if at < 0:
        raise ParseError(f"{path}: no '## {heading}' section")
    m = STATS.search(text, at)
    if not m:
        raise ParseError(f"{path}: no frame statistics line after '## {heading}'")
    k = ("frames", "med", "p99", "max", "ui", "peak", "exit", "rows", "during")
    return dict(zip(k, m.groups()))


def frames_block(path):
    text = open(path, encoding="utf-8").read()
    h = header(text, path)
    a = frames_stats(text, "gui: ", path)
    secs = re.search(r"--exit-after (\d+(?:\.\d+)?)", text)
    secs = secs.group(1) if secs else "?"
    ron = re.search(r"## experiment: (\S+)", text)
    exp_file = ron.group(1) if ron else "bench/frames.ron"
    eps = re.search(r"EpisodeSpec\(count: (\d+)", text)
    seeds = re.search(r"^\s*seeds: \[([^\]]*)\]", text, re.M)
    n_seeds = len([s for s in seeds.group(1).split(",") if s.strip()]) if seeds else None
    renderer = re.search(r"^renderer: (.+)$", text, re.M)
    renderer = renderer.group(1).strip() if renderer else None
    if renderer and renderer.startswith("(unknown"):
        renderer = None
    exp = re.search(r"exported (\d+) files \((\d+) figures.*? in ([\d.]+) s", text)
    idle = "WARNING: the run was not training" in text or not a["during"].startswith("running")
    what = (f"`{exp_file}` (the demo experiment with {eps.group(1) if eps else '?'} episodes and "
            f"{n_seeds if n_seeds else '?'} seeds)")
    out = (
        f"**Frame times.** `heldout gui FILE.ron --tab live --start-run --exit-after {secs}` repaints "
        f"continuously and prints frame statistics on exit (frames, median / p99 / max frame time, "
        f"the UI build time's p99 over the last 600 frames, peak and final RSS, the rows the live "
        f"view holds); `--load-data PATH` also loads a dataset in the background meanwhile. "
        f"`bench/run_all.sh PYTHON frames` runs it on {what} under Xvfb with Mesa's software OpenGL"
        f"{' (' + renderer + ')' if renderer else ''}; raw output {provenance(h)}. While the "
        f"experiment trains and the live histograms update"
        f"{' (it had finished before the window closed: the last frames were drawn with nothing training)' if idle else ''}: "
        f"{int(a['frames']):,} frames in {secs} s, median {a['med']} ms, **99th percentile {a['p99']} ms**, "
        f"max {a['max']} ms; building the UI itself (polling the channels included) takes {a['ui']} ms "
        f"at the 99th percentile — the rest is software rasterisation; peak RSS {a['peak']} MB.")
    if "## gui under both loads" in text:
        b = frames_stats(text, "gui under both loads", path)
        f = re.search(r"--load-data (\S+)", text[text.find("## gui under both loads"):])
        out += (f" The same while `{os.path.basename(f.group(1)) if f else '?'}` (1,000,000 rows, "
                f"made by `heldout bench load --generate-only`) loads at the same time "
                f"(the run {'still training' if b['during'].startswith('running') else 'finished'} "
                f"when the window closed): {int(b['frames']):,} frames, median {b['med']} ms, p99 "
                f"{b['p99']} ms, max {b['max']} ms, **UI build p99 {b['ui']} ms**, peak RSS {b['peak']} MB "
                f"(the loaded table included).")
    if "## gui, 200 episodes" in text:
        c = frames_stats(text, "gui, 200 episodes", path)
        out += (f" A 200-episode run of one unit (`bench/frames-200.ron`, "
                f"{'finished' if not c['during'].startswith('running') else 'still running'} when "
                f"the window closed): the live view kept {int(c['rows']):,} rows, peak RSS "
                f"{c['peak']} MB, UI build p99 {c['ui']} ms — it keeps the histograms, curves and "
                f"PCGrad cosines of at most 24 episodes of the unit that is training and 6 of the "
                f"others (1, 1 + s, 1 + 2s, … and the latest; `RunData::thin_episodes_with`, tested), "
                f"thinned whenever the kept rows grew by a quarter, and no test scores, while the "
                f"run folder keeps every row. The workbench's run and loading threads run at nice "
                f"+10, so that on 2 cores the UI thread is scheduled first.")
    if exp:
        out += (f" Exporting the demo run's {exp.group(2)} figure files (SVG and PNG) and its "
                f"tables ({exp.group(1)} files in all) takes {exp.group(3)} s.")
    return out


BUILDERS = dict(load=load_block, episode=episode_block, methods=methods_block, frames=frames_block)

# ------------------------------------------------------------------------------------------------


def replace_block(readme, kind, body):
    """README text with the block between the markers replaced, or None without markers."""
    start, end = f"<!-- tables.py:{kind} -->", f"<!-- /tables.py:{kind} -->"
    pat = re.compile(r"(^%s[ \t]*\n)(.*?)(^%s[ \t]*$)" % (re.escape(start), re.escape(end)),
                     re.S | re.M)
    if not pat.search(readme):
        return None
    return pat.sub(lambda m: m.group(1) + "\n" + body + "\n\n" + m.group(3), readme, count=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="rewrite the blocks in README.md")
    ap.add_argument("--print", action="store_true", help="print the generated blocks")
    ap.add_argument("--only", default=",".join(KINDS), help="kinds, comma-separated")
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results"))
    a = ap.parse_args()
    kinds = [k.strip() for k in a.only.split(",") if k.strip()]
    for k in kinds:
        if k not in KINDS:
            ap.error(f"unknown kind {k!r} (one of {', '.join(KINDS)})")

    problems, blocks, status = [], {}, 0
    for k in kinds:
        path = newest(a.results, k)
        if path is None:
            problems.append(f"{k}: no raw file {k}-YYYYmmdd-HHMMSS.txt in "
                            f"{os.path.relpath(a.results, ROOT)}/ (bench/run_all.sh PYTHON {k})")
            continue
        try:
            blocks[k] = BUILDERS[k](path)
        except (ParseError, KeyError, ValueError, ZeroDivisionError) as e:
            print(f"error: {k}: {os.path.relpath(path, ROOT)}: {e}", file=sys.stderr)
            status = 2

    if a.print:
        for k, b in blocks.items():
            print(f"<!-- tables.py:{k} -->\n\n{b}\n\n<!-- /tables.py:{k} -->\n")
        for p in problems:
            print(f"note: {p}", file=sys.stderr)
        return status

    old = open(a.readme, encoding="utf-8").read()
    new = old
    for k, b in blocks.items():
        r = replace_block(new, k, b)
        if r is None:
            problems.append(f"{k}: {os.path.relpath(a.readme, ROOT)} has no "
                            f"`<!-- tables.py:{k} -->` … `<!-- /tables.py:{k} -->` markers")
        else:
            new = r
    rel = os.path.relpath(a.readme, ROOT)
    if new != old:
        if a.write:
            tmp = a.readme + ".tables.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(new)
            os.replace(tmp, a.readme)
            print(f"{rel}: rewrote {', '.join(blocks)} from the raw files")
        else:
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), rel, rel + " (from the raw files)"))
            problems.append(f"{rel} differs from what the raw files give "
                            f"(python3 bench/tables.py --write)")
    for p in problems:
        print(f"tables.py: {p}", file=sys.stderr)
    if status:
        return status
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
