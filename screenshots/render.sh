#!/usr/bin/env bash
# Renders the workbench's main views in a real window under Xvfb (eframe + glow on Mesa's
# software OpenGL) and writes PNGs into screenshots/. Each view is a separate
# `heldout gui ... --screenshot FILE` that waits until loading/opening has settled, grabs the
# frame through egui's screenshot command, writes the PNG and closes.
#
# Needs: Xvfb (apt-get install xvfb). Takes ~2 minutes after the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v Xvfb >/dev/null || { echo "screenshots/render.sh needs Xvfb: apt-get install xvfb" >&2; exit 1; }
cargo build --release --quiet
BIN="$PWD/target/release/heldout"
OUT="$PWD/screenshots"
RUNS="$(mktemp -d)"
# a real run to show: the built-in demo, two seeds
"$BIN" run --demo --out "$RUNS" --set 'seeds=[0, 1]' >/dev/null
RUN="$(ls -d "$RUNS"/*/ | head -1)"

Xvfb :97 -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
XPID=$!
trap 'kill $XPID 2>/dev/null; rm -rf "$RUNS"' EXIT
sleep 1
export DISPLAY=:97 LIBGL_ALWAYS_SOFTWARE=1
SIZE=1500x940
shot() { local name=$1; shift; "$BIN" gui --size "$SIZE" --screenshot "$OUT/$name.png" "$@"; echo "wrote screenshots/$name.png"; }
shot data --tab data
shot roles --tab experiment
shot live_histograms --open-run "$RUN" --tab live --live histograms
shot live_curves --open-run "$RUN" --tab live --live curves
shot live_training --open-run "$RUN" --tab live --live training
shot live_pcgrad --open-run "$RUN" --tab live --live pcgrad
shot results --open-run "$RUN" --tab results
shot runs --open-run "$RUN" --tab runs
shot playground --tab playground
