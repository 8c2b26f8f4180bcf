#!/usr/bin/env bash
# bench/cache.sh — a fully cached re-run of a large workflow against ninja's
# no-op build of the same DAG.
#
# Generates one DAG (bench/gen_workflow.py; default layers of 10,000 trivial
# steps) as workflow.toml and build.ninja, runs `sluice run` once and `ninja`
# once to fill the step cache and the build, then times REPEAT more of each:
# every step of the sluice re-run is restored from the cache (the script checks
# the summary says "N steps: N cached"), and ninja finds nothing to do. Reports
# the best wall time, the least CPU time (user + sys) and the largest peak RSS
# under GNU time, with the 1-minute load average, as a Markdown table.
#
# Target (issue "store"): the cached re-run of 10,000 steps in under 0.5 s.
#
# Environment:
#   SLUICE     sluice binary (default <repo>/build/sluice)
#   SHAPE      default layers;  N  default 10000;  JOBS  default 2
#   REPEAT     timed runs of each tool (default 5)
#   BENCH_TMP  work folder (default a fresh mktemp -d, removed at exit)
set -u -o pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd -P)
SLUICE=${SLUICE:-$ROOT/build/sluice}
SHAPE=${SHAPE:-layers}
N=${N:-10000}
JOBS=${JOBS:-2}
REPEAT=${REPEAT:-5}
TARGET=0.5

case "${1:-}" in
  -h|--help) sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "cache.sh: takes no arguments (see --help)" >&2; exit 2 ;;
esac
for tool in "$SLUICE" ninja /usr/bin/time python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "cache.sh: $tool is missing" >&2; exit 2; }
done

if [ -n "${BENCH_TMP:-}" ]; then WORK=$BENCH_TMP; mkdir -p "$WORK"; else WORK=$(mktemp -d); trap 'rm -rf -- "$WORK"' EXIT; fi
python3 "$BENCH_DIR/gen_workflow.py" --shape "$SHAPE" --steps "$N" --out "$WORK" -q || exit 1
cp "$SLUICE" "$WORK/sluice"  # a rebuild during the benchmark changes nothing

cd "$WORK" || exit 1
echo "filling the cache: sluice run of $SHAPE $N (-j $JOBS) ..." >&2
./sluice run -j "$JOBS" --home "$WORK/state" workflow.toml >/dev/null || { echo "cache.sh: the first run failed" >&2; exit 1; }
ninja -j "$JOBS" -C "$WORK" >/dev/null || { echo "cache.sh: ninja failed" >&2; exit 1; }

best() { sort -n | head -1; }
declare -A wall cpu rss load
for tool in sluice ninja; do : >"$WORK/$tool.times"; done
for ((r = 0; r < REPEAT; r++)); do
  l=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/t" ./sluice run -j "$JOBS" --home "$WORK/state" workflow.toml >"$WORK/run.log" 2>&1 ||
    { cat "$WORK/run.log" >&2; exit 1; }
  grep -q "^$N steps: $N cached" "$WORK/run.log" || { echo "cache.sh: the re-run was not fully cached:" >&2; tail -3 "$WORK/run.log" >&2; exit 1; }
  echo "$(cat "$WORK/t") $l" >>"$WORK/sluice.times"
  l=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/t" ninja -j "$JOBS" -C "$WORK" >"$WORK/run.log" 2>&1 || { cat "$WORK/run.log" >&2; exit 1; }
  grep -q "no work to do" "$WORK/run.log" || { echo "cache.sh: ninja had work to do" >&2; exit 1; }
  echo "$(cat "$WORK/t") $l" >>"$WORK/ninja.times"
done

echo "| tool | wall s (best) | cpu s (least) | peak RSS MB | load (range) | target |"
echo "|---|---:|---:|---:|---|---|"
for tool in sluice ninja; do
  f="$WORK/$tool.times"
  w=$(cut -d' ' -f1 "$f" | best)
  c=$(awk '{ printf "%.2f\n", $2 + $3 }' "$f" | best)
  m=$(awk '{ if ($4 > m) m = $4 } END { printf "%.1f", m / 1024 }' "$f")
  lr=$(awk 'NR == 1 { lo = hi = $5 } { if ($5 < lo) lo = $5; if ($5 > hi) hi = $5 } END { print lo "-" hi }' "$f")
  verdict="-"
  if [ "$tool" = sluice ]; then
    verdict=$(awk -v w="$w" -v t="$TARGET" 'BEGIN { print (w < t) ? "yes (< " t " s)" : "NO (target < " t " s)" }')
  fi
  label="sluice run, all $N cached"
  [ "$tool" = ninja ] && label="ninja no-op"
  echo "| $label | $w | $c | $m | $lr | $verdict |"
done
