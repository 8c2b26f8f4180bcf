#!/usr/bin/env bash
# bench/history.sh — the run history at 1,000 runs: database size and the
# time of `sluice runs`, with real runs of a real workflow.
#
# Records RUNS runs (default 1,000) of a STEPS-step workflow (default 50: a
# chain of STEPS steps, each writing an output that holds the run id — so
# every run stores new artifacts — reading its predecessor's output as an
# input, and reporting a value and a metric) with `sluice run --no-cache`, so
# every step really runs and everything is recorded: steps, attempts with
# stored logs, transitions, values, metrics, artifacts, lineage, cache keys
# and entries, events. Then it checkpoints the WAL and reports the size of
# sluice.db, and times `sluice runs` (the default listing of 20),
# `sluice runs --limit 100 --json` and `sluice show` of a run, best of REPEAT.
#
# Targets (issue "store"): 1,000 runs of a 50-step workflow keep the database
# under 100 MB, and `sluice runs` answers in under 100 ms.
#
# Environment:
#   SLUICE     sluice binary (default <repo>/build/sluice)
#   RUNS       default 1000;  STEPS  default 50;  JOBS  default 2
#   REPEAT     timed calls of each read command (default 10)
#   BENCH_TMP  work folder (default a fresh mktemp -d, removed at exit)
set -u -o pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd -P)
SLUICE=${SLUICE:-$ROOT/build/sluice}
RUNS=${RUNS:-1000}
STEPS=${STEPS:-50}
JOBS=${JOBS:-2}
REPEAT=${REPEAT:-10}

case "${1:-}" in
  -h|--help) sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "history.sh: takes no arguments (see --help)" >&2; exit 2 ;;
esac
for tool in "$SLUICE" /usr/bin/time python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "history.sh: $tool is missing" >&2; exit 2; }
done

if [ -n "${BENCH_TMP:-}" ]; then WORK=$BENCH_TMP; mkdir -p "$WORK"; else WORK=$(mktemp -d); trap 'rm -rf -- "$WORK"' EXIT; fi
cp "$SLUICE" "$WORK/sluice"
cd "$WORK" || exit 1

{
  echo 'name = "history"'
  for ((i = 0; i < STEPS; i++)); do
    printf '[steps.s%03d]\n' "$i"
    if ((i == 0)); then
      printf 'run = "echo ${run.id} > ${outputs.o}; echo n=%d >> $SLUICE_VALUES; echo loss 0.%d >> $SLUICE_METRICS"\n' "$i" "$i"
    else
      printf 'run = "cat ${inputs.prev} > ${outputs.o}; echo %d >> ${outputs.o}; echo n=%d >> $SLUICE_VALUES; echo loss 0.%d >> $SLUICE_METRICS"\n' "$i" "$i" "$i"
      printf 'inputs = { prev = "${steps.s%03d.outputs.o}" }\n' "$((i - 1))"
    fi
    echo 'outputs = { o = "out.txt" }'
  done
} >workflow.toml

start=$(date +%s)
for ((r = 1; r <= RUNS; r++)); do
  ./sluice run --no-cache -j "$JOBS" --home "$WORK/state" workflow.toml >"$WORK/out" 2>&1 ||
    { cat "$WORK/out" >&2; exit 1; }
  # Work dirs are not part of the history; the CAS and the database are.
  rm -rf "$WORK/state/runs"
  ((r % 100 == 0)) && echo "recorded $r runs ($(($(date +%s) - start)) s)" >&2
done

python3 - "$WORK/state/sluice.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
runs = db.execute("select count(*) from runs").fetchone()[0]
steps = db.execute("select count(*) from steps").fetchone()[0]
print(f"runs recorded: {runs}, steps: {steps}")
EOF
db_mb=$(awk -v b="$(stat -c %s "$WORK/state/sluice.db")" 'BEGIN { printf "%.1f", b / 1e6 }')
cas_mb=$(du -sm "$WORK/state/cas" | cut -f1)
run_id=$(./sluice runs --home "$WORK/state" --limit 1 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["runs"][0]["id"])')

timed() {  # best wall time in ms of REPEAT calls of "$@"
  local best=""
  for ((i = 0; i < REPEAT; i++)); do
    /usr/bin/time -f '%e' -o "$WORK/t" "$@" >/dev/null 2>&1 || { echo "history.sh: $* failed" >&2; exit 1; }
    local ms
    ms=$(awk '{ printf "%d", $1 * 1000 }' "$WORK/t")
    if [ -z "$best" ] || ((ms < best)); then best=$ms; fi
  done
  echo "$best"
}

load=$(cut -d' ' -f1 /proc/loadavg)
t_runs=$(timed ./sluice runs --home "$WORK/state")
t_json=$(timed ./sluice runs --home "$WORK/state" --limit 100 --json)
t_show=$(timed ./sluice show --home "$WORK/state" "$run_id")

echo "| measure | value | target |"
echo "|---|---:|---|"
echo "| sluice.db after $RUNS runs of $STEPS steps (checkpointed) | $db_mb MB | $(awk -v v="$db_mb" 'BEGIN { print (v < 100) ? "yes (< 100 MB)" : "NO (< 100 MB)" }') |"
echo "| artifact store (outputs and logs) | $cas_mb MB | - |"
echo "| \`sluice runs\` (20 rows), best of $REPEAT | $t_runs ms | $( ((t_runs < 100)) && echo "yes (< 100 ms)" || echo "NO (< 100 ms)") |"
echo "| \`sluice runs --limit 100 --json\` | $t_json ms | - |"
echo "| \`sluice show RUN\` ($STEPS steps) | $t_show ms | - |"
echo "| load average at the reads | $load | - |"
echo "| recording $RUNS runs took | $(($(date +%s) - start)) s | - |"
