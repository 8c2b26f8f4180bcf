#pragma once
// `sluice run --queued RUN`: how a run that `sluice serve` queued in the
// store is executed. The process claims the run in the store (so it runs at
// most once, whoever else tries), then runs the workflow source recorded
// with it, with its recorded params and trigger.
#include <string>

#include "dsl/params.h"
#include "dsl/parser.h"

namespace sluice::engine {

struct QueuedRun {
  dsl::WorkflowPtr wf;
  dsl::ParamValues params;
  std::string trigger;      // "api", "schedule", "webhook"
  std::string params_json;  // as recorded
};

// Claims queued run `run_id` in the store at `home` for this process and
// loads it. On failure prints "sluice run: error: ..." to stderr and returns
// false; a run whose recorded workflow no longer loads is marked failed with
// the diagnostics.
bool claim_queued_run(const std::string& home, const std::string& run_id, QueuedRun& out);

}  // namespace sluice::engine
