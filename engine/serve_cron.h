#pragma once
// The server's cron: fires each served workflow's [schedule] exactly once per
// fire time. A fire is recorded (keyed by workflow and nominal time) in the
// same transaction that creates and queues its run and moves the schedule's
// watermark, so a crash at any moment neither loses nor repeats one. The
// decision (plan_fires) is pure; the Scheduler thread does the I/O.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dsl/fire_times.h"
#include "dsl/spec.h"
#include "engine/serve_catalog.h"
#include "engine/serve_clock.h"
#include "engine/serve_queue.h"
#include "engine/serve_store.h"

namespace sluice::engine {

// A fire up to this late is on time (a slow tick, a quick restart), not missed.
constexpr int64_t kFireGraceMs = 60'000;
// How long an Idempotency-Key is remembered; the scheduler thread forgets
// older ones about once an hour (of the server's clock).
constexpr int64_t kIdempotencyKeyTtlMs = 24 * 3'600'000;

// What a schedule does at `now_ms` when every fire time up to `watermark_ms`
// is handled. Times are ms since the epoch.
struct FirePlan {
  std::vector<int64_t> fire;    // nominal times to fire now, oldest first
  int64_t missed = 0;           // due fire times passed over (catchup)
  int64_t newest_due = 0;       // the newest due fire time; 0 when none is due
  std::optional<int64_t> next;  // the first fire time after now
};

// catchup = none fires the newest due time if it is at most kFireGraceMs
// late; latest fires it if it is within catchup_window; all fires every due
// time within catchup_window. The rest count as missed.
FirePlan plan_fires(const dsl::FireTimes& times, const dsl::Schedule& schedule, int64_t watermark_ms, int64_t now_ms);

// A schedule's state as the server last saw it, for the API and /metrics.
struct ScheduleStatus {
  std::string workflow;
  std::optional<int64_t> next_fire;
  int64_t checked_at = 0;  // the clock's time of the last look
};

class Scheduler {
 public:
  Scheduler(const WallClock& clock, BatchWriter& writer, StorePool& pool, RunQueue& queue,
            std::function<std::shared_ptr<const Catalog>()> catalog);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void start();
  void stop();
  void notify();  // the catalog changed
  std::vector<ScheduleStatus> status() const;

 private:
  void loop();
  int64_t tick();  // returns ms until the next look
  void fire(const ServedWorkflow& w, int64_t nominal, int64_t missed, std::string& last_run);
  void check_deadline(const ServedWorkflow& w, int64_t now);
  void housekeeping(int64_t now);

  const WallClock& clock_;
  BatchWriter& writer_;
  StorePool& pool_;
  RunQueue& queue_;
  std::function<std::shared_ptr<const Catalog>()> catalog_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false, poke_ = false;
  std::map<std::string, ScheduleStatus> status_;
  int64_t last_housekeeping_ = 0;
  std::thread thread_;
};

}  // namespace sluice::engine
