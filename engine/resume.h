#pragma once
// `sluice resume RUN`: continuing a run whose engine died (kill -9, a crash,
// a power cut) in the same run. The resuming process takes the run over in
// one transaction (compare-and-set on its owner, so of two that try one
// wins): interrupted attempts are recorded failed with "engine died (pid
// N)", interrupted steps go back to waiting, the run to running with the new
// owner, and a `run_resumed` event says so. Then the executor restores the
// finished steps from the record (engine/executor.h, ResumeFrom) and runs the
// rest. See docs/running.md, "Resume".
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "engine/executor.h"
#include "engine/step_groups.h"
#include "registry/store.h"

namespace sluice::engine {

// Why `run` cannot be resumed, as the message that follows "sluice resume:
// error: "; "" when it can (engine_died() in engine/recovery.h).
std::string resume_refusal(registry::Store& store, const registry::RunRow& run);

struct Takeover {
  ResumeFrom from;
  size_t restored = 0;  // finished steps, restored without running
  size_t reopened = 0;  // interrupted steps, which run again
  // The recorded process groups of the interrupted attempts, which the dead
  // engine may have left running (engine/step_groups.h).
  std::vector<StepGroup> groups;
};

// "2 finished steps restored, 1 interrupted step runs again"
std::string describe(const Takeover& t);

// Takes `run` (as read; resume_refusal() said it can be resumed) over for
// this process. False with `error` (the message after "sluice resume:
// error: ") when another process took it first, or when an output of a
// finished step is gone from the artifact store at `home`; nothing is
// written then.
bool take_over_run(registry::Store& store, const std::string& home, const registry::RunRow& run, Takeover& out,
                   std::string& error);

// Once this process took `run` over (and before any step starts): ends the
// process groups of `t` that still run (end_step_groups(), SIGKILL after
// `grace`) and records a `step_processes_ended` event for each group ended.
// Returns one line per group ended, for the terminal: "ended the processes
// of b's attempt 1 (process group 4242), still running after the engine
// died (pid 4100)".
std::vector<std::string> end_leftover_processes(registry::Store& store, const registry::RunRow& run, const Takeover& t,
                                                std::chrono::milliseconds grace);

}  // namespace sluice::engine
