#include "engine/serve_metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

#include "engine/serve.h"

namespace sluice::engine {

namespace reg = sluice::registry;

namespace {

std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back as v
  return std::string(buf, r.ptr);
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

// Steps that use a monitor plugin: `uses = "monitor.drift"`, `"monitor.fairness.check"`.
bool is_monitor(const dsl::Step& s) {
  return s.kind == dsl::ActionKind::Uses && (s.plugin == "monitor" || s.plugin.rfind("monitor.", 0) == 0);
}

}  // namespace

std::string prom_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

const std::vector<double>& StepHistogram::bounds() {
  static const std::vector<double> kBounds = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200};
  return kBounds;
}

void StepHistogram::update(reg::Store& store) {
  std::lock_guard<std::mutex> lock(mu_);
  for (;;) {
    std::vector<reg::FinishedStep> batch = store.finished_steps(cursor_, 5000);
    if (batch.empty()) return;
    for (const reg::FinishedStep& f : batch) {
      cursor_ = f.transition_id;
      Series& s = by_workflow_[f.workflow];
      if (s.buckets.empty()) s.buckets.assign(bounds().size(), 0);
      const double secs = static_cast<double>(f.finished_at - f.started_at) / 1000.0;
      for (size_t i = 0; i < bounds().size(); ++i)
        if (secs <= bounds()[i]) {
          ++s.buckets[i];
          break;
        }
      ++s.count;
      s.sum += secs;
    }
  }
}

std::string StepHistogram::render() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  header(out, "sluice_step_duration_seconds", "histogram",
         "Time from a step's first start to its success or failure, by workflow.");
  for (const auto& [wf, s] : by_workflow_) {
    const std::string label = "workflow=\"" + prom_label(wf) + "\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds().size(); ++i) {
      cumulative += s.buckets[i];
      out += "sluice_step_duration_seconds_bucket{" + label + ",le=\"" + num(bounds()[i]) + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    out += "sluice_step_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " + std::to_string(s.count) + "\n";
    out += "sluice_step_duration_seconds_sum{" + label + "} " + num(s.sum) + "\n";
    out += "sluice_step_duration_seconds_count{" + label + "} " + std::to_string(s.count) + "\n";
  }
  return out;
}

std::string render_metrics(ServeContext& ctx) {
  std::string out;
  auto store = ctx.pool.lease();
  std::shared_ptr<const Catalog> cat = ctx.catalog();

  header(out, "sluice_runs", "gauge", "Runs recorded in the store, by workflow and status.");
  for (const reg::RunCount& c : store->count_runs())
    out += "sluice_runs{workflow=\"" + prom_label(c.workflow) + "\",status=\"" + reg::to_string(c.status) + "\"} " +
           std::to_string(c.count) + "\n";

  header(out, "sluice_queue_depth", "gauge", "Runs queued by this server and not started yet.");
  out += "sluice_queue_depth " + std::to_string(ctx.queue.queued()) + "\n";
  header(out, "sluice_runs_active", "gauge", "Runs this server started or adopted that have not ended.");
  out += "sluice_runs_active " + std::to_string(ctx.queue.active()) + "\n";
  header(out, "sluice_runs_started_total", "counter", "Run processes this server started.");
  out += "sluice_runs_started_total " + std::to_string(ctx.queue.started_total()) + "\n";

  ctx.histogram.update(*store);
  out += ctx.histogram.render();

  std::map<std::string, ScheduleStatus> status;
  for (const ScheduleStatus& s : ctx.scheduler.status()) status[s.workflow] = s;
  std::string lag, next, fires, missed, deadline;
  for (const reg::ScheduleRow& row : store->schedules()) {
    const auto served = cat->find(row.workflow);
    if (!served || !served->wf->schedule) continue;  // no longer scheduled
    const std::string label = "{workflow=\"" + prom_label(row.workflow) + "\"}";
    std::vector<reg::FireRow> last = store->fires(row.workflow, 1);
    if (!last.empty()) lag += "sluice_schedule_lag_seconds" + label + " " + num((last[0].fired_at - last[0].nominal) / 1000.0) + "\n";
    auto st = status.find(row.workflow);
    if (st != status.end() && st->second.next_fire)
      next += "sluice_schedule_next_fire_timestamp_seconds" + label + " " + num(*st->second.next_fire / 1000.0) + "\n";
    fires += "sluice_schedule_fires_total" + label + " " + std::to_string(row.fires) + "\n";
    missed += "sluice_schedule_missed_total" + label + " " + std::to_string(row.missed) + "\n";
    deadline += "sluice_schedule_deadline_missed_total" + label + " " + std::to_string(row.deadline_misses) + "\n";
  }
  header(out, "sluice_schedule_lag_seconds", "gauge", "How late the newest fire of each schedule was, after its time.");
  out += lag;
  header(out, "sluice_schedule_next_fire_timestamp_seconds", "gauge", "When each schedule fires next (Unix time).");
  out += next;
  header(out, "sluice_schedule_fires_total", "counter", "Fires recorded per schedule (runs queued or skipped).");
  out += fires;
  header(out, "sluice_schedule_missed_total", "counter", "Fire times passed over after downtime (catchup).");
  out += missed;
  header(out, "sluice_schedule_deadline_missed_total", "counter", "Scheduled runs not done by the schedule's deadline.");
  out += deadline;

  std::string metrics, values;
  for (const auto& [name, served] : cat->workflows) {
    for (const dsl::Step& step : served.wf->steps) {
      if (!is_monitor(step)) continue;
      for (const reg::StepRow& inst : store->last_succeeded_instances(name, step.name)) {
        const std::string base = "workflow=\"" + prom_label(name) + "\",step=\"" + prom_label(step.name) +
                                 "\",node=\"" + prom_label(inst.node) + "\"";
        std::map<std::string, double> latest;  // the last report of each metric name
        for (const reg::MetricRow& m : store->metrics(inst.run_id, inst.node)) latest[m.name] = m.value;
        for (const auto& [metric, value] : latest)
          metrics += "sluice_monitor_metric{" + base + ",name=\"" + prom_label(metric) + "\"} " + num(value) + "\n";
        for (const reg::ValueRow& v : store->values(inst.run_id, inst.node)) {
          char* end = nullptr;
          const double d = std::strtod(v.value.c_str(), &end);
          if (v.value.empty() || end != v.value.c_str() + v.value.size()) continue;  // not a number
          values += "sluice_monitor_value{" + base + ",key=\"" + prom_label(v.key) + "\"} " + num(d) + "\n";
        }
      }
    }
  }
  header(out, "sluice_monitor_metric", "gauge", "The latest metrics of monitor steps, from their newest successful run.");
  out += metrics;
  header(out, "sluice_monitor_value", "gauge", "The numeric values of monitor steps, from their newest successful run.");
  out += values;
  return out;
}

}  // namespace sluice::engine
