#pragma once
// GET /metrics: Prometheus text exposition (format 0.0.4). Runs by workflow
// and status, the queue, a histogram of step durations, the schedules (lag,
// next fire, fires, misses, deadline misses) and the latest metrics and
// numeric values of monitor steps (steps that use a `monitor` plugin).
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "registry/store.h"

namespace sluice::engine {

class ServeContext;

// The step duration histogram, fed incrementally from the store's step
// transitions (a cursor), so a scrape reads only what finished since the last.
class StepHistogram {
 public:
  static const std::vector<double>& bounds();  // upper bounds in seconds, +Inf implied
  // Adds the steps finished since the last call. Thread-safe.
  void update(registry::Store& store);
  // "sluice_step_duration_seconds..." lines, by workflow.
  std::string render();

 private:
  struct Series {
    std::vector<uint64_t> buckets;  // per bound, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  std::mutex mu_;
  int64_t cursor_ = 0;
  std::map<std::string, Series> by_workflow_;
};

std::string render_metrics(ServeContext& ctx);

// A Prometheus label value with \, " and newlines escaped.
std::string prom_label(const std::string& value);

}  // namespace sluice::engine
