#pragma once
// Both ends of `sluice serve`'s run queue in the store: the writes that
// queue a run, and `sluice run --queued RUN`, how a queued run is executed.
// The process claims the run in the store (so it runs at most once, whoever
// else tries), then runs the workflow source recorded with it, with its
// recorded params and trigger.
#include <string>

#include <cstdint>
#include <vector>

#include "dsl/params.h"
#include "dsl/parser.h"
#include "engine/serve_catalog.h"
#include "registry/store.h"

namespace sluice::engine {

struct QueuedRun {
  dsl::WorkflowPtr wf;
  dsl::ParamValues params;
  std::string trigger;      // "api", "schedule", "webhook"
  std::string params_json;  // as recorded
};

// The writes that queue run `run_id` of the served workflow `w` with typed
// `params` (created `queued`, in the run queue) for the server to start.
// `parent_run`: the run that asked for it (workflow.trigger), or "". Used by
// the API, the webhook and workflow.trigger inside a run the server started.
std::vector<registry::Write> queued_run_writes(const ServedWorkflow& w, const dsl::ParamValues& params,
                                               registry::Trigger trigger, const std::string& run_id, int64_t now,
                                               const std::string& parent_run = {});

// Claims queued run `run_id` in the store at `home` for this process and
// loads it. On failure prints "sluice run: error: ..." to stderr and returns
// false; a run whose recorded workflow no longer loads is marked failed with
// the diagnostics.
bool claim_queued_run(const std::string& home, const std::string& run_id, QueuedRun& out);

}  // namespace sluice::engine
