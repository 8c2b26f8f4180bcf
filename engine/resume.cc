#include "engine/resume.h"

#include <unistd.h>

#include <optional>

#include "engine/cli_format.h"
#include "engine/recovery.h"
#include "engine/status_printer.h"
#include "registry/artifact_store.h"

namespace sluice::engine {

namespace reg = sluice::registry;

namespace {

std::string retry_hint(const std::string& id) {
  return "only a run whose engine died can be resumed (sluice retry " + id + " runs its unfinished steps as a new run)";
}

std::optional<NodeState> node_state(reg::StepStatus s) {
  switch (s) {
    case reg::StepStatus::Succeeded: return NodeState::Succeeded;
    case reg::StepStatus::Cached: return NodeState::Cached;
    case reg::StepStatus::Failed: return NodeState::Failed;
    case reg::StepStatus::Skipped: return NodeState::Skipped;
    case reg::StepStatus::Cancelled: return NodeState::Cancelled;
    default: return std::nullopt;
  }
}

SkipReason skip_reason(const std::string& text) {
  for (SkipReason r : {SkipReason::When, SkipReason::UpstreamSkipped, SkipReason::UpstreamFailed, SkipReason::Stopped})
    if (text == to_string(r)) return r;
  return SkipReason::None;
}

}  // namespace

std::string resume_refusal(reg::Store& store, const reg::RunRow& run) {
  if (engine_died(store, run)) return {};
  const std::string& id = run.id;
  switch (run.status) {
    case reg::RunStatus::Queued: return "run " + id + " is queued and has not started: there is nothing to resume";
    case reg::RunStatus::Running:
      return "run " + id + " is running in process " + std::to_string(run.owner_pid) +
             ": only a run whose engine died can be resumed";
    case reg::RunStatus::Succeeded: return "run " + id + " succeeded: there is nothing to resume (sluice rerun " + id + " runs it again)";
    case reg::RunStatus::Failed:
      return "run " + id + " failed" + (run.error.empty() ? "" : " (" + run.error + ")") + ": " + retry_hint(id);
    case reg::RunStatus::Cancelled: return "run " + id + " was cancelled: " + retry_hint(id);
  }
  return "run " + id + " cannot be resumed";
}

std::string describe(const Takeover& t) {
  return count_noun(t.restored, "finished step") + " restored, " + count_noun(t.reopened, "interrupted step") +
         (t.reopened == 1 ? " runs" : " run") + " again";
}

bool take_over_run(reg::Store& store, const std::string& home, const reg::RunRow& run, Takeover& out,
                   std::string& error) {
  const int64_t now = reg::now_ms();
  const std::string why = engine_died_error(run.owner_pid);
  std::optional<reg::ArtifactStore> cas;
  if (auto opened = reg::ArtifactStore::open(home); opened) {
    cas.emplace(std::move(*opened));
  } else {
    error = "cannot open the artifact store: " + opened.error();
    return false;
  }
  std::vector<reg::Write> writes{reg::ResumeRun{.run_id = run.id, .dead_pid = run.owner_pid, .dead_start = run.owner_start,
                                                .pid = ::getpid(), .start = process_start_id(::getpid()), .at = now}};
  for (const reg::StepRow& s : store.steps(run.id)) {
    // Unfinished, or failed by crash recovery (whenever that happened: the
    // run as read may predate it): interrupted, not failed by itself.
    std::optional<NodeState> state = node_state(s.status);
    const bool interrupted = !state || (s.status == reg::StepStatus::Failed && is_engine_died_error(s.error));
    if (!interrupted) {
      for (const reg::OutputRow& o : store.outputs(run.id, s.node)) {
        auto d = reg::Digest::parse(o.digest);
        if (!d || !cas->exists(*d)) {
          error = "run " + run.id + " cannot be resumed: output '" + o.name + "' of step '" + s.node +
                  "' is gone from the artifact store (sluice retry " + run.id + " runs the step again)";
          return false;
        }
      }
      out.from.finished[s.node] = ResumeFrom::Finished{*state, skip_reason(s.skip_reason)};
      ++out.restored;
      continue;
    }
    ResumeFrom::Attempts& a = out.from.unfinished[s.node];
    for (const reg::AttemptRow& row : store.attempts(run.id, s.node)) {
      ++a.recorded;
      if (row.status != reg::AttemptStatus::Running && !is_engine_died_error(row.error)) continue;
      ++a.interrupted;
      if (row.pgid > 0) out.groups.push_back(StepGroup{s.node, row.number, row.pgid, row.pgid_start});
    }
    fail_running_attempts(store, home, cas, run.id, s.node, why, now, writes);
    writes.push_back(reg::ReopenStep{.run_id = run.id, .node = s.node, .at = now});
    ++out.reopened;
  }
  writes.push_back(reg::AddEvent{.run_id = run.id, .at = now, .kind = "run_resumed",
                                 .message = "resumed by pid " + std::to_string(::getpid()) + " after the " + why + ": " +
                                            describe(out)});
  try {
    store.apply(writes);
  } catch (const reg::StoreError&) {
    // Lost the race: say what the run is now, as a refusal would.
    std::optional<reg::RunRow> now_run = store.run(run.id);
    if (now_run && now_run->owner_pid != run.owner_pid) {
      error = resume_refusal(store, *now_run);
      if (error.empty()) error = "run " + run.id + " was taken over by process " + std::to_string(now_run->owner_pid);
      return false;
    }
    throw;
  }
  return true;
}

std::vector<std::string> end_leftover_processes(reg::Store& store, const reg::RunRow& run, const Takeover& t,
                                                std::chrono::milliseconds grace) {
  const std::vector<GroupFate> fates = end_step_groups(t.groups, grace);
  std::vector<std::string> lines;
  std::vector<reg::Write> events;
  for (size_t i = 0; i < t.groups.size(); ++i) {
    if (fates[i] != GroupFate::Ended && fates[i] != GroupFate::Killed) continue;
    const StepGroup& g = t.groups[i];
    const std::string what = "the processes of " + g.node + "'s attempt " + std::to_string(g.attempt) +
                             " (process group " + std::to_string(g.pgid) + "), still running after the " +
                             engine_died_error(run.owner_pid);
    const std::string how = fates[i] == GroupFate::Ended ? "SIGTERM" : "SIGKILL after " + format_elapsed(grace);
    lines.push_back("ended " + what);
    events.push_back(reg::AddEvent{.run_id = run.id, .at = reg::now_ms(), .kind = "step_processes_ended",
                                   .node = g.node, .message = "ended " + what + ": " + how});
  }
  if (!events.empty()) store.apply(events);
  return lines;
}

}  // namespace sluice::engine
