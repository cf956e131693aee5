#!/usr/bin/env bash
# Fuzzes one entry point of src/fuzz.rs with libFuzzer (cargo-fuzz, nightly toolchain) for
# SECONDS, looking for panics (integer overflow included: built with debug assertions), hangs
# (-timeout=10 per input) and memory blow-ups (-rss_limit_mb=4096). No sanitizer: the code is
# safe Rust, so AddressSanitizer would only slow the build and the run.
#
# usage: bench/fuzz.sh TARGET SECONDS
#   TARGET: loader | experiment_ron | set_override | scores_csv
#   e.g.   bench/fuzz.sh loader 600
#
# The seeds (fuzz/corpus_seed/TARGET and the regression inputs tests/fixtures/fuzz/TARGET) are
# copied into the working corpus fuzz/corpus/TARGET first (kept between runs, not committed).
# Findings land in fuzz/artifacts/TARGET/; reproduce one with
#   cargo +nightly fuzz run -s none --debug-assertions --codegen-units 16 --fuzz-dir fuzz TARGET FILE
# and keep it as a regression test in tests/fuzz.rs.
#
# Writes bench/results/fuzz-TARGET-<UTC date>.txt: the command, commit, date, machine and load,
# then libFuzzer's output (its `#N NEW` / `#N REDUCE` corpus lines counted, not copied) with the
# final stats, and prints executions and findings at the end. The first build takes ~30 min
# (polars, candle and egui with coverage instrumentation, into fuzz/target).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:?usage: bench/fuzz.sh TARGET SECONDS (TARGET: loader, experiment_ron, set_override, scores_csv)}
S=${2:?usage: bench/fuzz.sh TARGET SECONDS}
case $T in
  loader | experiment_ron | set_override | scores_csv) ;;
  *) echo "bench/fuzz.sh: unknown target '$T' — one of loader, experiment_ron, set_override, scores_csv" >&2; exit 2 ;;
esac
[[ $S =~ ^[0-9]+$ ]] || { echo "bench/fuzz.sh: SECONDS must be a whole number, not '$S'" >&2; exit 2; }
command -v cargo-fuzz > /dev/null || cargo install cargo-fuzz --locked

flags=(-s none --debug-assertions --codegen-units 16 --fuzz-dir fuzz)
libfuzzer=(-max_total_time="$S" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1)
stamp=$(date -u +%Y%m%d-%H%M%S)
out=bench/results/fuzz-$T-$stamp.txt
raw=fuzz/artifacts/fuzz-$T-$stamp.log
mkdir -p "fuzz/corpus/$T" "fuzz/artifacts/$T" bench/results
for f in fuzz/corpus_seed/"$T"/* tests/fixtures/fuzz/"$T"/*; do
  [ -f "$f" ] && [ ! -e "fuzz/corpus/$T/$(basename "$f")" ] && cp "$f" "fuzz/corpus/$T/"
done

echo "building fuzz target $T (log: fuzz/artifacts/build-$T.log)"
cargo +nightly fuzz build "${flags[@]}" "$T" > "fuzz/artifacts/build-$T.log" 2>&1 \
  || { tail -30 "fuzz/artifacts/build-$T.log"; exit 1; }

before=$(ls "fuzz/artifacts/$T" | sort)
corpus_before=$(ls "fuzz/corpus/$T" | wc -l)
cmd="cargo +nightly fuzz run ${flags[*]} $T fuzz/corpus/$T -- ${libfuzzer[*]}"
{
  echo "# bench/fuzz.sh $T $S: libFuzzer on heldout::fuzz::$T"
  echo "command: $cmd"
  echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit:  $(git rev-parse --short HEAD) ($(git status --porcelain --untracked-files=no | wc -l) tracked files modified)"
  echo "machine: $(uname -a)"
  echo "cores:   $(getconf _NPROCESSORS_ONLN), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "load:    $(cat /proc/loadavg) at start"
  echo "corpus:  $corpus_before inputs at start (fuzz/corpus/$T)"
  echo
} > "$out"
cat "$out"
set +e
cargo +nightly fuzz run "${flags[@]}" "$T" "fuzz/corpus/$T" -- "${libfuzzer[@]}" > "$raw" 2>&1
rc=$?
set -e
findings=$(comm -13 <(echo "$before") <(ls "fuzz/artifacts/$T" | sort) | sed "s|^|fuzz/artifacts/$T/|")
# (a crash or timeout ends the run without the "Done" line: no seconds then)
units=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$raw" | grep -o '[0-9]*$' | tail -1 || true)
secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$raw" | awk '{print $5}' | tail -1 || true)
{
  echo "## libFuzzer output ($(grep -cE '^#[0-9]+[[:space:]]+(NEW|REDUCE)' "$raw") '#N NEW'/'#N REDUCE' lines and $(grep -c '^heldout-fuzz: ' "$raw") 'heldout-fuzz:' panic lines left out; full log: $raw)"
  grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE)|^heldout-fuzz: ' "$raw"
  if grep -q '^heldout-fuzz: ' "$raw"; then
    echo
    echo "## panics printed by the loader target's hook: caught by data::load (polars' Parquet reader) unless"
    echo "## libFuzzer reports a crash above; count and message"
    # (awk, not head: head would stop the pipe early, and pipefail end the script)
    grep '^heldout-fuzz: ' "$raw" | sort | uniq -c | sort -rn | awk 'NR <= 20'
    echo "($(grep '^heldout-fuzz: ' "$raw" | sort -u | wc -l) distinct lines)"
  fi
  echo
  echo "## summary"
  echo "exit code:  $rc"
  echo "executions: ${units:-?} in ${secs:-?} s ($( [ -n "${units:-}" ] && [ -n "${secs:-}" ] && [ "$secs" -gt 0 ] && echo "$((units / secs))" || echo "?") exec/s)"
  echo "corpus:     $(ls "fuzz/corpus/$T" | wc -l) inputs at end"
  echo "findings:   $( [ -n "$findings" ] && echo "$findings" | wc -l || echo 0)"
  [ -n "$findings" ] && echo "$findings"
  echo "load:       $(cat /proc/loadavg) at end"
} >> "$out"
sed -n '/^## summary/,$p' "$out"
echo "written: $out"
exit "$rc"
