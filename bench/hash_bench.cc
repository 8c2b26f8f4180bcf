// Times SHA-256 of one file several ways, and ArtifactStore::put_file.
// Driven by bench/hash.sh; prints one line per measurement: label, wall
// seconds and GB/s, CPU seconds (user + sys of this process) and GB/s, and
// the digest (GB = 10^9 bytes; the best of RUNS for each column). CPU time is
// what a quiet machine's wall time would be; wall time is what a user waits.
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

struct Times {
  double wall = 1e300;
  double cpu = 1e300;
};

double cpu_now() {
  struct timespec ts {};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

Times seconds_of(const std::function<std::string()>& fn, int runs, std::string& out) {
  Times best;
  for (int i = 0; i < runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpu_now();
    out = fn();
    double c = cpu_now() - c0;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best.wall = std::min(best.wall, s);
    best.cpu = std::min(best.cpu, c);
  }
  return best;
}

void report(const char* label, Times t, uint64_t bytes, const std::string& detail) {
  auto gbs = [&](double s) { return s > 0 ? static_cast<double>(bytes) / s / 1e9 : 0.0; };
  std::printf("%-12s wall %8.3f s %8.3f GB/s   cpu %8.3f s %8.3f GB/s   %s\n", label, t.wall, gbs(t.wall), t.cpu,
              gbs(t.cpu), detail.c_str());
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
    Times s = seconds_of([&] { return sha256_file(path).hex; }, runs, hex);
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
    double c0 = cpu_now();
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
    Times s{std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), cpu_now() - c0};
    StoreStats stats = store->stats();
    std::string detail = d->str() + " (hashed " + std::to_string(stats.files_hashed) + ", cache hits " +
                         std::to_string(stats.stat_cache_hits) + ", written " + std::to_string(stats.objects_written) +
                         ")";
    report("put", s, static_cast<uint64_t>(st.st_size), detail);
    return 0;
  }
  return usage();
}
