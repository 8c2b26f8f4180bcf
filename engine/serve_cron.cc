#include "engine/serve_cron.h"

#include <algorithm>
#include <cstdio>

#include "engine/executor.h"
#include "engine/run_recorder.h"
#include "engine/test_hooks.h"
#include "registry/store.h"
#include "sluice/version.h"

namespace sluice::engine {

namespace reg = sluice::registry;

namespace {

// Fire times looked at per schedule per tick: years of downtime with a
// minutely schedule are caught up over several ticks, never in one long one.
constexpr int64_t kMaxScan = 200'000;

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

const char* gap_name(dsl::DstGap g) { return g == dsl::DstGap::Shift ? "shift" : "skip"; }
const char* repeat_name(dsl::DstRepeat r) {
  return r == dsl::DstRepeat::First ? "first" : r == dsl::DstRepeat::Last ? "last" : "both";
}

bool make_times(const dsl::Schedule& s, dsl::FireTimes& out) {
  dsl::CronExpr expr;
  std::string error;
  size_t offset = 0;
  if (!dsl::CronExpr::parse(s.cron, expr, error, offset)) return false;
  return dsl::FireTimes::make(expr, s.timezone, s.on_dst_gap, s.on_dst_repeat, out, error);
}

}  // namespace

FirePlan plan_fires(const dsl::FireTimes& times, const dsl::Schedule& s, int64_t watermark, int64_t now) {
  FirePlan plan;
  const int64_t window = std::max<int64_t>(s.catchup_window.count(), kFireGraceMs);
  int64_t due = 0;
  int64_t t = floor_div(watermark, 1000);
  for (int64_t scanned = 0; scanned < kMaxScan; ++scanned) {
    std::optional<dsl::Fire> f = times.next_after(t);
    if (!f) break;
    const int64_t ms = f->utc * 1000;
    if (ms > now) {
      plan.next = ms;
      break;
    }
    ++due;
    plan.newest_due = ms;
    if (s.catchup == dsl::Catchup::All && now - ms <= window) plan.fire.push_back(ms);
    t = f->utc;
  }
  if (due == 0) return plan;
  const int64_t late = now - plan.newest_due;
  if (s.catchup == dsl::Catchup::None && late <= kFireGraceMs) plan.fire = {plan.newest_due};
  if (s.catchup == dsl::Catchup::Latest && late <= window) plan.fire = {plan.newest_due};
  plan.missed = due - static_cast<int64_t>(plan.fire.size());
  return plan;
}

Scheduler::Scheduler(const WallClock& clock, BatchWriter& writer, StorePool& pool, RunQueue& queue,
                     std::function<std::shared_ptr<const Catalog>()> catalog)
    : clock_(clock), writer_(writer), pool_(pool), queue_(queue), catalog_(std::move(catalog)) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() { thread_ = std::thread([this] { loop(); }); }

void Scheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poke_ = true;
  }
  wake_.notify_one();
}

std::vector<ScheduleStatus> Scheduler::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ScheduleStatus> out;
  for (const auto& [name, s] : status_) out.push_back(s);
  return out;
}

void Scheduler::loop() {
  for (;;) {
    int64_t wait_ms = 500;
    try {
      wait_ms = tick();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sluice serve: warning: scheduler: %s\n", e.what());
    }
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stopping_ || poke_; });
    poke_ = false;
    if (stopping_) return;
  }
}

int64_t Scheduler::tick() {
  std::shared_ptr<const Catalog> cat = catalog_();
  const int64_t now = clock_.now_ms();
  int64_t wait_ms = clock_.is_fake() ? 50 : 500;
  std::map<std::string, ScheduleStatus> seen;
  for (const auto& [name, w] : cat->workflows) {
    if (!w.wf->schedule) continue;
    const dsl::Schedule& s = *w.wf->schedule;
    dsl::FireTimes times;
    if (!make_times(s, times)) continue;  // validated at load; cannot happen
    std::optional<reg::ScheduleRow> row;
    {
      auto store = pool_.lease();
      row = store->schedule(name);
    }
    // A new schedule fires from now on, not for the past; a changed one keeps
    // its watermark.
    if (!row || row->cron != s.cron || row->timezone != s.timezone || row->on_dst_gap != gap_name(s.on_dst_gap) ||
        row->on_dst_repeat != repeat_name(s.on_dst_repeat)) {
      writer_.apply({reg::PutSchedule{.workflow = name, .cron = s.cron, .timezone = s.timezone,
                                      .on_dst_gap = gap_name(s.on_dst_gap), .on_dst_repeat = repeat_name(s.on_dst_repeat),
                                      .watermark = now, .at = now}});
      auto store = pool_.lease();
      row = store->schedule(name);
      if (!row) continue;
    }
    FirePlan plan = plan_fires(times, s, row->watermark, now);
    if (plan.fire.empty() && plan.newest_due > row->watermark) {
      writer_.apply({reg::SkipFires{.workflow = name, .watermark = plan.newest_due, .missed = plan.missed, .at = now}});
      std::fprintf(stderr, "sluice serve: schedule of %s: %lld fire time(s) missed up to %s (catchup)\n", name.c_str(),
                   static_cast<long long>(plan.missed), format_utc(plan.newest_due).c_str());
    }
    std::string last_run = row->last_run;
    for (size_t i = 0; i < plan.fire.size(); ++i) fire(w, plan.fire[i], i == 0 ? plan.missed : 0, last_run);
    check_deadline(w, now);
    seen[name] = ScheduleStatus{name, plan.next, now};
    if (plan.next && !clock_.is_fake()) wait_ms = std::clamp<int64_t>(*plan.next - now, 10, wait_ms);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.swap(seen);
  }
  housekeeping(now);
  return wait_ms;
}

void Scheduler::housekeeping(int64_t now) {
  if (now - last_housekeeping_ < 3'600'000) return;
  last_housekeeping_ = now;
  writer_.apply({reg::ExpireIdempotencyKeys{.before = now - kIdempotencyKeyTtlMs}});
}

void Scheduler::fire(const ServedWorkflow& w, int64_t nominal, int64_t missed, std::string& last_run) {
  const std::string& name = w.wf->name;
  const dsl::Schedule& s = *w.wf->schedule;
  const int64_t now = clock_.now_ms();
  std::string after;
  if (!last_run.empty()) {
    std::optional<reg::RunRow> prev;
    {
      auto store = pool_.lease();
      prev = store->run(last_run);
    }
    if (prev && !reg::is_final(prev->status)) {
      if (s.overlap == dsl::Overlap::Skip) {
        test_kill_point("before-fire");
        try {
          writer_.apply({reg::FireSchedule{.workflow = name, .nominal = nominal, .outcome = reg::FireOutcome::Skipped,
                                           .missed = missed, .at = now}});
        } catch (const reg::StoreError& e) {
          std::fprintf(stderr, "sluice serve: schedule of %s: %s\n", name.c_str(), e.what());
          return;
        }
        test_kill_point("after-fire");
        std::fprintf(stderr, "sluice serve: schedule of %s: skipped %s: run %s is still %s (overlap = skip)\n",
                     name.c_str(), format_utc(nominal).c_str(), last_run.c_str(), reg::to_string(prev->status));
        return;
      }
      if (s.overlap == dsl::Overlap::Queue) after = last_run;
      if (s.overlap == dsl::Overlap::Cancel) queue_.cancel(last_run);
    }
  }
  const std::string run_id = new_run_id();
  test_kill_point("before-fire");
  try {
    writer_.apply({reg::CreateRun{.id = run_id,
                                  .workflow_name = name,
                                  .workflow_digest = w.digest,
                                  .params_json = params_json(dsl::default_params(*w.wf)),
                                  .trigger = reg::Trigger::Schedule,
                                  .status = reg::RunStatus::Queued,
                                  .at = now,
                                  .sluice_version = SLUICE_VERSION,
                                  .git_commit = w.git_commit},
                   reg::QueueRun{.run_id = run_id, .after_run = after, .at = now},
                   reg::FireSchedule{.workflow = name, .nominal = nominal, .run_id = run_id, .missed = missed, .at = now}});
  } catch (const reg::StoreError& e) {
    // Another server sharing the store fired it first: nothing was written.
    std::fprintf(stderr, "sluice serve: schedule of %s: %s\n", name.c_str(), e.what());
    return;
  }
  test_kill_point("after-fire");
  last_run = run_id;
  queue_.notify();
}

void Scheduler::check_deadline(const ServedWorkflow& w, int64_t now) {
  const dsl::Schedule& s = *w.wf->schedule;
  if (!s.deadline) return;
  std::vector<reg::FireRow> recent;
  {
    auto store = pool_.lease();
    recent = store->fires(w.wf->name, 5);
  }
  for (const reg::FireRow& f : recent) {
    if (f.run_id.empty() || f.deadline_missed_at || now <= f.nominal + s.deadline->count()) continue;
    std::optional<reg::RunRow> run;
    {
      auto store = pool_.lease();
      run = store->run(f.run_id);
    }
    const bool late = run && (!reg::is_final(run->status) ||
                              (run->finished_at && *run->finished_at > f.nominal + s.deadline->count()));
    if (!late) continue;
    writer_.apply({reg::MarkDeadlineMissed{.workflow = w.wf->name, .nominal = f.nominal, .at = now}});
    std::fprintf(stderr, "sluice serve: deadline missed: workflow %s, run %s scheduled at %s was not done %s later\n",
                 w.wf->name.c_str(), f.run_id.c_str(), format_utc(f.nominal).c_str(),
                 dsl::format_duration(*s.deadline).c_str());
  }
}

}  // namespace sluice::engine
