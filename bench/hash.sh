#!/usr/bin/env bash
# Times sluice's SHA-256 of a 1 GiB file against `sha256sum` on the same file
# (best of BENCH_RUNS, default 3), then ArtifactStore::put_file of that file:
# the first put (hash + copy + fsync) and a second put from a new process
# (the stat cache: no re-hash). GB/s are 10^9 bytes per second. Each line
# gives wall time and CPU time (user + sys): on a busy machine read the CPU
# column, which is what a quiet machine's wall time would be.
#
#   bench/hash.sh                       # builds nothing: needs build/bench/hash_bench
#   HASH_BENCH=/path/hash_bench BENCH_SIZE=4G BENCH_TMP=/data bench/hash.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="${HASH_BENCH:-$root/build/bench/hash_bench}"
runs="${BENCH_RUNS:-3}"
size="${BENCH_SIZE:-1G}"
[ -x "$bin" ] || { echo "hash.sh: $bin not found; run: ninja -C build hash_bench" >&2; exit 2; }
command -v sha256sum >/dev/null || { echo "hash.sh: sha256sum not found (coreutils)" >&2; exit 2; }

tmp=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/sluice-hash.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
file="$tmp/data.bin"
echo "hash.sh: writing $size of random bytes to $file"
head -c "$size" /dev/urandom > "$file"
bytes=$(stat -c %s "$file")
cat "$file" > /dev/null  # into the page cache: every contender reads from memory
echo "hash.sh: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "hash.sh: SHA extensions (sha_ni): $(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

echo "== sha256sum (coreutils $(sha256sum --version | head -1 | awk '{print $NF}')), best of $runs"
best_wall="" best_cpu=""
TIMEFORMAT='%R %U %S'
for _ in $(seq "$runs"); do
  read -r wall user sys < <({ time sha256sum "$file" > "$tmp/ref"; } 2>&1)
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
  if [ -z "$best_wall" ] || awk -v x="$wall" -v y="$best_wall" 'BEGIN { exit !(x < y) }'; then best_wall=$wall; fi
  if [ -z "$best_cpu" ] || awk -v x="$cpu" -v y="$best_cpu" 'BEGIN { exit !(x < y) }'; then best_cpu=$cpu; fi
done
ref=$(cut -d' ' -f1 "$tmp/ref")
awk -v w="$best_wall" -v c="$best_cpu" -v n="$bytes" -v h="$ref" 'BEGIN {
  printf "%-12s wall %8.3f s %8.3f GB/s   cpu %8.3f s %8.3f GB/s   %s\n", "sha256sum", w, n / w / 1e9, c, n / c / 1e9, h }'
echo

echo "== sluice (registry/sha256.cc) and variants, best of $runs"
out=$("$bin" hash "$file" "$runs")
echo "$out"
if echo "$out" | grep -v " $ref\$" | grep -q .; then
  echo "hash.sh: a digest differs from sha256sum's" >&2
  exit 1
fi
echo

echo "== ArtifactStore::put_file into $tmp/home/cas"
sleep 0.1  # past the stat cache's racy window: the file's last change is not 'just now'
"$bin" put "$tmp/home" "$file"
"$bin" put "$tmp/home" "$file"
