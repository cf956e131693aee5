#!/usr/bin/env bash
# The cost estimate (`heldout validate`'s "cost" block) against measurement: each unit's wall
# time and peak RSS (`heldout bench estimate`, which runs the experiment) on the built-in demo
# with every method, and on the CIC-IDS2017 sample (held out Botnet, seed 0, 2 episodes of the
# default meta-learner) with every method. Writes bench/results/estimate-<UTC date>.txt with the
# command, commit, date, machine and load. The speed constants in src/detect/*.rs were fitted
# from this output on the development machine.
#
# usage: bench/estimate.sh
# needs: cargo build --release; ../shared/data
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/estimate-$(date -u +%Y%m%d-%H%M%S).txt
bin=target/release/heldout
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  echo "# heldout bench estimate: estimated vs measured time and peak memory per unit"
  echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit:  $(git rev-parse --short HEAD) ($(git status --porcelain --untracked-files=no | wc -l) files modified)"
  echo "binary:  $bin built $(date -u -r "$bin" '+%Y-%m-%d %H:%M:%S UTC')"
  echo "machine: $(getconf _NPROCESSORS_ONLN) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
  echo
  echo "## $bin bench estimate experiments/demo.ron --compare all"
  "$bin" bench estimate experiments/demo.ron --compare all --out "$tmp" 2>&1
  echo
  echo "## $bin bench estimate experiments/cicids2017.ron --set 'seeds=[0]' --set 'episodes.count=2' --set 'roles.held_out=Fixed([\"Botnet\"])' --compare all"
  "$bin" bench estimate experiments/cicids2017.ron --set 'seeds=[0]' --set 'episodes.count=2' \
    --set 'roles.held_out=Fixed(["Botnet"])' --compare all --out "$tmp" 2>&1
  echo
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at end"
} | tee "$out"
echo "written: $out"
