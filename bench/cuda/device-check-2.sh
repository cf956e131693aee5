#!/usr/bin/env bash
# Second GPU check (after `--set device=Cuda(0)` was fixed): the same experiments on GPU and CPU
# with identical files, and whether the GPU repeats its own numbers.
source bench/cuda/setup.sh device-check-2.log
run() { # name, device, extra args...
  local name=$1 dev=$2; shift 2
  /usr/bin/time -f "$name wall %e s, peak RSS %M KB" timeout 200 ./heldout run "$@" --out "$OUT/runs" \
    --set "device=$dev" --set "name=\"$name\"" > "$OUT/$name.out" 2>&1 || tail -5 "$OUT/$name.out"
  tail -1 "$OUT/$name.out"
}
run demo-gpu-a 'Cuda(0)' --demo
run demo-gpu-b 'Cuda(0)' --demo
run demo-cpu Cpu --demo
D=$PWD/data/cicids2017_improved_sample
cic=(../experiments/cicids2017.ron --set "data.File.path=\"$D/cicids2017_improved_sample.csv.gz\""
  --set "data.File.family_map=\"$D/family_map.csv\"" --set 'roles.held_out=Fixed(["Botnet"])'
  --set 'seeds=[0]' --set method.MetaLearner.inner_epochs=1 --set method.MetaLearner.inner_per_family=2048)
run cic-botnet-gpu 'Cuda(0)' "${cic[@]}"
run cic-botnet-cpu Cpu "${cic[@]}"
cd "$OUT/runs"
for d in */; do echo "== $d $(cat $d/status.txt 2>/dev/null | head -1)"; grep -E '^\| (macro|Botnet) ' "$d/summary.md"; done
a=$(ls -d demo-gpu-a-*/); b=$(ls -d demo-gpu-b-*/)
for f in metrics.csv checkpoints.csv scores.csv; do cmp -s "$a/$f" "$b/$f" && echo "GPU repeat: $f identical" || echo "GPU repeat: $f DIFFERS"; done
