#!/usr/bin/env bash
# Every speed figure the README quotes, measured in one sitting, each benchmark's raw output
# written to bench/results/KIND-<UTC stamp>.txt with a header (command, commit, date, machine,
# load before and after). bench/tables.py rebuilds the README's speed tables from these files.
#
#   load      heldout bench load (best of 3) + bench/pandas_load.py, 3 fresh processes per file
#             (README "Speed")
#   episode   heldout bench episode beside the reference's timing-only MDML run
#             (run.py --method mdml --episodes 3 --inner-epochs 1 --inner-per-family 2048
#             --families Botnet --seeds 0, its cost.json mdml_timing): the THREADS-thread rows
#             (heldout, heldout --checkpoint-cap 433, reference) alternating 3 times, then the
#             one-thread rows once each (README "Meta-learner speed")
#   methods   heldout bench methods --repeat 3 beside run.py --method M --seeds 0 --families
#             Botnet, 3 runs per method, one thread each side (README "Standard detectors' speed";
#             the same as bench/methods.sh PYTHON 1)
#   frames    the demo run + `heldout export` timing, then `heldout gui bench/frames.ron --tab live
#             --live histograms --start-run --exit-after 40` under Xvfb with Mesa's software
#             OpenGL; the frame statistics it prints on exit (README "Frame times"); the same
#             while a 1,000,000-row CSV loads (--load-data), and bench/frames-200.ron (200
#             episodes) for the live view's peak RSS
#
# usage: bench/run_all.sh PYTHON [SECTION ...]      (default: load episode methods frames)
#   PYTHON   a python with the reference's packages (torch, scikit-learn, pandas, pyod), e.g.
#              python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch numpy pandas scikit-learn pyod
#   env      THREADS   threads of the episode comparison's multi-thread rows (default 2)
#            DATA      the shared datasets (default ../shared/data)
#            NO_BUILD=1  use target/release/heldout as it is (default: cargo build --release first)
# needs: Xvfb for `frames` (apt-get install xvfb libgl1 libegl1; glxinfo from mesa-utils, if
#        installed, names the renderer), GNU time (/usr/bin/time)
# takes: ~12 min on the 2-core development machine (load ~4, episode ~2, methods ~4, frames ~2),
#        plus ~1 min the first time to generate the 690 MB CSV under target/bench-data/.
# Run it on a quiet machine: the header records the load average before and after each section.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:?give a python with the reference packages (see the header)}
shift
SECTIONS=("$@")
[ ${#SECTIONS[@]} -gt 0 ] || SECTIONS=(load episode methods frames)
for s in "${SECTIONS[@]}"; do
  case $s in load | episode | methods | frames) ;; *) echo "unknown section: $s (load episode methods frames)" >&2; exit 2 ;; esac
done
ref=../shared/reference
D=${DATA:-../shared/data}
T=${THREADS:-2}
CAP=433 # rows per class and family in heldout's checkpoint pools = the reference's checkpoint work
BIN=target/release/heldout
stamp=$(date -u +%Y%m%d-%H%M%S)
tmp=$(mktemp -d)
xpid=
cleanup() {
  [ -z "$xpid" ] || kill "$xpid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
export REF_SHARED_DATA
REF_SHARED_DATA=$(cd "$D" && pwd)

[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release" >&2; exit 1; }

commit() {
  local c
  c=$(git rev-parse --short HEAD)
  [ -z "$(git status --porcelain --untracked-files=no)" ] || c="$c-dirty"
  echo "$c"
}
load_now() { echo "$(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"; }
# header TITLE COMMAND: the block every raw file starts with (bench/tables.py reads these keys)
header() {
  echo "# $1"
  echo "command: $2"
  echo "sitting: bench/run_all.sh $PY ${SECTIONS[*]} (THREADS=$T), stamp $stamp"
  echo "commit:  $(commit) (binary $BIN built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S UTC'))"
  echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "uname:   $(uname -a)"
  echo "machine: $(getconf _NPROCESSORS_ONLN) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "load:    $(load_now) at start"
}
footer() {
  echo
  echo "load:    $(load_now) at end"
}
# section NAME TITLE COMMAND FUNCTION: runs FUNCTION with the header and footer into
# bench/results/NAME-<stamp>.txt (written as .partial first: a failed section leaves no file
# that bench/tables.py would read)
section() {
  local out=bench/results/$1-$stamp.txt
  mkdir -p bench/results
  { header "$2" "$3"; "$4"; footer; } 2>&1 | tee "$out.partial"
  mv "$out.partial" "$out"
  echo "written: $out"
  echo
}
versions() { "$PY" -c "
import importlib, sys
out = ['python ' + sys.version.split()[0]]
for m in sys.argv[1:]:
    try:
        out.append(m + ' ' + importlib.import_module(m).__version__)
    except Exception as e:
        out.append(m + ' (' + type(e).__name__ + ')')
print(', '.join(out))" "$@"; }

# ------------------------------------------------------------------------------------------------
kdd=$D/kddcup99_10percent/kddcup.data_10_percent.csv.gz
kdd_map=$D/kddcup99_10percent/attack_family_map.csv
sec_load() {
  echo "versions: $(versions pandas numpy)"
  echo
  echo "## heldout: $BIN bench load --data-dir $D --repeat 3"
  "$BIN" bench load --data-dir "$D" --repeat 3
  echo
  echo "## pandas: $PY bench/pandas_load.py FILE LABEL [MAP], 3 fresh processes per file (peak_mb: ru_maxrss in MiB)"
  for _ in 1 2 3; do "$PY" bench/pandas_load.py "$kdd" attack "$kdd_map"; done
  for _ in 1 2 3; do "$PY" bench/pandas_load.py "$cic" Label; done
}

# ------------------------------------------------------------------------------------------------
# heldout_episode THREADS CAP|- RUN
heldout_episode() {
  local t=$1 cap=$2 run=$3 args=() env=(HELDOUT_THREADS="$1") name=heldout
  if [ "$cap" != - ]; then args=(--checkpoint-cap "$cap"); name=heldout-cap$cap; fi
  [ "$t" != 1 ] || env+=(RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1)
  echo "## $name threads=$t run=$run: ${env[*]} $BIN bench episode --data-dir $D ${args[*]}"
  env "${env[@]}" "$BIN" bench episode --data-dir "$D" --out "$tmp/bench-runs" "${args[@]}"
  echo
}
# reference_episode THREADS RUN
reference_episode() {
  local t=$1 run=$2 o=$tmp/ref-$1-$2
  local cmd=(run.py --dataset cicids2017 --method mdml --episodes 3 --inner-epochs 1
    --inner-per-family 2048 --families Botnet --seeds 0 --threads "$t")
  echo "## reference threads=$t run=$run: OMP_NUM_THREADS=$t python ${cmd[*]} (its cost.json)"
  OMP_NUM_THREADS=$t "$PY" "$ref/run.py" "${cmd[@]:1}" --out "$o" > "$o.log" 2>&1 || { cat "$o.log"; return 1; }
  tail -1 "$o.log"
  "$PY" - "$o/raw/cicids2017__mdml.cost.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
for r in c["mdml_timing"]:
    e = r["episodes"]
    print("reference mdml_timing:", json.dumps(r, sort_keys=True))
    print(f"reference: s/episode {r['episode_s'] / e:.3f}  "
          f"ms/inner {1e3 * r['inner_s'] / max(r['inner_steps'], 1):.2f}  "
          f"ms/outer {1e3 * r['outer_s'] / max(r['outer_steps'], 1):.2f}  "
          f"eval s/ep {r['eval_s'] / e:.3f}  "
          f"rest s/ep {(r['episode_s'] - r['inner_s'] - r['outer_s']) / e:.3f}  "
          f"inner steps/ep {r['inner_steps'] / e:.1f}  outer steps/ep {r['outer_steps'] / e:.1f}  "
          f"peak MiB {c['peak_rss_mib']:.0f}  threads {c['threads']}")
PYEOF
  echo
}
sec_episode() {
  echo "versions: $(versions torch numpy)"
  echo
  for run in 1 2 3; do
    heldout_episode "$T" - "$run"
    heldout_episode "$T" "$CAP" "$run"
    reference_episode "$T" "$run"
  done
  if [ "$T" != 1 ]; then
    heldout_episode 1 - 1
    heldout_episode 1 "$CAP" 1
    reference_episode 1 1
  fi
}

# ------------------------------------------------------------------------------------------------
# the same as bench/methods.sh PYTHON 1 (same output below the header)
sec_methods() (
  export HELDOUT_THREADS=1 RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 OMP_NUM_THREADS=1
  echo "versions: $(versions torch sklearn pyod numpy)"
  echo
  echo "## heldout: $BIN bench methods --data-dir $D --repeat 3"
  "$BIN" bench methods --data-dir "$D" --repeat 3
  echo
  echo "## reference: run.py --dataset cicids2017 --method M --seeds 0 --families Botnet --threads 1"
  mkdir -p "$tmp/methods/raw"
  for m in iforest ecod ocsvm deepsvdd deepsad devnet mlp_fewshot mlp_full odin; do
    for rep in 1 2 3; do
      "$PY" "$ref/run.py" --dataset cicids2017 --method "$m" --seeds 0 --families Botnet \
        --threads 1 --out "$tmp/methods" --tag "_r$rep" > /dev/null
    done
  done
  "$PY" - "$tmp/methods/raw" <<'PYEOF'
import csv, glob, json, os, sys
raw = sys.argv[1]
print(f"{'method':<24} {'fit s':>9} {'score s':>9} {'AUC':>7} {'peak MiB':>9}")
for f in sorted(glob.glob(os.path.join(raw, "*.csv"))):
    cost = json.load(open(f[:-4] + ".cost.json"))
    for r in csv.DictReader(open(f)):
        print(f"{r['method']:<24} {float(r['fit_seconds']):>9.3f} {float(r['score_seconds']):>9.3f} "
              f"{float(r['auc']):>7.3f} {cost['peak_rss_mib']:>9.0f}  ({os.path.basename(f)})")
PYEOF
)

# ------------------------------------------------------------------------------------------------
# timed LABEL COMMAND...: runs COMMAND (stdout kept), then "LABEL: wall S s, peak RSS K KB"
timed() {
  local label=$1
  shift
  /usr/bin/time -f "$label: wall %e s, peak RSS %M KB" "$@"
}
sec_frames() {
  echo
  echo "## experiment: bench/frames.ron (as run)"
  sed 's/^/    /' bench/frames.ron
  echo
  echo "## demo: $BIN run --demo --out TMP, then $BIN export RUN --format both"
  timed "run --demo" "$BIN" run --demo --out "$tmp/demo" > /dev/null
  local run
  run=$(ls -d "$tmp"/demo/*/ | head -1)
  timed "export" "$BIN" export "$run" --format both
  echo
  Xvfb -displayfd 3 -screen 0 1600x1000x24 -nolisten tcp 3> "$tmp/display" > /dev/null 2>&1 &
  xpid=$!
  # this runs in the section's subshell: stop this Xvfb (by its id) however the subshell ends
  trap '[ -z "$xpid" ] || kill "$xpid" 2> /dev/null || true' EXIT
  for _ in $(seq 100); do [ -s "$tmp/display" ] && break; sleep 0.1; done
  [ -s "$tmp/display" ] || { echo "Xvfb did not start" >&2; return 1; }
  local disp=:$(cat "$tmp/display")
  mkdir -p "$tmp/xdg"
  echo "## gui: DISPLAY=$disp LIBGL_ALWAYS_SOFTWARE=1 XDG_DATA_HOME=TMP $BIN gui bench/frames.ron --tab live --live histograms --start-run --size 1400x900 --exit-after 40"
  echo "renderer: $(DISPLAY=$disp LIBGL_ALWAYS_SOFTWARE=1 glxinfo -B 2> /dev/null | grep -m1 'OpenGL renderer' | cut -d: -f2 | sed 's/^ //' || echo '(unknown: glxinfo not installed)')"
  # a fresh XDG_DATA_HOME: no restored session (window size, panels) and the user's is untouched
  DISPLAY=$disp LIBGL_ALWAYS_SOFTWARE=1 XDG_DATA_HOME=$tmp/xdg \
    timeout 180 "$BIN" gui bench/frames.ron --tab live --live histograms --start-run \
    --size 1400x900 --exit-after 40 2>&1 | tee "$tmp/gui.log"
  if ! grep -q 'during: running' "$tmp/gui.log"; then
    echo "WARNING: the run was not training when the window closed: some frames were drawn idle (make bench/frames.ron longer)"
  fi
  echo
  # issue 14: the UI while a run streams AND a 1,000,000-row CSV loads (made by `bench load
  # --generate-only`, 690 MB) — the loading starts with the window, the run with it
  echo "## gui under both loads: ... $BIN gui bench/frames.ron --tab live --live histograms --start-run --load-data $cic --size 1400x900 --exit-after 40"
  rm -rf "$tmp/xdg" && mkdir -p "$tmp/xdg"
  DISPLAY=$disp LIBGL_ALWAYS_SOFTWARE=1 XDG_DATA_HOME=$tmp/xdg \
    timeout 180 "$BIN" gui bench/frames.ron --tab live --live histograms --start-run \
    --load-data "$cic" --size 1400x900 --exit-after 40 2>&1 | tee "$tmp/gui2.log"
  echo
  # a run with 20x one unit's checkpoint data (200 episodes): the live view's memory
  echo "## gui, 200 episodes: ... $BIN gui bench/frames-200.ron --tab live --live histograms --start-run --size 1400x900 --exit-after 150"
  rm -rf "$tmp/xdg" && mkdir -p "$tmp/xdg"
  DISPLAY=$disp LIBGL_ALWAYS_SOFTWARE=1 XDG_DATA_HOME=$tmp/xdg \
    timeout 300 "$BIN" gui bench/frames-200.ron --tab live --live histograms --start-run \
    --size 1400x900 --exit-after 150 2>&1 | tee "$tmp/gui3.log"
  kill "$xpid" 2> /dev/null || true
  wait "$xpid" 2> /dev/null || true
  xpid=
}

# ------------------------------------------------------------------------------------------------
for s in "${SECTIONS[@]}"; do
  case $s in
    load)
      cic=$("$BIN" bench load --generate-only) # made once under target/bench-data/, before timing
      section load "heldout bench load beside pandas, one sitting" \
        "$BIN bench load --data-dir $D --repeat 3; $PY bench/pandas_load.py (3 runs per file)" sec_load
      ;;
    episode)
      section episode "heldout bench episode beside the reference's timing-only MDML run, one sitting, $T thread(s) alternating 3 times, then 1 thread once each" \
        "HELDOUT_THREADS=N $BIN bench episode [--checkpoint-cap $CAP]; python $ref/run.py --dataset cicids2017 --method mdml --episodes 3 --inner-epochs 1 --inner-per-family 2048 --families Botnet --seeds 0 --threads N" sec_episode
      ;;
    methods)
      section methods "heldout bench methods beside the reference, one sitting, 1 thread(s) each" \
        "$BIN bench methods --repeat 3; python $ref/run.py --dataset cicids2017 --method M --seeds 0 --families Botnet --threads 1 (3 runs each)" sec_methods
      ;;
    frames)
      command -v Xvfb > /dev/null || { echo "frames needs Xvfb: apt-get install xvfb libgl1 libegl1" >&2; exit 1; }
      "$BIN" validate bench/frames.ron > /dev/null
      "$BIN" validate bench/frames-200.ron > /dev/null
      cic=$("$BIN" bench load --generate-only)
      section frames "workbench frame times under Xvfb (software OpenGL) while bench/frames.ron trains; demo export time" \
        "$BIN run --demo; $BIN export RUN --format both; $BIN gui bench/frames.ron --tab live --live histograms --start-run --size 1400x900 --exit-after 40" sec_frames
      ;;
  esac
done
echo "rebuild the README's tables: python3 bench/tables.py --write"
