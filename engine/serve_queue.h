#pragma once
// The server's run queue: runs it accepted wait in the store (run_queue) and
// start, at most `max_runs` at once, as child processes `sluice run --queued
// RUN` in their own session, so they outlive the server. The queue reaps its
// children; after a restart it re-adopts runs whose process (the run's owner:
// pid and an id of its life, engine/recovery.h) is still alive. A run whose
// process died before the run finished (kill -9, a crash) is resumed in the
// same run by a child `sluice resume RUN`, at most 3 times; one whose process
// died before it started is marked failed.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <variant>

#include "engine/serve_error.h"
#include "engine/serve_store.h"

namespace sluice::engine {

struct QueueOptions {
  std::string home;     // the state folder the runs record into
  std::string exe;      // the sluice binary
  std::string workflows_dir;  // the served folder (absolute), passed to runs as --workflows
  unsigned max_runs = 2;
};

class RunQueue {
 public:
  RunQueue(QueueOptions options, BatchWriter& writer, StorePool& pool);
  ~RunQueue();  // stop()
  RunQueue(const RunQueue&) = delete;
  RunQueue& operator=(const RunQueue&) = delete;

  // Adopts the runs a previous server left, then starts dispatching.
  void start();
  // Looks at the queue now (a run was queued, or one finished).
  void notify();
  // Starts nothing more and stops the dispatch thread. Runs already started
  // keep going; the next server adopts them.
  void stop();

  // Cancels a run: one still queued becomes cancelled at once ("cancelled");
  // a running one gets SIGTERM and ends cancelled ("cancelling"). 404 for an
  // unknown run, 409 for a finished one or one this server does not manage.
  std::variant<std::string, ApiError> cancel(const std::string& run_id);

  size_t active() const;  // runs started or adopted that have not ended yet
  size_t queued() const;  // runs waiting in the queue (as of the last look, at most 100 ms ago)
  uint64_t started_total() const;

 private:
  struct Child {
    std::string run_id;
    bool adopted = false;  // not our child: polled, not reaped
    std::string start;     // adopted: the id of its life (engine/recovery.h process_start_id)
  };
  enum class Spawn { Queued, Resume };  // `sluice run --queued RUN` / `sluice resume RUN`

  void loop();
  void adopt();
  void reap();
  void start_ready();
  void watch_foreign_claims(registry::Store& store);
  bool spawn(const std::string& run_id, Spawn what, std::string& error);
  // The start id of the live process that claimed `row` (its run's owner);
  // nullopt when it is gone.
  static std::optional<std::string> live_claimer(registry::Store& store, const registry::QueueRow& row);
  // A process that ran (or should have run) `run_id` is gone.
  void ended(int pid, const std::string& run_id, const std::string& how);
  std::variant<std::string, ApiError> cancel_locked(const std::string& run_id);

  QueueOptions opt_;
  BatchWriter& writer_;
  StorePool& pool_;
  // mu_ guards the dispatch state below and is held through a round's store
  // I/O; signal_mu_ guards only the wake-up flags, so notify() (on every
  // accepted trigger) never waits for a round.
  mutable std::mutex mu_;
  std::mutex signal_mu_;
  std::condition_variable wake_;
  bool poke_ = false;                   // under signal_mu_
  std::atomic<bool> stopping_{false};   // set under signal_mu_
  std::map<int, Child> children_;              // by pid
  std::chrono::steady_clock::time_point last_foreign_check_{};
  std::map<std::string, int> spawn_failures_;  // runs whose process died before claiming them
  std::map<std::string, int64_t> resume_spawns_;  // `sluice resume` processes started per run
  // Counters for /healthz and /metrics, readable without waiting for a
  // dispatch round (which holds mu_ through store I/O).
  std::atomic<size_t> queued_{0}, active_{0};
  std::atomic<uint64_t> started_total_{0};
  std::thread thread_;
};

}  // namespace sluice::engine
