// `sluice cancel RUN`, `sluice retry RUN`, `sluice rerun RUN` and `sluice
// resume RUN`: acting on a recorded run.
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "dsl/parser.h"
#include "engine/cli.h"
#include "engine/cli_format.h"
#include "engine/exit_status.h"
#include "engine/recorded_options.h"
#include "engine/recovery.h"
#include "engine/resume.h"
#include "engine/run_workflow.h"
#include "engine/state_store.h"

namespace sluice::engine {

namespace {

namespace reg = sluice::registry;

// ---- cancel

int run_cancel(const Args& args) {
  const std::string home = state_home(args);
  auto store = open_history_store("cancel", home);  // a run whose engine died is marked failed here
  if (!store) return kExitBadInput;
  const std::string& id = args.positional[0];
  std::optional<reg::RunRow> run = store->run(id);
  if (!run) {
    std::fprintf(stderr, "sluice cancel: error: no run '%s'\n", id.c_str());
    return kExitBadInput;
  }
  if (reg::is_final(run->status)) {
    std::fprintf(stderr, "sluice cancel: error: run %s has already finished: %s%s\n", id.c_str(), reg::to_string(run->status),
                 run->error.empty() ? "" : (" (" + run->error + ")").c_str());
    return kExitBadInput;
  }
  if (run->owner_pid <= 0 || !owner_alive(run->owner_pid, run->owner_start)) {
    std::fprintf(stderr, "sluice cancel: error: run %s is %s but no process of this machine runs it\n", id.c_str(),
                 reg::to_string(run->status));
    return kExitBadInput;
  }
  // The owner (`sluice run`) treats SIGTERM like Ctrl-C: it cancels running
  // steps (SIGTERM to their process groups, SIGKILL after the grace period),
  // starts nothing new and records the run as cancelled.
  if (::kill(static_cast<pid_t>(run->owner_pid), SIGTERM) != 0) {
    std::fprintf(stderr, "sluice cancel: error: cannot signal pid %lld: %s\n", static_cast<long long>(run->owner_pid),
                 std::strerror(errno));
    return kExitInternal;
  }
  std::printf("cancelling run %s (pid %lld)\n", id.c_str(), static_cast<long long>(run->owner_pid));
  std::fflush(stdout);
  if (args.flag("no-wait")) return kExitSuccess;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    run = store->run(id);
    if (run && reg::is_final(run->status)) {
      std::printf("run %s %s\n", id.c_str(), reg::to_string(run->status));
      return kExitSuccess;
    }
    if (!owner_alive(run->owner_pid, run->owner_start)) {
      recover_dead_runs(*store, home);
      run = store->run(id);
      std::printf("run %s %s (%s)\n", id.c_str(), reg::to_string(run->status), run->error.c_str());
      return kExitSuccess;
    }
  }
  std::fprintf(stderr, "sluice cancel: error: run %s did not stop within 60 s\n", id.c_str());
  return kExitRunFailed;
}

// ---- retry and rerun

dsl::Value value_of(const nlohmann::json& j) {
  if (j.is_boolean()) return dsl::Value(j.get<bool>());
  if (j.is_number_integer()) return dsl::Value(j.get<int64_t>());
  if (j.is_number()) return dsl::Value(j.get<double>());
  if (j.is_string()) return dsl::Value(j.get<std::string>());
  if (j.is_array()) {
    dsl::ValueArray a;
    for (const auto& e : j) a.push_back(value_of(e));
    return dsl::Value(std::move(a));
  }
  dsl::ValueTable t;
  if (j.is_object())
    for (const auto& [k, v] : j.items()) t[k] = value_of(v);
  return dsl::Value(std::move(t));
}

// The workflow and params of a recorded run: the source text as recorded
// (parsed as if at its recorded path, so relative scripts and inputs
// resolve as they did), the params as recorded.
struct Recorded {
  reg::RunRow run;
  dsl::WorkflowPtr wf;
  dsl::ParamValues params;
};

std::optional<Recorded> load_recorded(const Command& cmd, reg::Store& store, const std::string& id) {
  Recorded r;
  std::optional<reg::RunRow> run = store.run(id);
  if (!run) {
    std::fprintf(stderr, "sluice %s: error: no run '%s'\n", cmd.name.c_str(), id.c_str());
    return std::nullopt;
  }
  r.run = *run;
  std::optional<reg::WorkflowRow> w = store.workflow(run->workflow_id);
  if (!w) {
    std::fprintf(stderr, "sluice %s: error: run %s's workflow is not recorded\n", cmd.name.c_str(), id.c_str());
    return std::nullopt;
  }
  dsl::Diagnostics diags;
  r.wf = dsl::parse_workflow(w->source, w->path.empty() ? w->name + ".toml" : w->path, diags);
  if (!r.wf) {
    std::fprintf(stderr, "sluice %s: error: run %s's workflow no longer loads:\n%s", cmd.name.c_str(), id.c_str(),
                 diags.format_all().c_str());
    return std::nullopt;
  }
  r.params = dsl::default_params(*r.wf);
  nlohmann::json recorded = nlohmann::json::parse(run->params_json.empty() ? "{}" : run->params_json, nullptr, false);
  if (recorded.is_object())
    for (const auto& [k, v] : recorded.items())
      if (r.wf->find_param(k)) r.params[k] = value_of(v);
  return r;
}

int run_retry(const Args& args) {
  const std::string home = state_home(args);
  auto store = open_history_store("retry", home);
  if (!store) return kExitBadInput;
  const std::string& id = args.positional[0];
  std::optional<Recorded> rec = load_recorded(retry_command(), *store, id);
  if (!rec) return kExitBadInput;
  if (!reg::is_final(rec->run.status)) {
    std::fprintf(stderr, "sluice retry: error: run %s is still %s (cancel it first, or wait)\n", id.c_str(),
                 reg::to_string(rec->run.status));
    return kExitBadInput;
  }
  if (rec->run.status == reg::RunStatus::Succeeded) {
    std::fprintf(stderr, "sluice retry: error: run %s succeeded: nothing to retry (sluice rerun runs it again)\n", id.c_str());
    return kExitBadInput;
  }
  RunOptions opt;
  int status = 0;
  if (!machine_options(retry_command(), args, opt, status)) return status;
  opt.params = rec->params;
  size_t reused = 0;
  for (const reg::StepRow& s : store->steps(id)) {
    if (s.status != reg::StepStatus::Succeeded && s.status != reg::StepStatus::Cached) continue;
    opt.reuse[s.node] = id;
    ++reused;
  }
  store.reset();
  RunStart start;
  start.trigger = "retry";
  start.parent_run = id;
  start.announce = "retrying " + id + " (" + std::to_string(reused) + " succeeded steps reused) as";
  return run_workflow(retry_command(), *rec->wf, std::move(opt), start);
}

int run_rerun(const Args& args) {
  const std::string home = state_home(args);
  auto store = open_history_store("rerun", home);
  if (!store) return kExitBadInput;
  const std::string& id = args.positional[0];
  std::optional<Recorded> rec = load_recorded(rerun_command(), *store, id);
  if (!rec) return kExitBadInput;
  RunOptions opt;
  int status = 0;
  if (!machine_options(rerun_command(), args, opt, status)) return status;
  opt.params = rec->params;
  // Inputs read from outside the workflow are pinned to the bytes the run
  // read (when the artifact store still has them).
  for (const reg::StepRow& s : store->steps(id))
    for (const reg::InputRow& in : store->inputs(id, s.node))
      if (in.from_run.empty()) opt.pinned_inputs[s.node][in.name] = in.digest;
  store.reset();
  RunStart start;
  start.trigger = "rerun";
  start.parent_run = id;
  start.announce = "rerunning " + id + " as";
  return run_workflow(rerun_command(), *rec->wf, std::move(opt), start);
}

// ---- resume

int run_resume(const Args& args) {
  if (args.flag("keep-going") && args.flag("no-keep-going"))
    return usage_error(resume_command(), "--keep-going and --no-keep-going cannot be combined");
  const std::string home = state_home(args);
  // A run whose engine died is taken over as it is: running (no process
  // marked it failed yet, so a client of `sluice serve` never sees it fail
  // on the way) or failed by recovery.
  auto store = open_history_store("resume", home, false);
  if (!store) return kExitBadInput;
  const std::string& id = args.positional[0];
  std::optional<Recorded> rec = load_recorded(resume_command(), *store, id);
  if (!rec) return kExitBadInput;
  if (std::string refusal = resume_refusal(*store, rec->run); !refusal.empty()) {
    std::fprintf(stderr, "sluice resume: error: %s\n", refusal.c_str());
    return kExitBadInput;
  }
  RunOptions opt;
  int status = 0;
  if (!machine_options(resume_command(), args, opt, status)) return status;
  opt.params = rec->params;
  opt.no_cache = rec->run.no_cache;
  // What the run was started with: the same steps, the same pinned inputs
  // and reused results; keep-going as recorded unless chosen here.
  RecordedOptions recorded;
  std::string bad;
  if (!parse_recorded_options(rec->run.options_json, recorded, bad) ||
      !(bad = select_nodes(*rec->wf, recorded.only, recorded.from, opt.selected)).empty()) {
    std::fprintf(stderr, "sluice resume: error: run %s cannot be resumed: %s\n", id.c_str(), bad.c_str());
    return kExitBadInput;
  }
  opt.keep_going = args.flag("keep-going") || (recorded.keep_going && !args.flag("no-keep-going"));
  opt.reuse = std::move(recorded.reuse);
  opt.pinned_inputs = std::move(recorded.pinned_inputs);
  // `sluice serve` resuming its run passes the folder it serves, as for
  // `sluice run --queued`: workflow.trigger then queues runs there.
  if (!args.value("workflows").empty())
    opt.served_workflows = std::filesystem::absolute(args.value("workflows")).lexically_normal().string();
  RunStart start;
  start.run_id = id;
  start.trigger = reg::to_string(rec->run.trigger);
  start.parent_run = rec->run.parent_run;
  // After the checks (plugins, resources): a run that cannot start is left
  // as it was, for a later resume.
  start.take_over = [&](RunOptions& o) {
    Takeover takeover;
    std::string error;
    try {
      if (!take_over_run(*store, home, rec->run, takeover, error)) {
        std::fprintf(stderr, "sluice resume: error: %s\n", error.c_str());
        return kExitBadInput;
      }
    } catch (const reg::StoreError& e) {
      std::fprintf(stderr, "sluice resume: error: cannot take run %s over: %s\n", id.c_str(), e.what());
      return kExitInternal;
    }
    o.resume = std::move(takeover.from);
    std::printf("resuming run %s: %s\n", id.c_str(), describe(takeover).c_str());
    // Before any step starts again: no two attempts of a step run at once.
    try {
      for (const std::string& line : end_leftover_processes(*store, rec->run, takeover, o.kill_grace))
        std::printf("%s\n", line.c_str());
    } catch (const reg::StoreError& e) {
      std::fprintf(stderr, "sluice resume: error: cannot record the processes ended: %s\n", e.what());
      return kExitInternal;
    }
    std::fflush(stdout);
    store.reset();
    return kExitSuccess;
  };
  return run_workflow(resume_command(), *rec->wf, std::move(opt), start);
}

const std::vector<OptionSpec> kRunOptions = {
    {"jobs", 'j', "N", "run at most N steps at once (default: the number of cores)"},
    {"keep-going", 'k', "", "after a failure, still run every step whose dependencies succeeded"},
    {"no-cache", 0, "", "run every step that is not reused, even those whose result is in the cache"},
    {"verbose", 'v', "", "stream every step's output, prefixed with its name"},
    kHomeOption};

}  // namespace

const Command& cancel_command() {
  static const Command cmd{"cancel",
                           "cancel a running run: its engine stops its steps and records it cancelled",
                           "sluice cancel RUN [--no-wait] [--home DIR]",
                           "Signals the process that runs RUN (recorded in the store) and waits until\n"
                           "the run is recorded as finished. A run whose engine died is marked failed.",
                           {{"no-wait", 0, "", "return once the signal is sent"}, kHomeOption},
                           1,
                           1,
                           run_cancel};
  return cmd;
}

const Command& retry_command() {
  static const Command cmd{"retry",
                           "run a failed or cancelled run's unfinished steps again, reusing what succeeded",
                           "sluice retry RUN [-j N] [--keep-going] [--no-cache] [-v] [--home DIR]",
                           "A new run (trigger 'retry') of the workflow source and params RUN recorded.\n"
                           "Steps that succeeded (or were cached) in RUN are restored from its results\n"
                           "without running; the failed, cancelled, skipped and never-started ones run.\n"
                           "A run whose engine died (kill -9, power cut) can also be continued as itself\n"
                           "with 'sluice resume'.",
                           kRunOptions,
                           1,
                           1,
                           run_retry};
  return cmd;
}

const Command& resume_command() {
  static const Command cmd{"resume",
                           "continue a run whose engine died (kill -9, crash, power cut) in the same run",
                           "sluice resume RUN [-j N] [--keep-going | --no-keep-going] [-v] [--home DIR] [--workflows DIR]",
                           "RUN itself goes on, with the workflow source, params and options it recorded\n"
                           "(--only/--from, --keep-going, --no-cache, a rerun's pinned inputs): steps\n"
                           "that finished keep their records and are restored from the store without\n"
                           "running; steps that were running when the engine died start a new attempt\n"
                           "(the interrupted one stays recorded, failed with 'engine died'), once the\n"
                           "processes the dead engine left of them are ended (SIGTERM, then SIGKILL);\n"
                           "steps that never started run. Only a run whose engine died can be resumed:\n"
                           "for a run that failed or was cancelled, 'sluice retry' makes a new run. This\n"
                           "process takes the run over in one transaction, so of two 'sluice resume RUN'\n"
                           "one runs it.",
                           {kRunOptions[0],
                            {"keep-going", 'k', "", "keep going after a failure, whatever the run recorded"},
                            {"no-keep-going", 0, "", "stop after a failure, whatever the run recorded"},
                            kRunOptions[3], kHomeOption,
                            {"workflows", 0, "DIR",
                             "a run of 'sluice serve': the folder it serves (where workflow.trigger queues)"}},
                           1,
                           1,
                           run_resume};
  return cmd;
}

const Command& rerun_command() {
  static const Command cmd{"rerun",
                           "run a recorded run again: same workflow source, same params, same inputs",
                           "sluice rerun RUN [-j N] [--keep-going] [--no-cache] [-v] [--home DIR]",
                           "A new run (trigger 'rerun') of the workflow source and params RUN recorded;\n"
                           "files it read from the workflow's folder are taken from the artifact store\n"
                           "as they were then. The step cache applies as in any run: pass --no-cache to\n"
                           "execute every step again (e.g. to check that the results reproduce).",
                           kRunOptions,
                           1,
                           1,
                           run_rerun};
  return cmd;
}

}  // namespace sluice::engine
