#!/usr/bin/env bash
# Fit and score seconds and peak memory of every standard detector on the CIC-IDS2017 sample
# (held out Botnet, seed 0): `heldout bench methods` beside the PyTorch / scikit-learn reference
# (`../shared/reference/run.py`, its raw CSV's fit_seconds / score_seconds and cost.json's peak
# RSS), in one sitting, one thread each side. Writes bench/results/methods-<UTC date>.txt with
# the command, commit, date, machine and load.
#
# usage: bench/methods.sh PYTHON [THREADS]
#   PYTHON: a python with the reference's packages, e.g.
#     python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch numpy pandas scikit-learn pyod
#   THREADS: threads for both sides (default 1)
# needs: cargo build --release
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:?give a python with the reference packages (see the header)}
T=${2:-1}
ref=../shared/reference
out=bench/results/methods-$(date -u +%Y%m%d-%H%M%S)-t$T.txt
tmp=$(mktemp -d)
mkdir -p "$tmp/raw"
export HELDOUT_THREADS=$T RAYON_NUM_THREADS=$T CANDLE_NUM_THREADS=$T OMP_NUM_THREADS=$T
{
  echo "# heldout bench methods beside the reference, one sitting, $T thread(s) each"
  echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit:  $(git rev-parse --short HEAD) ($(git status --porcelain --untracked-files=no | wc -l) files modified)"
  echo "machine: $(getconf _NPROCESSORS_ONLN) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
  echo
  echo "## heldout: target/release/heldout bench methods --repeat 3"
  target/release/heldout bench methods --repeat 3
  echo
  echo "## reference: run.py --dataset cicids2017 --method M --seeds 0 --families Botnet --threads $T"
  for m in iforest ecod ocsvm deepsvdd deepsad devnet mlp_fewshot mlp_full odin; do
    for rep in 1 2 3; do
      "$PY" "$ref/run.py" --dataset cicids2017 --method "$m" --seeds 0 --families Botnet \
        --threads "$T" --out "$tmp" --tag "_r$rep" > /dev/null
    done
  done
  "$PY" - "$tmp/raw" <<'PYEOF'
import csv, glob, json, os, sys
raw = sys.argv[1]
print(f"{'method':<24} {'fit s':>9} {'score s':>9} {'AUC':>7} {'peak MiB':>9}")
for f in sorted(glob.glob(os.path.join(raw, "*.csv"))):
    cost = json.load(open(f[:-4] + ".cost.json"))
    for r in csv.DictReader(open(f)):
        print(f"{r['method']:<24} {float(r['fit_seconds']):>9.3f} {float(r['score_seconds']):>9.3f} "
              f"{float(r['auc']):>7.3f} {cost['peak_rss_mib']:>9.0f}  ({os.path.basename(f)})")
PYEOF
  echo
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at end"
} | tee "$out"
rm -rf "$tmp"
echo "written: $out"
