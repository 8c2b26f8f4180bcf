#pragma once
// What `sluice run`, `sluice retry` and `sluice rerun` share: the machine's
// options and running a loaded workflow with the terminal printer and the
// run recorder.
#include <functional>
#include <string>

#include "dsl/spec.h"
#include "engine/cli.h"
#include "engine/executor.h"

namespace sluice::engine {

struct RunStart {
  std::string trigger = "cli";  // registry::Trigger's name
  std::string parent_run;       // retry/rerun: the run it came from
  std::string run_id;           // a queued run's id (`--queued`); empty: a new id
  std::string announce;         // printed with the new run's id before it starts ("retrying ...: ")
  // --only / --from as given (opt.selected holds the nodes they select):
  // recorded with the run beside opt's keep_going, reuse and pinned_inputs
  // (engine/recorded_options.h), for `sluice resume`.
  std::string only, from;
  bool dry_run = false;
  // `sluice resume`: run_id is recorded already. Called once the workflow
  // passed the checks, before anything is recorded: takes the run over
  // (engine/resume.h) and sets `opt.resume`; returns 0, or the exit status
  // to stop with (having printed why).
  std::function<int(RunOptions& opt)> take_over;
};

// -j, -k, -v, --no-cache and --home from `args` into `opt`, with the
// machine's cores and memory; false with `status` after a usage error.
bool machine_options(const Command& cmd, const Args& args, RunOptions& opt, int& status);

// Runs `wf` (params, selection and the options above already in `opt`; a
// new run id is made here) and prints the summary; the exit status.
int run_workflow(const Command& cmd, const dsl::Workflow& wf, RunOptions opt, const RunStart& start);

}  // namespace sluice::engine
