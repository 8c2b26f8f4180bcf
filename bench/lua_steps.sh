#!/usr/bin/env bash
# bench/lua_steps.sh — Lua steps through the whole engine: `sluice run` of a
# wide workflow of N trivial Lua steps (`lua_inline = "return { i = N }"`),
# next to the same work as `run` steps (`echo i=N >> $SLUICE_VALUES`) and, as
# the baseline, xargs -P running those shell commands (processes only).
#
# Reports per workload: wall time of the whole `sluice run` (parse, run,
# recording), the run time the summary line prints (scheduling to the last
# step, the "engine time"), CPU (user+sys), peak RSS, and the cost per step.
#
# Target (issue "Lua on LuaJIT"): 100,000 trivial Lua steps finish in under
# 5 s of engine time at -j2.
#
# Environment: SLUICE (default <repo>/build/sluice), LUA_N (default 100000),
# RUN_N (default 10000: shell steps cost a process each), JOBS (default 2),
# BENCH_TMP (default a mktemp -d; /dev/shm/... takes the disk out).
set -u -o pipefail
BENCH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$BENCH_DIR/.." && pwd -P)
SLUICE=${SLUICE:-$ROOT/build/sluice}
LUA_N=${LUA_N:-100000}
RUN_N=${RUN_N:-10000}
JOBS=${JOBS:-2}
[ -x "$SLUICE" ] || { echo "lua_steps.sh: no sluice binary at $SLUICE (build first)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "lua_steps.sh: GNU time is missing (apt-get install time)" >&2; exit 2; }
TMP=${BENCH_TMP:-$(mktemp -d)}
mkdir -p "$TMP"
trap '[ -z "${BENCH_TMP:-}" ] && rm -rf "$TMP"' EXIT

gen() {  # gen KIND N FILE
  python3 - "$1" "$2" "$3" <<'PY'
import sys
kind, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write(f'name = "{kind}_wide"\n')
    for i in range(n):
        if kind == "lua":
            f.write(f'[steps.s{i:06d}]\nlua_inline = "return {{ i = {i} }}"\n')
        else:
            f.write(f'[steps.s{i:06d}]\nrun = "echo i={i} >> $SLUICE_VALUES"\n')
PY
}

calc() { awk "BEGIN { print $* }"; }
printf '%-10s %8s %9s %9s %9s %9s %12s\n' workload steps wall_s run_s cpu_s rss_mb us_per_step
measure() {  # measure KIND N
  local kind=$1 n=$2 dir="$TMP/$1-$2"
  rm -rf "$dir" && mkdir -p "$dir"
  gen "$kind" "$n" "$dir/workflow.toml"
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time" "$SLUICE" run -j "$JOBS" --home "$dir/state" "$dir/workflow.toml" >"$dir/out" 2>&1 || {
    echo "lua_steps.sh: sluice run failed for $kind $n (see $dir/out)" >&2; return 1; }
  read -r wall user sys rss <"$dir/time"
  local run_s; run_s=$(grep -Eo "^$n steps: $n succeeded \(([0-9.]+)(ms|s)\)" "$dir/out" | sed -E 's/.*\(([0-9.]+)(ms|s)\)/\1 \2/' |
    awk '{ print ($2 == "ms") ? $1 / 1000 : $1 }')
  printf '%-10s %8d %9.2f %9s %9.2f %9.0f %12.0f   (load %s)\n' "$kind" "$n" "$wall" "${run_s:-?}" "$(calc "$user + $sys")" \
    "$(calc "$rss / 1024")" "$(calc "$wall * 1000000 / $n")" "$load"
}
measure lua "$LUA_N"
measure run "$RUN_N"
# Baseline: the shell commands alone, no engine (the floor for run steps).
mkdir -p "$TMP/xargs"
python3 -c "
import sys
for i in range($RUN_N): print(f'echo i={i} > $TMP/xargs/v{i}')" >"$TMP/xargs/commands.txt"
/usr/bin/time -f '%e %U %S %M' -o "$TMP/xargs/time" xargs -P "$JOBS" -I{} sh -c {} <"$TMP/xargs/commands.txt"
read -r wall user sys rss <"$TMP/xargs/time"
printf '%-10s %8d %9.2f %9s %9.2f %9.0f %12.0f\n' xargs "$RUN_N" "$wall" - "$(calc "$user + $sys")" "$(calc "$rss / 1024")" \
  "$(calc "$wall * 1000000 / $RUN_N")"
