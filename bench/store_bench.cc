// Records N runs of an M-step workflow in the metadata store the way an
// executor would, then reports the database size and the time of common
// reads. Every step: 3 status changes (waiting, running, succeeded), 1
// attempt, 2 values, 3 metrics, 1 output (a new artifact), 1 input (the
// previous step's output), 4 cache-key parts and a cache entry.
//
//   store_bench [--runs 1000] [--steps 50] [--batch step|run] [--db PATH] [--keep]
//
// --batch step commits at every state change (2 transactions per step, the
// most an executor could ask for); --batch run commits once per run (what
// group commit approaches when many steps finish together). Each commit is
// one fsync of the WAL (synchronous=FULL), so --batch step mostly measures
// the disk's fsync latency, which is printed first.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "registry/db.h"
#include "registry/sqlite_store.h"

using namespace sluice::registry;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string hex_digest(std::mt19937_64& rng) {
  static const char* kHex = "0123456789abcdef";
  std::string s = "sha256:";
  for (int i = 0; i < 64; ++i) s += kHex[rng() & 15];
  return s;
}

// The median and the 99th percentile of `fn`'s time over `n` calls, in ms.
template <class F>
std::pair<double, double> time_calls(int n, F fn) {
  std::vector<double> t;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    fn(i);
    t.push_back(ms_since(t0));
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[std::min(t.size() - 1, t.size() * 99 / 100)]};
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double fsync_ms(const std::string& dir) {
  std::string path = dir + "/fsync-probe";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  char block[4096];
  std::memset(block, 'x', sizeof block);
  auto t0 = Clock::now();
  const int n = 50;
  for (int i = 0; i < n; ++i) {
    if (::write(fd, block, sizeof block) != static_cast<ssize_t>(sizeof block) || ::fsync(fd) != 0) break;
  }
  double ms = ms_since(t0) / n;
  ::close(fd);
  ::unlink(path.c_str());
  return ms;
}

int usage() {
  std::fprintf(stderr, "usage: store_bench [--runs N] [--steps M] [--batch step|run] [--db PATH] [--keep]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 1000, steps = 50;
  std::string batch_mode = "run", db_path;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--runs" && (v = next())) runs = std::atoi(v);
    else if (a == "--steps" && (v = next())) steps = std::atoi(v);
    else if (a == "--batch" && (v = next())) batch_mode = v;
    else if (a == "--db" && (v = next())) db_path = v;
    else if (a == "--keep") keep = true;
    else return usage();
  }
  if (runs < 1 || steps < 1 || (batch_mode != "step" && batch_mode != "run")) return usage();

  std::string dir;
  if (db_path.empty()) {
    char tmpl[] = "/tmp/sluice-store-bench-XXXXXX";
    if (!mkdtemp(tmpl)) return 3;
    dir = tmpl;
    db_path = dir + "/sluice.db";
  } else {
    dir = std::filesystem::path(db_path).parent_path().string();
    if (dir.empty()) dir = ".";
  }

  std::printf("store_bench: %d runs x %d steps, a commit per %s, %s\n", runs, steps, batch_mode.c_str(),
              db_path.c_str());
  std::printf("fsync latency of %s: %.2f ms\n", dir.c_str(), fsync_ms(dir));

  try {
    auto store = open_sqlite_store(db_path);
    std::mt19937_64 rng(42);
    const std::string wf_digest = hex_digest(rng);
    const int64_t t_base = 1'795'748'573'000;
    int64_t commits = 0, writes = 0;
    std::vector<Write> batch;
    auto commit = [&] {
      if (batch.empty()) return;
      writes += static_cast<int64_t>(batch.size());
      store->apply(batch);
      batch.clear();
      ++commits;
    };

    auto t_record = Clock::now();
    double cpu_record = cpu_seconds();
    std::vector<std::string> ids;
    for (int r = 0; r < runs; ++r) {
      char id[40];
      std::snprintf(id, sizeof id, "20261127-%06d-%06x", r, static_cast<unsigned>(rng() & 0xffffff));
      ids.push_back(id);
      int64_t t = t_base + int64_t(r) * 60'000;
      const std::string wf = r % 4 == 0 ? "ingest" : "recommender";
      batch.push_back(PutWorkflow{.name = wf, .digest = wf_digest, .source = "name = \"" + wf + "\"\n",
                                  .path = "wf.toml", .at = t});
      batch.push_back(CreateRun{.id = id,
                                .workflow_name = wf,
                                .workflow_digest = wf_digest,
                                .params_json = R"({"dataset":"data/interactions.csv","min_auc":0.75})",
                                .trigger = Trigger::Schedule,
                                .status = RunStatus::Running,
                                .at = t,
                                .sluice_version = "0.1.0",
                                .git_commit = "d2790a1"});
      std::vector<std::string> nodes;
      for (int s = 0; s < steps; ++s) {
        nodes.push_back("step_" + std::to_string(s));
        batch.push_back(SetStepStatus{.run_id = id, .node = nodes.back(), .step = nodes.back(),
                                      .status = StepStatus::Waiting, .at = t});
      }
      std::string input = hex_digest(rng);  // the first step reads a file from outside
      batch.push_back(PutArtifact{.digest = input, .size = 1 << 20, .at = t});
      std::string from_node;
      for (int s = 0; s < steps; ++s) {
        const std::string& node = nodes[s];
        int64_t t0 = t + s * 1000 + 1, t1 = t0 + 900;
        if (batch_mode == "step") commit();
        batch.push_back(SetStepStatus{.run_id = id, .node = node, .status = StepStatus::Running, .at = t0});
        batch.push_back(StartAttempt{.run_id = id, .node = node, .number = 1, .at = t0,
                                     .log_path = "runs/" + std::string(id) + "/" + node + "/attempt-1.log"});
        if (batch_mode == "step") commit();
        batch.push_back(FinishAttempt{.run_id = id, .node = node, .number = 1, .at = t1, .exit_code = 0,
                                      .log_digest = hex_digest(rng)});
        batch.push_back(SetValue{.run_id = id, .node = node, .key = "rows", .value = std::to_string(rng() % 100000)});
        batch.push_back(SetValue{.run_id = id, .node = node, .key = "auc", .value = "0.8134"});
        for (int m = 0; m < 3; ++m)
          batch.push_back(AddMetric{.run_id = id, .node = node, .name = m == 0 ? "loss" : m == 1 ? "auc" : "seconds",
                                    .value = double(rng() % 1000) / 1000.0, .step = m == 0 ? std::optional<int64_t>(s) : std::nullopt,
                                    .at = t1, .seq = m + 1});
        std::string out = hex_digest(rng);
        batch.push_back(PutArtifact{.digest = out, .size = int64_t(rng() % (1 << 24)), .at = t1});
        batch.push_back(AddOutput{.run_id = id, .node = node, .name = "out", .digest = out, .path = "out.bin"});
        batch.push_back(AddInput{.run_id = id, .node = node, .name = "in", .digest = input,
                                 .from_run = from_node.empty() ? "" : id, .from_node = from_node,
                                 .from_output = from_node.empty() ? "" : "out"});
        for (const char* part : {"definition", "input:in", "env", "plugin:shell"})
          batch.push_back(AddKeyPart{.run_id = id, .node = node, .part = part, .digest = hex_digest(rng)});
        std::string key = hex_digest(rng);
        batch.push_back(SetStepStatus{.run_id = id, .node = node, .status = StepStatus::Succeeded, .at = t1,
                                      .cache_key = key});
        batch.push_back(PutCacheEntry{.cache_key = key, .run_id = id, .node = node, .at = t1});
        input = out;
        from_node = node;
      }
      batch.push_back(SetRunStatus{.run_id = id, .status = RunStatus::Succeeded, .at = t + steps * 1000 + 1000});
      commit();
    }
    double record_ms = ms_since(t_record);
    cpu_record = cpu_seconds() - cpu_record;
    int64_t wal_bytes = 0;
    if (std::filesystem::exists(db_path + "-wal")) wal_bytes = std::filesystem::file_size(db_path + "-wal");

    // Reads, on the store the recording left (WAL not yet checkpointed).
    RunFilter all;
    all.limit = 50;
    auto [list_med, list_p99] = time_calls(200, [&](int) { (void)store->list_runs(all); });
    RunFilter by_wf = all;
    by_wf.workflow = "ingest";
    auto [wf_med, wf_p99] = time_calls(200, [&](int) { (void)store->list_runs(by_wf); });
    RunFilter by_status = all;
    by_status.status = RunStatus::Succeeded;
    auto [st_med, st_p99] = time_calls(200, [&](int) { (void)store->list_runs(by_status); });
    RunFilter deep = all;
    deep.cursor = ids[ids.size() / 2];
    auto [deep_med, deep_p99] = time_calls(200, [&](int) { (void)store->list_runs(deep); });
    auto [steps_med, steps_p99] =
        time_calls(200, [&](int i) { (void)store->steps(ids[static_cast<size_t>(i) % ids.size()]); });
    auto [last_med, last_p99] = time_calls(200, [&](int i) {
      (void)store->last_successful("recommender", "step_" + std::to_string(i % steps));
    });
    std::string some_output = store->outputs(ids[0], "step_0").at(0).digest;
    auto [lin_med, lin_p99] = time_calls(200, [&](int) {
      (void)store->producers(some_output);
      (void)store->consumers(some_output);
    });
    store.reset();

    int64_t db_bytes = 0;
    {
      Db db(db_path);
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      db_bytes = std::filesystem::file_size(db_path);
    }

    std::printf("recorded: %d runs, %lld steps, %lld writes in %lld commits\n", runs,
                static_cast<long long>(runs) * steps, static_cast<long long>(writes), static_cast<long long>(commits));
    std::printf("  wall %.2f s (%.0f commits/s, %.0f writes/s), CPU %.2f s (%.1f us per write)\n", record_ms / 1000,
                double(commits) / (record_ms / 1000), double(writes) / (record_ms / 1000), cpu_record,
                cpu_record * 1e6 / double(writes));
    std::printf("database: %.1f MB (%.1f KB per run); WAL at the end %.1f MB\n", double(db_bytes) / 1e6,
                double(db_bytes) / 1e3 / runs, double(wal_bytes) / 1e6);
    std::printf("%-40s %9s %9s\n", "read (200 calls)", "median ms", "p99 ms");
    std::printf("%-40s %9.3f %9.3f\n", "list_runs(limit 50)", list_med, list_p99);
    std::printf("%-40s %9.3f %9.3f\n", "list_runs(limit 50, workflow)", wf_med, wf_p99);
    std::printf("%-40s %9.3f %9.3f\n", "list_runs(limit 50, status)", st_med, st_p99);
    std::printf("%-40s %9.3f %9.3f\n", "list_runs(limit 50, cursor mid-way)", deep_med, deep_p99);
    std::printf("%-40s %9.3f %9.3f\n", "steps(run) (50 rows)", steps_med, steps_p99);
    std::printf("%-40s %9.3f %9.3f\n", "last_successful(workflow, node)", last_med, last_p99);
    std::printf("%-40s %9.3f %9.3f\n", "producers + consumers(digest)", lin_med, lin_p99);
  } catch (const StoreError& e) {
    std::fprintf(stderr, "store_bench: %s\n", e.what());
    return 3;
  }
  if (!keep && !dir.empty() && dir.rfind("/tmp/sluice-store-bench-", 0) == 0) std::filesystem::remove_all(dir);
  return 0;
}
