// Times SHA-256 of one file several ways, and ArtifactStore::put_file.
// Driven by bench/hash.sh; prints one "label seconds GB/s detail" line per
// measurement (GB = 10^9 bytes; the best of --runs).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "registry/artifact_store.h"
#include "registry/sha256.h"

using namespace sluice::registry;

namespace {

double seconds_of(const std::function<std::string()>& fn, int runs, std::string& out) {
  double best = 1e300;
  for (int i = 0; i < runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    out = fn();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s < best) best = s;
  }
  return best;
}

void report(const char* label, double s, uint64_t bytes, const std::string& detail) {
  std::printf("%-14s %8.3f s %7.3f GB/s  %s\n", label, s, static_cast<double>(bytes) / s / 1e9, detail.c_str());
  std::fflush(stdout);
}

std::string hash_read(const char* path, size_t buf_size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "error";
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<unsigned char> buf(buf_size);
  Sha256 h;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
  }
  close(fd);
  return h.finish();
}

std::string hash_mmap(const char* path, uint64_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "error";
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return "error";
  madvise(p, size, MADV_SEQUENTIAL);
  Sha256 h;
  h.update(p, size);
  munmap(p, size);
  return h.finish();
}

int usage() {
  std::fprintf(stderr,
               "usage: hash_bench hash FILE [RUNS]     sluice's sha256_file, plus read-size and mmap variants\n"
               "       hash_bench put HOME FILE         one ArtifactStore::put_file into HOME/cas\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  std::string cmd = argv[1];
  if (cmd == "hash") {
    const char* path = argv[2];
    int runs = argc > 3 ? std::atoi(argv[3]) : 3;
    struct stat st {};
    if (stat(path, &st) != 0) {
      std::perror(path);
      return 1;
    }
    auto bytes = static_cast<uint64_t>(st.st_size);
    std::string hex;
    double s = seconds_of([&] { return sha256_file(path).hex; }, runs, hex);
    report("sluice", s, bytes, hex);
    for (size_t kb : {64, 256, 1024, 4096, 16384}) {
      s = seconds_of([&] { return hash_read(path, kb * 1024); }, runs, hex);
      std::string label = "read " + std::to_string(kb) + "K";
      report(label.c_str(), s, bytes, hex);
    }
    s = seconds_of([&] { return hash_mmap(path, bytes); }, runs, hex);
    report("mmap", s, bytes, hex);
    return 0;
  }
  if (cmd == "put" && argc == 4) {
    struct stat st {};
    if (stat(argv[3], &st) != 0) {
      std::perror(argv[3]);
      return 1;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto store = ArtifactStore::open(argv[2]);
    if (!store) {
      std::fprintf(stderr, "hash_bench: %s\n", store.error().c_str());
      return 1;
    }
    auto d = store->put_file(argv[3]);
    if (!d) {
      std::fprintf(stderr, "hash_bench: %s\n", d.error().c_str());
      return 1;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    StoreStats stats = store->stats();
    std::string detail = d->str() + " (hashed " + std::to_string(stats.files_hashed) + ", cache hits " +
                         std::to_string(stats.stat_cache_hits) + ", written " + std::to_string(stats.objects_written) +
                         ")";
    report("put", s, static_cast<uint64_t>(st.st_size), detail);
    return 0;
  }
  return usage();
}
