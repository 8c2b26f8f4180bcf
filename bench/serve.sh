#!/usr/bin/env bash
# Load on `sluice serve` with wrk (Debian package `wrk`): GET /healthz and
# POST /api/v1/workflows/bench/runs, 64 connections for 10 s each (2 wrk
# threads). Prints requests/s and latency percentiles, then checks that
# every trigger the server accepted (202) is a run in the store afterwards.
#
#   bench/serve.sh [--connections N] [--duration 10s] [--max-runs N]
#
# The server runs with --rate-limit 0 (the per-token limit would otherwise
# answer most of the load with 429) and its default --max-runs 2: accepted
# runs start executing during the load, as they would in production, and
# compete with the server for the CPU. Uses build/sluice, or $SLUICE.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sluice=${SLUICE:-$root/build/sluice}
connections=64
duration=10s
max_runs=2
while (($#)); do
  case $1 in
    --connections) connections=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --max-runs) max_runs=$2; shift 2 ;;
    *) echo "usage: bench/serve.sh [--connections N] [--duration 10s] [--max-runs N]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "bench/serve.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }
[ -x "$sluice" ] || { echo "bench/serve.sh: no sluice at $sluice (build it, or set \$SLUICE)" >&2; exit 2; }

work=$(mktemp -d /tmp/sluice-serve-bench-XXXXXX)
server=0
cleanup() {
  if ((server)); then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  # Runs live in their own sessions: stop the ones this bench started.
  for pid in $(pgrep -f -- "run --queued .* --home $work/home" || true); do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/workflows"
cat > "$work/workflows/bench.toml" <<'EOF'
name = "bench"

[params]
n = 1

[steps.noop]
run = "true"
EOF
token=$("$sluice" token create --scope trigger --home "$work/home" 2>/dev/null)
"$sluice" serve --listen 127.0.0.1:0 --workflows "$work/workflows" --home "$work/home" --rate-limit 0 \
  --threads $((connections * 2)) --max-runs "$max_runs" --ready-file "$work/ready" 2>"$work/serve.log" &
server=$!
for _ in $(seq 200); do [ -f "$work/ready" ] && break; sleep 0.05; done
url=$(cat "$work/ready")

cat > "$work/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"params": {"n": 2}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
EOF

# "Requests/sec", the 50/90/99th percentiles and the error counts of a wrk run.
summarize() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +90%/ { p90 = $2 } /^ +99%/ { p99 = $2 }
    /requests in/ { total = $1 }
    /Non-2xx or 3xx responses:/ { non2xx = $5 }
    /Socket errors:/ { errors = $0; sub(/^ +/, "", errors) }
    END { printf "%s|%s|%s|%s|%s|%s|%s\n", rps, p50, p90, p99, total, (non2xx == "" ? 0 : non2xx), errors }'
}

echo "machine: $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
wrk -t2 -c"$connections" -d"$duration" --latency "$url/healthz" > "$work/healthz.txt"
IFS='|' read -r h_rps h_p50 h_p90 h_p99 h_total h_non2xx h_err < <(summarize < "$work/healthz.txt")
wrk -t2 -c"$connections" -d"$duration" --latency -s "$work/post.lua" "$url/api/v1/workflows/bench/runs" > "$work/trigger.txt"
IFS='|' read -r t_rps t_p50 t_p90 t_p99 t_total t_non2xx t_err < <(summarize < "$work/trigger.txt")
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

kill -TERM "$server"; wait "$server" || true; server=0
accepted=$((t_total - t_non2xx))
stored=$(/usr/bin/python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM runs").fetchone()[0])' "$work/home/sluice.db")

printf '\n| endpoint | requests/s | p50 | p90 | p99 | requests | non-2xx |\n|---|---|---|---|---|---|---|\n'
printf '| GET /healthz | %s | %s | %s | %s | %s | %s |\n' "$h_rps" "$h_p50" "$h_p90" "$h_p99" "$h_total" "$h_non2xx"
printf '| POST /api/v1/workflows/bench/runs | %s | %s | %s | %s | %s | %s |\n' "$t_rps" "$t_p50" "$t_p90" "$t_p99" "$t_total" "$t_non2xx"
[ -n "$h_err$t_err" ] && echo "wrk: healthz: ${h_err:-no socket errors}; trigger: ${t_err:-no socket errors}"
# wrk stops counting at the deadline: up to one request per connection may
# have been accepted and stored without being counted.
echo "triggers accepted (202): $accepted; runs in the store: $stored"
if ((stored >= accepted && stored <= accepted + connections)); then
  echo "ok: every accepted run is in the store"
else
  echo "FAIL: the store has $stored runs for $accepted accepted triggers" >&2
  exit 1
fi
