#!/usr/bin/env bash
# Runs on a GPU machine over what bench/cuda/build.sh packed into dev/: the CUDA copies of the
# step-equivalence tests, the demo on GPU and CPU, `heldout bench episode` on GPU and CPU, and the
# PyTorch reference's timing on the same machine's CPU. Logs and run folders go to $OUT (or out/).
source bench/cuda/setup.sh device-check.log
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
nproc; grep -m1 'model name' /proc/cpuinfo
ldd ./heldout | grep -E 'not found|cuda|cublas|curand|nvrtc'
# the test binary reads its fixture below the checkout it was built in (BUILT_IN, /work/main)
built=${BUILT_IN:-/work/main}
[ -e "$built/tests/fixtures" ] || { mkdir -p "$(dirname "$built")" && ln -sfn "$(cd .. && pwd)" "$built"; }
echo "== step tests (CPU + CUDA) =="
timeout 120 ./heldout-tests step_tests --test-threads 1
echo "== demo =="
for dev in 'Cuda(0)' Cpu; do
  /usr/bin/time -f "demo $dev wall %e s, peak RSS %M KB" \
    timeout 120 ./heldout run --demo --out "$OUT/demo" --set "device=$dev" --set "name=\"demo-${dev//[()]/}\"" >/dev/null
done
for d in "$OUT"/demo/*/; do echo "-- $d"; sed -n '1,40p' "$d/summary.md"; done
echo "== bench episode =="
timeout 120 ./heldout bench episode --data-dir data --device cuda --out "$OUT/bench"
timeout 120 ./heldout bench episode --data-dir data --device cpu --out "$OUT/bench"
HELDOUT_THREADS=2 timeout 120 ./heldout bench episode --data-dir data --device cpu --out "$OUT/bench"
echo "== reference (PyTorch, CPU) =="
for t in 16 2; do
  REF_SHARED_DATA=$PWD/data timeout 150 python3 ref/run.py --dataset cicids2017 --method mdml \
    --episodes 3 --inner-epochs 1 --inner-per-family 2048 --families Botnet --seeds 0 \
    --threads $t --out "$OUT/ref$t" --tag t$t | tail -2
  python3 -c "import json,glob; c=json.load(open(glob.glob('$OUT/ref$t/raw/*.cost.json')[0]))
for r in c['mdml_timing']:
    e=r['episodes']; print('reference threads $t: s/episode %.2f  ms/inner %.1f  ms/outer %.1f  eval s/ep %.2f' % (r['episode_s']/e, 1e3*r['inner_s']/max(r['inner_steps'],1), 1e3*r['outer_s']/max(r['outer_steps'],1), r['eval_s']/e))"
done
