#!/usr/bin/env bash
# Times sluice's SHA-256 of a 1 GiB file against `sha256sum` on the same file
# (best of BENCH_RUNS, default 3), then ArtifactStore::put_file of that file:
# the first put (hash + copy + fsync) and a second put from a new process
# (the stat cache: no re-hash). GB/s are 10^9 bytes per second.
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
echo "hash.sh: SHA extensions (sha_ni): $(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no)"
echo

echo "== sha256sum (coreutils $(sha256sum --version | head -1 | awk '{print $NF}')), best of $runs"
best=""
for _ in $(seq "$runs"); do
  t0=$(date +%s%N)
  ref=$(sha256sum "$file" | cut -d' ' -f1)
  t1=$(date +%s%N)
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  if [ -z "$best" ] || awk -v x="$s" -v y="$best" 'BEGIN { exit !(x < y) }'; then best=$s; fi
done
awk -v s="$best" -v n="$bytes" -v h="$ref" 'BEGIN { printf "%-14s %8.3f s %7.3f GB/s  %s\n", "sha256sum", s, n / s / 1e9, h }'
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
