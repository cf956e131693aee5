#!/usr/bin/env bash
# The standard detectors (Isolation Forest, ECOD, OCSVM, Deep SVDD, Deep SAD, DevNet, both MLPs)
# on the four shared datasets, every held-out family, seeds 0-2, under the reference's leak-free
# protocol; then the macro table beside ../shared/reference/results (experiments/RESULTS.md,
# "Standard detectors") and the per-family tables.
# usage: experiments/parity/run.sh [DATASET ...]   (default: all four; needs cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/../.."
sets=("${@:-cicids2017 nsl_kdd ciciot2023 unsw_nb15}")
sets=(${sets[@]})
for ds in "${sets[@]}"; do
  /usr/bin/time -v target/release/heldout run "experiments/parity/$ds.ron" --out runs/parity \
    2> "runs/parity-$ds.time" | tail -1
done
args=()
for ds in "${sets[@]}"; do
  args+=("$ds=$(ls -d runs/parity/"$ds"-lofo-standard-* | tail -1)")
done
python3 experiments/results_table.py --summary ../shared/reference/results "${args[@]}"
for ds in "${sets[@]}"; do
  echo
  echo "### $ds"
  python3 experiments/results_table.py "../shared/reference/results/$ds.csv" \
    "$(ls -d runs/parity/"$ds"-lofo-standard-* | tail -1)"
done
