#!/usr/bin/env bash
# Load + clean throughput, heldout vs pandas, on the same files in the same sitting.
set -euo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
cargo build --release -q
CIC=$(./target/release/heldout bench load --generate-only)
./target/release/heldout bench load --data-dir "$D"
for i in 1 2 3; do
  python3 bench/pandas_load.py "$D/kddcup99_10percent/kddcup.data_10_percent.csv.gz" attack \
    "$D/kddcup99_10percent/attack_family_map.csv"
done
for i in 1 2 3; do
  python3 bench/pandas_load.py "$CIC" Label
done
