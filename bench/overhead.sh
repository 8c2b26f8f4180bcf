#!/usr/bin/env bash
# bench/overhead.sh — the local executor's overhead: `sluice run` against
# `xargs -P`, ninja and make running the same DAG of trivial steps.
#
# For each shape and size it generates workflow.toml, build.ninja, Makefile and
# commands.txt (bench/gen_workflow.py), then runs, each time in a fresh folder
# holding only the tool's input file (no tool ever sees outputs of an earlier
# run, so ninja and make really run every step):
#   sluice   sluice run -j JOBS --home <run>/state workflow.toml
#   xargs    xargs -P JOBS -I{} sh -c {} < commands.txt   (ignores the DAG: the floor)
#   ninja    ninja -j JOBS -C <run>
#   make     make -j JOBS -C <run>
# under GNU time (wall, user+sys CPU of the tool and all its steps, peak RSS
# of the largest process), and checks that the run produced all N outputs
# (out/sNNNNNN.txt; for sluice <home>/runs/<RUN>/<step>/out.txt) and exited 0.
# Tools run interleaved (round r starts with a different tool), so a burst of
# load elsewhere hits all of them alike. It reports the best wall time, the
# least CPU time and the largest peak RSS of the runs, the 1-minute load
# average at the start of the best run, and sluice's wall time over ninja's.
#
# Targets (issue "local executor"): sluice within 1.5x of ninja's wall time on
# every shape at -j2, and under 200 MB peak RSS at 10,000 steps.
#
# Environment:
#   SLUICE        sluice binary (default: <repo>/build/sluice; copied into the
#                 work dir first, so a rebuild during the run changes nothing)
#   SHAPES        default "wide chain diamond layers"
#   SIZES         default "1000 10000"
#   TOOLS         default "sluice xargs ninja make"; add "sluice-ref" to run a
#                 second sluice binary beside the first (see SLUICE_REF)
#   SLUICE_REF    the "sluice-ref" tool's binary, e.g. a build from before a
#                 change: both run in the same rounds, so their ratios to
#                 ninja are directly comparable (copied like SLUICE)
#   JOBS          parallelism for every tool (default 2)
#   REPEAT        runs per tool and workload that count, best wall wins (default 3)
#   LOAD_MAX      a run that starts with the 1-minute load average above this
#                 does not count toward REPEAT (default: 2 x cores) ...
#   REPEAT_MAX    ... and more runs are made, up to this many (default REPEAT:
#                 no extra runs; set e.g. 6 on a busy machine)
#   BENCH_TIMEOUT seconds before one run is killed (default 600)
#   BENCH_TMP     where to generate and run (default: a fresh mktemp -d in
#                 $TMPDIR or /tmp, removed at exit; /dev/shm/... takes the
#                 file system out of the picture)
#   CLEAN         when run folders are deleted: "end" (default; at exit),
#                 "workload" (after each shape x size) or "run". On ext4
#                 without a journal, creating inodes right after deleting many
#                 is slow for 1-6 minutes (the allocator skips recently freed
#                 inodes), so deleting between runs slows the runs that follow.
#                 "end" keeps about 250 MB per round at 10,000 steps (3.3 GB,
#                 900,000 small files for the defaults) until exit.
#   BENCH_KEEP=1  keep everything (implies CLEAN=end without the deletion)
#   BENCH_INSTALL=0  do not apt-get install missing ninja/make/time (root only)
#
# Exit status: 0 if every tool ran every workload and produced all outputs
# (whether or not the targets held), 1 if a run failed, timed out or missed
# outputs, 2 if the sluice binary or a needed tool is missing.
set -u -o pipefail

BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd -P)
SLUICE=${SLUICE:-$ROOT/build/sluice}
SLUICE_REF=${SLUICE_REF:-}
SHAPES=${SHAPES:-"wide chain diamond layers"}
SIZES=${SIZES:-"1000 10000"}
TOOLS=${TOOLS:-"sluice xargs ninja make"}
JOBS=${JOBS:-2}
REPEAT=${REPEAT:-3}
REPEAT_MAX=${REPEAT_MAX:-$REPEAT}
NCPU=$(nproc 2>/dev/null || echo 1)
LOAD_MAX=${LOAD_MAX:-$((2 * NCPU))}
TIMEOUT=${BENCH_TIMEOUT:-600}
CLEAN=${CLEAN:-end}
KEEP=${BENCH_KEEP:-0}
TARGET_RATIO=1.5
TARGET_RSS_MB=200
TARGET_RSS_N=10000

case "${1:-}" in
  -h|--help) sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "overhead.sh: takes no arguments (see --help)" >&2; exit 2 ;;
esac
case "$CLEAN" in end|workload|run) ;; *) echo "overhead.sh: CLEAN must be end, workload or run" >&2; exit 2 ;; esac
for v in JOBS REPEAT REPEAT_MAX TIMEOUT; do
  case "${!v}" in ''|*[!0-9]*|0) echo "overhead.sh: $v must be a positive integer" >&2; exit 2 ;; esac
done
[ "$REPEAT_MAX" -lt "$REPEAT" ] && REPEAT_MAX=$REPEAT
[ "$KEEP" = 1 ] && CLEAN=keep

# need CMD PACKAGE: make sure CMD exists, apt-get installing PACKAGE if we may.
need() {
  local cmd=$1 pkg=$2
  if [ "$cmd" = /usr/bin/time ]; then
    "$cmd" -f '%e %M' true >/dev/null 2>&1 && return 0
  else
    command -v "$cmd" >/dev/null 2>&1 && return 0
  fi
  if [ "${BENCH_INSTALL:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "overhead.sh: $cmd missing; apt-get install -y $pkg" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1; then
      apt-get update -q >/dev/null 2>&1
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1
    fi
    hash -r
    if [ "$cmd" = /usr/bin/time ]; then "$cmd" -f '%e %M' true >/dev/null 2>&1 && return 0
    else command -v "$cmd" >/dev/null 2>&1 && return 0; fi
  fi
  return 1
}

GNU_TIME=/usr/bin/time
need "$GNU_TIME" time || { echo "overhead.sh: GNU time not found at $GNU_TIME (Debian: apt-get install -y time)" >&2; exit 2; }
need python3 python3 || { echo "overhead.sh: python3 not found" >&2; exit 2; }
need timeout coreutils || { echo "overhead.sh: timeout (coreutils) not found" >&2; exit 2; }

status=0
RUN_TOOLS=()
for t in $TOOLS; do
  case "$t" in
    sluice)
      case "$SLUICE" in /*) ;; *) SLUICE=$(pwd -P)/$SLUICE ;; esac
      if [ ! -x "$SLUICE" ]; then
        echo "overhead.sh: sluice binary not found at $SLUICE (build it, or set SLUICE=...); skipping it" >&2
        status=2; continue
      fi ;;
    sluice-ref)
      case "$SLUICE_REF" in ''|/*) ;; *) SLUICE_REF=$(pwd -P)/$SLUICE_REF ;; esac
      if [ -z "$SLUICE_REF" ] || [ ! -x "$SLUICE_REF" ]; then
        echo "overhead.sh: sluice-ref needs SLUICE_REF=<a sluice binary> (got '${SLUICE_REF}'); skipping it" >&2
        status=2; continue
      fi ;;
    xargs) need xargs findutils || { echo "overhead.sh: xargs not found; skipping it" >&2; status=2; continue; } ;;
    ninja) need ninja ninja-build || { echo "overhead.sh: ninja not found; skipping it" >&2; status=2; continue; } ;;
    make) need make make || { echo "overhead.sh: make not found; skipping it" >&2; status=2; continue; } ;;
    *) echo "overhead.sh: unknown tool '$t' (sluice, xargs, ninja, make)" >&2; exit 2 ;;
  esac
  RUN_TOOLS+=("$t")
done
[ "${#RUN_TOOLS[@]}" -gt 0 ] || { echo "overhead.sh: no tool to run" >&2; exit 2; }

if [ -n "${BENCH_TMP:-}" ]; then
  mkdir -p "$BENCH_TMP" || exit 2
  WORK=$(mktemp -d "$BENCH_TMP/sluice-overhead.XXXXXX") || exit 2
else
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-overhead.XXXXXX") || exit 2
fi
WORK=$(cd -- "$WORK" && pwd -P)
cleanup() { [ "$CLEAN" != keep ] && rm -rf -- "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

SLUICE_BIN=""; SLUICE_REF_BIN=""
for t in "${RUN_TOOLS[@]}"; do
  if [ "$t" = sluice ]; then
    SLUICE_BIN=$WORK/sluice
    cp -- "$SLUICE" "$SLUICE_BIN" || exit 2
  elif [ "$t" = sluice-ref ]; then
    SLUICE_REF_BIN=$WORK/sluice-ref
    cp -- "$SLUICE_REF" "$SLUICE_REF_BIN" || exit 2
  fi
done

load1() { cut -d' ' -f1 /proc/loadavg; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# run_once TOOL DIR N LOG: one timed run of TOOL in the fresh folder DIR.
# Sets R_WALL R_CPU R_RSS_KB R_RC R_NOTE (R_NOTE empty when all is well).
run_once() {
  local tool=$1 dir=$2 n=$3 log=$4 tf=$WORK/.time line u s found runs
  R_WALL=""; R_CPU=""; R_RSS_KB=0; R_RC=0; R_NOTE=""
  case "$tool" in
    sluice|sluice-ref)
      local bin=$SLUICE_BIN
      [ "$tool" = sluice-ref ] && bin=$SLUICE_REF_BIN
      ( cd -- "$dir" && exec "$GNU_TIME" -o "$tf" -f '%e %M %U %S' timeout "$TIMEOUT" \
          "$bin" run -j "$JOBS" --home "$dir/state" workflow.toml >"$log.out" 2>"$log.err" ) ;;
    xargs)
      ( cd -- "$dir" && exec "$GNU_TIME" -o "$tf" -f '%e %M %U %S' timeout "$TIMEOUT" \
          xargs -P "$JOBS" -I{} sh -c {} <commands.txt >"$log.out" 2>"$log.err" ) ;;
    ninja)
      ( exec "$GNU_TIME" -o "$tf" -f '%e %M %U %S' timeout "$TIMEOUT" \
          ninja -j "$JOBS" -C "$dir" >"$log.out" 2>"$log.err" ) ;;
    make)
      ( exec "$GNU_TIME" -o "$tf" -f '%e %M %U %S' timeout "$TIMEOUT" \
          make -j "$JOBS" -C "$dir" >"$log.out" 2>"$log.err" ) ;;
  esac
  R_RC=$?
  line=$(tail -n 1 "$tf" 2>/dev/null)
  read -r R_WALL R_RSS_KB u s <<<"$line"
  R_CPU=$(awk -v u="${u:-0}" -v s="${s:-0}" 'BEGIN { printf "%.2f", u + s }')
  case "$R_RSS_KB" in ''|*[!0-9]*) R_RSS_KB=0 ;; esac
  if [ "$R_RC" -ne 0 ]; then
    R_NOTE="exit $R_RC"
    [ "$R_RC" -eq 124 ] && R_NOTE="timed out after ${TIMEOUT}s"
    [ "$R_RC" -gt 128 ] && R_NOTE="killed by signal $((R_RC - 128))"
    return
  fi
  if [ "$tool" = sluice ] || [ "$tool" = sluice-ref ]; then
    runs=$(find "$dir/state/runs" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
    found=$(find "$dir/state/runs" -mindepth 3 -maxdepth 3 -type f -name out.txt 2>/dev/null | wc -l)
    [ "$runs" -eq 1 ] || R_NOTE="$runs run folders in $dir/state/runs (expected 1)"
  else
    found=$(find "$dir/out" -maxdepth 1 -type f -name 's*.txt' 2>/dev/null | wc -l)
  fi
  [ "$found" -eq "$n" ] || R_NOTE="${R_NOTE:+$R_NOTE; }$found of $n outputs"
}

ROWS=()
SUMMARY=()
ratio_ok=""; rss_ok=""
host_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
echo "# executor overhead benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# machine: $NCPU cores, ${host_cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo); work dir $WORK ($(df -PT "$WORK" | awk 'NR == 2 { print $2 }'))"
[ -n "$SLUICE_BIN" ] && echo "# sluice: $SLUICE ($("$SLUICE_BIN" --version 2>/dev/null | head -n 1), built $(date -u -r "$SLUICE" '+%Y-%m-%d %H:%M UTC'))"
[ -n "$SLUICE_REF_BIN" ] && echo "# sluice-ref: $SLUICE_REF ($("$SLUICE_REF_BIN" --version 2>/dev/null | head -n 1), built $(date -u -r "$SLUICE_REF" '+%Y-%m-%d %H:%M UTC'))"
for t in "${RUN_TOOLS[@]}"; do
  case "$t" in
    ninja) echo "# ninja $(ninja --version)" ;;
    make) echo "# $(make --version | head -n 1)" ;;
    xargs) echo "# $(xargs --version | head -n 1); /bin/sh -> $(readlink -f /bin/sh)" ;;
  esac
done
echo "# -j $JOBS; best of $REPEAT runs (a run starting at load > $LOAD_MAX does not count; at most $REPEAT_MAX runs); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

for n in $SIZES; do
  for shape in $SHAPES; do
    wdir=$WORK/${shape}_$n
    label="$shape $n"
    if ! python3 "$BENCH_DIR/gen_workflow.py" -q --shape "$shape" --steps "$n" --out "$wdir/gen"; then
      echo "overhead.sh: generating $shape $n failed" >&2; exit 2
    fi
    echo "== $label" >&2
    declare -A B_WALL=() B_CPU=() B_RSS=() B_LOAD=() CNT=() RUNS=() LOADS=() FAIL=()
    nt=${#RUN_TOOLS[@]}
    for ((round = 0; round < REPEAT_MAX; round++)); do
      more=0
      for ((k = 0; k < nt; k++)); do
        tool=${RUN_TOOLS[$(((k + round) % nt))]}
        [ -n "${FAIL[$tool]:-}" ] && continue
        [ "${CNT[$tool]:-0}" -ge "$REPEAT" ] && continue
        more=1
        rdir=$wdir/$tool.$round
        mkdir -p "$rdir"
        case "$tool" in
          sluice|sluice-ref) cp "$wdir/gen/workflow.toml" "$rdir/" ;;
          xargs) cp "$wdir/gen/commands.txt" "$rdir/"; mkdir "$rdir/out" ;;
          ninja) cp "$wdir/gen/build.ninja" "$rdir/" ;;
          make) cp "$wdir/gen/Makefile" "$rdir/" ;;
        esac
        load=$(load1)
        run_once "$tool" "$rdir" "$n" "$wdir/$tool.$round"
        quiet=yes; lt "$LOAD_MAX" "$load" && quiet=no
        RUNS[$tool]=$(( ${RUNS[$tool]:-0} + 1 ))
        LOADS[$tool]="${LOADS[$tool]:-}${LOADS[$tool]:+ }$load"
        printf '  %-10s run %d: %6s s wall, %6s s cpu, %7s MB, load %s%s%s\n' "$tool" $((round + 1)) "${R_WALL:-?}" \
          "${R_CPU:-?}" "$(mb "$R_RSS_KB")" "$load" "$([ "$quiet" = no ] && echo " (high: not counted)")" \
          "${R_NOTE:+  FAILED: $R_NOTE}" >&2
        if [ -n "$R_NOTE" ]; then
          FAIL[$tool]=$R_NOTE
          [ -z "${B_WALL[$tool]:-}" ] && B_WALL[$tool]=${R_WALL:-?} B_CPU[$tool]=${R_CPU:-?} B_RSS[$tool]=$R_RSS_KB B_LOAD[$tool]=$load
          head -n 10 "$wdir/$tool.$round.err" 2>/dev/null | sed 's/^/    /' >&2
          case "$tool" in sluice*) tail -n 5 "$wdir/$tool.$round.out" 2>/dev/null | sed 's/^/    /' >&2 ;; esac
          status=1
          [ "$CLEAN" = run ] && rm -rf -- "$rdir"
          continue
        fi
        [ "$CLEAN" = run ] && rm -rf -- "$rdir"
        [ "$quiet" = yes ] && CNT[$tool]=$(( ${CNT[$tool]:-0} + 1 ))
        if [ -z "${B_WALL[$tool]:-}" ] || lt "$R_WALL" "${B_WALL[$tool]}"; then
          B_WALL[$tool]=$R_WALL; B_LOAD[$tool]=$load
        fi
        if [ -z "${B_CPU[$tool]:-}" ] || lt "$R_CPU" "${B_CPU[$tool]}"; then B_CPU[$tool]=$R_CPU; fi
        [ "$R_RSS_KB" -gt "${B_RSS[$tool]:-0}" ] && B_RSS[$tool]=$R_RSS_KB
      done
      [ "$more" = 0 ] && break
    done
    [ "$CLEAN" = workload ] && find "$wdir" -mindepth 1 -maxdepth 1 -type d ! -name gen -exec rm -rf -- {} +

    nw=${B_WALL[ninja]:-}; nc=${B_CPU[ninja]:-}
    for tool in "${RUN_TOOLS[@]}"; do
      lr=$(awk -v l="${LOADS[$tool]:-}" 'BEGIN { n = split(l, a, " "); lo = a[1]; hi = a[1]
             for (i = 2; i <= n; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
             printf "%s-%s", lo, hi }')
      if [ -n "${FAIL[$tool]:-}" ]; then
        ROWS+=("| $shape | $n | $tool | ${B_WALL[$tool]:-?} | ${B_CPU[$tool]:-?} | $(mb "${B_RSS[$tool]:-0}") | ${B_LOAD[$tool]:-?} ($lr) | ${RUNS[$tool]:-0} | - | - | FAILED: ${FAIL[$tool]} |")
        [ "$tool" = sluice ] && ratio_ok=NO && SUMMARY+=("$label: sluice FAILED (${FAIL[$tool]})")
        continue
      fi
      ratio="-"; cratio="-"
      if [ -n "$nw" ] && [ -z "${FAIL[ninja]:-}" ]; then
        ratio=$(awk -v a="${B_WALL[$tool]}" -v b="$nw" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        cratio=$(awk -v a="${B_CPU[$tool]}" -v b="$nc" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
      fi
      verdict="-"
      if [ "$tool" = sluice ]; then
        v=()
        if [ "$ratio" = "-" ]; then
          v+=("ratio: no ninja figure")
        elif awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { exit !(r <= t) }'; then
          v+=("<= ${TARGET_RATIO}x: yes"); ratio_ok=${ratio_ok:-yes}
        else
          v+=("<= ${TARGET_RATIO}x: NO"); ratio_ok=NO
        fi
        if [ "$n" -ge "$TARGET_RSS_N" ]; then
          if lt "$(mb "${B_RSS[$tool]:-0}")" "$TARGET_RSS_MB"; then v+=("< ${TARGET_RSS_MB} MB: yes"); rss_ok=${rss_ok:-yes}
          else v+=("< ${TARGET_RSS_MB} MB: NO"); rss_ok=NO; fi
        fi
        verdict=$(IFS=';'; echo "${v[*]}" | sed 's/;/; /g')
        SUMMARY+=("$label: sluice ${B_WALL[$tool]} s vs ninja ${nw:-?} s = ${ratio}x wall, ${cratio}x cpu")
      fi
      runs="${RUNS[$tool]}"; [ "${CNT[$tool]:-0}" != "$runs" ] && runs="$runs (${CNT[$tool]:-0} counted)"
      ROWS+=("| $shape | $n | $tool | ${B_WALL[$tool]} | ${B_CPU[$tool]} | $(mb "${B_RSS[$tool]:-0}") | ${B_LOAD[$tool]} ($lr) | $runs | $ratio | $cratio | $verdict |")
    done
  done
done

echo "| shape | N | tool | wall s | cpu s | peak RSS MB | load at best (range) | runs | wall / ninja | cpu / ninja | target |"
echo "|---|---:|---|---:|---:|---:|---|---|---:|---:|---|"
printf '%s\n' "${ROWS[@]}"
echo
printf '%s\n' "${SUMMARY[@]}"
echo "target: sluice within ${TARGET_RATIO}x of ninja's wall time on every shape at -j $JOBS: ${ratio_ok:-not measured}"
echo "target: sluice under ${TARGET_RSS_MB} MB peak RSS at >= $TARGET_RSS_N steps: ${rss_ok:-not measured}"
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
