#!/usr/bin/env bash
# Third GPU check: where the GPU starts to pay. The CIC-IDS2017 experiment (Botnet held out,
# seed 0, 5 episodes, reduced inner budget) with the default encoder (256 wide) and a 4× wider
# one (1024), on the GPU and on the same machine's CPU.
source bench/cuda/setup.sh device-check-3.log
D=$PWD/data/cicids2017_improved_sample
cic=(../experiments/cicids2017.ron --set "data.File.path=\"$D/cicids2017_improved_sample.csv.gz\""
  --set "data.File.family_map=\"$D/family_map.csv\"" --set 'roles.held_out=Fixed(["Botnet"])'
  --set 'seeds=[0]' --set 'compare=[]' --set episodes.count=5
  --set method.MetaLearner.inner_epochs=1 --set method.MetaLearner.inner_per_family=2048)
# warm-up: candle's kernels are compiled from PTX at their first load (cached afterwards)
timeout 120 ./heldout run --demo --set 'device=Cuda(0)' --set episodes.count=1 --out "$OUT/warm" > /dev/null 2>&1
for width in 256 1024; do
  for dev in 'Cuda(0)' Cpu; do
    name="w$width-${dev//[()]/}"
    /usr/bin/time -f "$name: wall %e s, peak RSS %M KB" timeout 150 ./heldout run "${cic[@]}" \
      --set "method.MetaLearner.enc_hidden=$width" --set "device=$dev" --set "name=\"$name\"" \
      --out "$OUT/runs" > "$OUT/$name.out" 2>&1 || tail -3 "$OUT/$name.out"
    grep -h 'held out' "$OUT/$name.out"
  done
done
