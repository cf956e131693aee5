#!/usr/bin/env bash
# Fit seconds of heldout's own method (Fusion) beside ODIN's and the meta-learner's, one sitting,
# on the CIC-IDS2017 sample (held out Botnet, seed 0): `heldout bench methods`. The meta-learner
# is timed for one episode (`bench methods` builds the reference-sized experiment with one
# episode); the reference's budget is 20 episodes of the same size. Writes
# bench/results/fusion-cost-<UTC date>.txt with the command, commit, date, machine and load.
# usage: bench/fusion_cost.sh        (needs cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/fusion-cost-$(date -u +%Y%m%d-%H%M%S).txt
{
  echo "# heldout bench methods: Fusion beside ODIN and the meta-learner (one episode), one sitting"
  echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit:  $(git rev-parse --short HEAD) ($(git status --porcelain --untracked-files=no | wc -l) files modified)"
  echo "machine: $(getconf _NPROCESSORS_ONLN) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
  echo
  echo "## target/release/heldout bench methods --methods MetaLearner,Odin,Fusion --repeat 2"
  target/release/heldout bench methods --methods MetaLearner,Odin,Fusion --repeat 2
  echo
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the end"
} 2>&1 | tee "$out"
echo "wrote $out"
