#include "engine/queued_run.h"

#include <unistd.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "dsl/parser.h"
#include "engine/params_json.h"
#include "engine/recovery.h"
#include "engine/run_recorder.h"
#include "engine/state_store.h"
#include "sluice/version.h"

namespace sluice::engine {

namespace reg = sluice::registry;

namespace {

bool fail(const std::string& message) {
  std::fprintf(stderr, "sluice run: error: %s\n", message.c_str());
  return false;
}

}  // namespace

std::vector<reg::Write> queued_run_writes(const ServedWorkflow& w, const dsl::ParamValues& params, reg::Trigger trigger,
                                          const std::string& run_id, int64_t now, const std::string& parent_run) {
  return {reg::CreateRun{.id = run_id,
                         .workflow_name = w.wf->name,
                         .workflow_digest = w.digest,
                         .params_json = params_json(params),
                         .trigger = trigger,
                         .status = reg::RunStatus::Queued,
                         .at = now,
                         .sluice_version = SLUICE_VERSION,
                         .git_commit = w.git_commit,
                         .parent_run = parent_run},
          reg::QueueRun{.run_id = run_id, .at = now}};
}

bool claim_queued_run(const std::string& home, const std::string& run_id, QueuedRun& out) {
  std::unique_ptr<reg::Store> store;
  try {
    store = open_state_store(home);
    auto run = store->run(run_id);
    if (!run) return fail("no run '" + run_id + "' in " + home);
    if (run->status != reg::RunStatus::Queued)
      return fail("run '" + run_id + "' is " + reg::to_string(run->status) + ", not queued");
    store->apply({reg::ClaimQueuedRun{.run_id = run_id, .pid = getpid(), .start = process_start_id(getpid()),
                                      .at = reg::now_ms()}});
    auto wf_row = store->workflow(run->workflow_id);
    if (!wf_row) return fail("run '" + run_id + "' names a workflow the store does not have");
    dsl::Diagnostics diags;
    out.wf = dsl::parse_workflow(wf_row->source, wf_row->path, diags);
    std::string error;
    if (!out.wf) {
      error = "its workflow no longer loads:\n" + diags.format_all();
    } else if (!params_from_json(*out.wf, nlohmann::json::parse(run->params_json, nullptr, false), out.params,
                                 error)) {
      error = "its params do not fit the workflow: " + error;
    }
    if (!error.empty()) {
      store->apply({reg::SetRunStatus{.run_id = run_id, .status = reg::RunStatus::Failed, .at = reg::now_ms(),
                                      .error = error}});
      return fail("run '" + run_id + "' cannot start: " + error);
    }
    out.trigger = reg::to_string(run->trigger);
    out.params_json = run->params_json;
    return true;
  } catch (const reg::StoreError& e) {
    return fail(std::string("cannot start run '") + run_id + "': " + e.what());
  }
}

}  // namespace sluice::engine
