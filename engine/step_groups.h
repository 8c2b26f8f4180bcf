#pragma once
// The process groups of step attempts that an engine left running when it
// died (kill -9, a crash): every `run` step is a process group whose leader
// is the step's shell, recorded with its attempt (registry::StartAttempt:
// pgid, and process_start_id() of the leader). `sluice resume` ends them
// before it starts new attempts, so two attempts of one step never run at
// once (docs/running.md, "Resume").
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::engine {

struct StepGroup {
  std::string node;
  int attempt = 0;
  int64_t pgid = 0;
  std::string start;  // process_start_id() of the leader when the attempt started
};

enum class GroupFate {
  Gone,        // no live process is left in the group: nothing to do
  NotTheStep,  // the leader is gone, or its pid now belongs to another process: left alone
  Ended,       // it ended after SIGTERM, within the grace period
  Killed,      // it was still there after the grace period: SIGKILL
};

// Ends each group of `groups` that is still the step's: its leader (pid ==
// pgid; a zombie not yet reaped counts) has the recorded start id, and some
// process of the group still runs. SIGTERM (and SIGCONT, for a stopped one)
// goes to all such groups at once; whatever of them still runs after `grace`
// gets SIGKILL. A group without a recorded start id, or whose leader has
// exited and been reaped, is left alone: its id may have been reused, so it
// cannot be told apart from an unrelated group. Returns once no process of
// the signalled groups runs any more (or a few seconds after SIGKILL), one
// fate per group, in order.
std::vector<GroupFate> end_step_groups(const std::vector<StepGroup>& groups, std::chrono::milliseconds grace);

}  // namespace sluice::engine
