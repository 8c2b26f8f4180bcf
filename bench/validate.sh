#!/usr/bin/env bash
# bench/validate.sh — `sluice validate` against `ninja -n` on generated DAGs.
#
# For each workload it generates workflow.toml + build.ninja (bench/gen_workflow.py)
# into a temporary directory, then runs `sluice validate workflow.toml` and
# `ninja -n -C DIR` BENCH_RUNS times each under GNU time and reports the best
# wall time, the least CPU time (user + sys) and the peak RSS (the largest
# seen over the runs). On a loaded machine wall time inflates and CPU time
# does not; the target is stated in wall time, so run it on a quiet machine.
#
# Target (issue "foundation"): `sluice validate` of the 100,000-step layered
# workflow in under 2 s wall and under 500 MB peak RSS.
#
# Environment:
#   SLUICE            sluice binary (default: <repo>/build/sluice)
#   BENCH_RUNS        runs per measurement, best wall time wins (default 3)
#   BENCH_WORKLOADS   space-separated shape:steps list
#                     (default "layers:1000 layers:10000 layers:100000 wide:100000 chain:100000")
#   BENCH_TIMEOUT     seconds before one run is killed (default 300)
#   BENCH_TMP         where to generate (default: a fresh mktemp -d, removed at exit)
#   BENCH_KEEP=1      keep the generated files
#   BENCH_NINJA=0     skip ninja;  BENCH_SLUICE=0  skip sluice
#
# Exit status: 0 if sluice validated every generated workflow (whether or not
# the target held), 1 if sluice failed, crashed or timed out on one, 2 if the
# sluice binary or a needed tool is missing.
set -u -o pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd -P)
SLUICE=${SLUICE:-$ROOT/build/sluice}
RUNS=${BENCH_RUNS:-3}
WORKLOADS=${BENCH_WORKLOADS:-"layers:1000 layers:10000 layers:100000 wide:100000 chain:100000"}
TIMEOUT=${BENCH_TIMEOUT:-300}
DO_NINJA=${BENCH_NINJA:-1}
DO_SLUICE=${BENCH_SLUICE:-1}
TARGET_WORKLOAD="layers:100000"
TARGET_WALL=2       # seconds
TARGET_RSS_MB=500

case "${1:-}" in
  -h|--help) sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "validate.sh: takes no arguments (see --help)" >&2; exit 2 ;;
esac

GNU_TIME=/usr/bin/time
if ! "$GNU_TIME" -f '%e %M' true >/dev/null 2>&1; then
  echo "validate.sh: GNU time not found at $GNU_TIME (Debian: apt-get install -y time)" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "validate.sh: python3 not found" >&2; exit 2; }
if [ "$DO_NINJA" = 1 ] && ! command -v ninja >/dev/null; then
  echo "validate.sh: ninja not found; skipping it (BENCH_NINJA=0)" >&2
  DO_NINJA=0
fi
status=0
if [ "$DO_SLUICE" = 1 ]; then
  case "$SLUICE" in /*) ;; *) SLUICE=$(pwd -P)/$SLUICE ;; esac
  if [ ! -x "$SLUICE" ]; then
    echo "validate.sh: sluice binary not found at $SLUICE (build it, or set SLUICE=...); measuring ninja only" >&2
    DO_SLUICE=0
    status=2
  fi
fi

if [ -n "${BENCH_TMP:-}" ]; then
  WORK=$BENCH_TMP; mkdir -p "$WORK"
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
  if [ "${BENCH_KEEP:-0}" != 1 ]; then trap 'rm -rf -- "$WORK"' EXIT; fi
fi

# measure NAME DIR CMD...: runs CMD in DIR RUNS times; sets M_WALL (best), M_RSS_KB (max),
# M_CPU (least user+sys), M_RC (first non-zero exit status, or 0) and M_NOTE. Output goes to $DIR/NAME.out/.err.
measure() {
  local name=$1 dir=$2; shift 2
  local i tf line wall rss cpu rc
  M_WALL=""; M_CPU=""; M_RSS_KB=0; M_RC=0; M_NOTE=""
  tf=$WORK/.time
  for ((i = 0; i < RUNS; i++)); do
    ( cd -- "$dir" && exec "$GNU_TIME" -o "$tf" -f '%e %M %U %S' timeout "$TIMEOUT" "$@" \
        >"$dir/$name.out" 2>"$dir/$name.err" )
    rc=$?
    line=$(tail -n 1 "$tf" 2>/dev/null)
    read -r wall rss cpu_u cpu_s <<<"$line"
    cpu=$(awk -v u="${cpu_u:-0}" -v s="${cpu_s:-0}" 'BEGIN { printf "%.2f", u + s }')
    if [ "$rc" -ne 0 ]; then
      M_RC=$rc
      [ "$rc" -eq 124 ] && M_NOTE="timed out after ${TIMEOUT}s"
      [ "$rc" -eq 126 ] && M_NOTE="cannot execute $1"
      [ "$rc" -eq 127 ] && M_NOTE="$1 not found (rebuilt during the run?)"
      [ "$rc" -gt 128 ] && M_NOTE="killed by signal $((rc - 128))"
      [ -z "$M_NOTE" ] && M_NOTE="exit $rc"
      M_WALL=$wall; M_RSS_KB=${rss:-0}; M_CPU=$cpu
      return
    fi
    if [ -z "$M_WALL" ] || awk -v a="$wall" -v b="$M_WALL" 'BEGIN { exit !(a < b) }'; then
      M_WALL=$wall
    fi
    if [ -z "$M_CPU" ] || awk -v a="$cpu" -v b="$M_CPU" 'BEGIN { exit !(a < b) }'; then
      M_CPU=$cpu
    fi
    [ "$rss" -gt "$M_RSS_KB" ] && M_RSS_KB=$rss
  done
}

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $M_CPU | $4 | $5 |"); }

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
echo "# sluice validate benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# machine: $(nproc) cores, ${cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
[ "$DO_SLUICE" = 1 ] && echo "# sluice: $SLUICE"
[ "$DO_NINJA" = 1 ] && echo "# ninja: $(ninja --version)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# best of $RUNS runs (wall s: best wall; cpu s: least user+sys); peak RSS is the largest over the runs; files in $WORK"
echo

target_result="not measured"
for wl in $WORKLOADS; do
  shape=${wl%%:*}; steps=${wl#*:}
  dir=$WORK/${shape}_$steps
  label="$shape $steps"
  if ! python3 "$BENCH_DIR/gen_workflow.py" -q --shape "$shape" --steps "$steps" --out "$dir"; then
    echo "validate.sh: generating $wl failed" >&2; exit 2
  fi
  echo "== $label ($(du -h "$dir/workflow.toml" | cut -f1) workflow.toml)" >&2

  if [ "$DO_SLUICE" = 1 ]; then
    measure sluice "$dir" "$SLUICE" validate workflow.toml
    verdict="-"
    if [ "$M_RC" -ne 0 ]; then
      echo "  sluice validate FAILED ($M_NOTE); stderr:" >&2
      head -n 20 "$dir/sluice.err" | sed 's/^/    /' >&2
      row "$label" "sluice validate" "${M_WALL:-?}" "$(mb "${M_RSS_KB:-0}")" "FAILED: $M_NOTE"
      status=1
      [ "$wl" = "$TARGET_WORKLOAD" ] && target_result="NO (sluice validate failed: $M_NOTE)"
    else
      if [ "$wl" = "$TARGET_WORKLOAD" ]; then
        if awk -v w="$M_WALL" -v r="$M_RSS_KB" -v tw="$TARGET_WALL" -v tr="$TARGET_RSS_MB" \
             'BEGIN { exit !(w < tw && r / 1024 < tr) }'; then
          verdict="yes (< ${TARGET_WALL} s, < ${TARGET_RSS_MB} MB)"; target_result="yes"
        else
          verdict="NO (target < ${TARGET_WALL} s, < ${TARGET_RSS_MB} MB)"; target_result="NO"
        fi
      fi
      row "$label" "sluice validate" "$M_WALL" "$(mb "$M_RSS_KB")" "$verdict"
    fi
    echo "  sluice validate: ${M_WALL:-?} s wall, ${M_CPU:-?} s cpu, $(mb "${M_RSS_KB:-0}") MB" >&2
  fi

  if [ "$DO_NINJA" = 1 ]; then
    measure ninja "$dir" ninja -n -C .
    note="-"
    if [ "$M_RC" -gt 128 ] && [ "$M_RC" -ne 124 ]; then
      # ninja recurses once per dependency level: a 100k chain overflows the
      # default 8 MB stack. Retry with an unlimited stack and say so.
      echo "  ninja -n: $M_NOTE at the default stack size; retrying with ulimit -s unlimited" >&2
      measure ninja "$dir" bash -c 'ulimit -s unlimited && exec ninja -n -C .'
      note="crashes at default 8 MB stack; figures with ulimit -s unlimited"
    fi
    if [ "$M_RC" -ne 0 ]; then
      note="FAILED: $M_NOTE"
      head -n 5 "$dir/ninja.err" | sed 's/^/    /' >&2
    fi
    row "$label" "ninja -n" "${M_WALL:-?}" "$(mb "${M_RSS_KB:-0}")" "$note"
    echo "  ninja -n: ${M_WALL:-?} s wall, ${M_CPU:-?} s cpu, $(mb "${M_RSS_KB:-0}") MB" >&2
  fi
done

echo "| workload | tool | wall s | cpu s | peak RSS MB | target / note |"
echo "|---|---|---:|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "target: sluice validate of $TARGET_WORKLOAD steps in < ${TARGET_WALL} s and < ${TARGET_RSS_MB} MB peak RSS: $target_result"
exit "$status"
