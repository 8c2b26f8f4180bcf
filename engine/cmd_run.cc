// `sluice run FILE`: runs a workflow on this machine.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "engine/cache_prefetch.h"
#include "engine/cli.h"
#include "engine/executor.h"
#include "engine/exit_status.h"
#include "engine/leave_at_exit.h"
#include "engine/plugin_check.h"
#include "engine/queued_run.h"
#include "engine/recorded_options.h"
#include "engine/recovery.h"
#include "engine/run_recorder.h"
#include "engine/run_workflow.h"
#include "engine/runner_posix.h"
#include "engine/state_store.h"
#include "engine/status_printer.h"
#include "engine/workflow_args.h"

namespace sluice::engine {

namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<Runner*> g_runner{nullptr};

extern "C" void on_signal(int) {
  g_interrupted.store(true);
  if (Runner* r = g_runner.load()) r->wake();
}

bool parse_count(const std::string& text, uint32_t& out) {
  if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  out = static_cast<uint32_t>(std::stoul(text));
  return out > 0;
}

}  // namespace

std::string state_home(const Args& args) {
  std::string home = args.value("home");
  if (home.empty())
    if (const char* env = std::getenv("SLUICE_HOME")) home = env;
  if (home.empty()) home = ".sluice";
  return std::filesystem::absolute(home).lexically_normal().string();
}

// Options every command that starts a run shares (-j, -k, -v, --no-cache,
// --home), from `args` into `opt`; false after printing a usage error.
bool machine_options(const Command& cmd, const Args& args, RunOptions& opt, int& status) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  opt.jobs = cores;
  if (!args.value("jobs").empty() && !parse_count(args.value("jobs"), opt.jobs)) {
    status = usage_error(cmd, "-j needs a positive number, found '" + args.value("jobs") + "'");
    return false;
  }
  opt.cpus = cores;
  opt.memory = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE));
  opt.keep_going = args.flag("keep-going");
  opt.verbose = args.flag("verbose");
  opt.no_cache = args.flag("no-cache");
  opt.home = state_home(args);
  return true;
}

int run_workflow(const Command& cmd, const dsl::Workflow& wf, RunOptions opt, const RunStart& start) {
  // Plugin steps are checked before anything runs, as `sluice validate` does.
  std::unique_ptr<PluginCatalog> catalog = make_catalog(workflow_dir(wf));
  {
    dsl::Diagnostics diags;
    diags.set_path(wf.path);
    if (!check_plugin_steps(wf, *catalog, diags)) {
      diags.set_source(wf.source);
      std::fputs(diags.format_all().c_str(), stderr);
      return kExitBadInput;
    }
  }
  if (std::string error = check_resources(wf, opt); !error.empty()) {
    std::fprintf(stderr, "sluice %s: error: %s\n", cmd.name.c_str(), error.c_str());
    return kExitBadInput;
  }
  opt.run_id = start.run_id.empty() ? new_run_id() : start.run_id;
  opt.find_plugin = [&catalog](const std::string& plugin, const dsl::PluginManifest*& manifest, std::string& err) {
    manifest = catalog->find(plugin, err);
    return manifest ? catalog->handler(plugin, err) : std::shared_ptr<ActionHandler>();
  };
  opt.plugin_version = [&catalog](const std::string& plugin) {
    std::string err;
    const dsl::PluginManifest* m = catalog->find(plugin, err);
    return m ? m->version : std::string();
  };

  std::unique_ptr<Runner> runner = make_posix_runner();
  StatusPrinter printer(wf, stdout, isatty(STDOUT_FILENO) && std::getenv("TERM") && std::string(std::getenv("TERM")) != "dumb");
  if (start.dry_run) {
    Executor dry(wf, *runner, printer, opt);
    for (const std::string& l : dry.dry_run()) std::printf("%s\n", l.c_str());
    return kExitSuccess;
  }
  if (start.take_over)
    if (int status = start.take_over(opt); status != kExitSuccess) return status;
  std::unique_ptr<RunRecorder> recorder;
  try {
    // Runs whose engine died are marked failed first (engine/recovery.h).
    recover_dead_runs(*open_state_store(opt.home), opt.home);
    const RecordedOptions recorded{.only = start.only, .from = start.from, .keep_going = opt.keep_going,
                                   .reuse = opt.reuse, .pinned_inputs = opt.pinned_inputs};
    recorder = std::make_unique<RunRecorder>(
        wf, printer,
        RecordedRun{.run_id = opt.run_id, .home = opt.home, .trigger = start.trigger, .params_json = params_json(opt.params),
                    .parent_run = start.parent_run, .no_cache = opt.no_cache, .resumed = bool(start.take_over),
                    .options_json = to_json(recorded)});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice %s: error: cannot open the store in %s: %s\n", cmd.name.c_str(), opt.home.c_str(), e.what());
    return kExitInternal;
  }
  if (!start.announce.empty()) std::printf("%s run %s\n", start.announce.c_str(), opt.run_id.c_str());
  Executor executor(wf, *runner, *recorder, opt);

  g_runner.store(runner.get());
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  RunRecord rec = executor.run(g_interrupted);
  g_runner.store(nullptr);
  recorder->flush();

  std::string summary = format_summary(wf, rec);
  std::fputs(summary.c_str(), stdout);
  std::fflush(stdout);
  int status = kExitSuccess;
  for (const NodeRecord& n : rec.nodes)
    if (n.state == NodeState::Failed || n.state == NodeState::Cancelled) status = kExitRunFailed;
  if (rec.interrupted) status = kExitInterrupted;
  leave_at_exit(std::move(rec));  // the command ends here
  return status;
}

namespace {

int run_run(const Args& args) {
  // --queued: a run `sluice serve` queued; its workflow, params and trigger
  // come from the store (engine/queued_run.h).
  const std::string queued = args.value("queued");
  if (queued.empty() && args.positional.empty()) return usage_error(run_command(), "missing argument");
  if (!queued.empty() && (!args.positional.empty() || !args.all("param").empty()))
    return usage_error(run_command(), "--queued takes no FILE and no -p: the run's workflow and params are recorded");
  if (queued.empty() && !args.value("workflows").empty())
    return usage_error(run_command(), "--workflows goes with --queued: it names the folder sluice serve serves");
  if (!queued.empty() && !args.value("parent").empty())
    return usage_error(run_command(), "--parent does not go with --queued: a queued run's parent is recorded");
  RunOptions opt;
  RunStart start;
  dsl::WorkflowPtr wf;
  if (!queued.empty()) {
    QueuedRun q;
    if (!claim_queued_run(state_home(args), queued, q)) return kExitBadInput;
    wf = q.wf;
    opt.params = q.params;
    start.run_id = queued;
    start.trigger = q.trigger;
    // Under sluice serve: workflow.trigger queues runs of the served
    // workflows. The server passes its folder; without it, the folder the
    // run's own file was served from.
    std::string served = args.value("workflows");
    if (served.empty()) served = std::filesystem::path(wf->path).parent_path().string();
    opt.served_workflows = std::filesystem::absolute(served).lexically_normal().string();
  } else {
    // The cache entries a re-run will ask for are read while the file is parsed.
    if (!args.flag("no-cache") && !args.flag("dry-run"))
      opt.cache_prefetch = std::make_shared<CachePrefetch>(state_home(args), args.positional[0]);
    wf = load_or_report(args.positional[0]);
    if (!wf) return kExitBadInput;
    if (!resolve_params(*wf, args.all("param"), opt.params)) return kExitBadInput;
    if (!args.value("parent").empty()) {  // a child run of workflow.run / workflow.trigger
      start.trigger = "child";
      start.parent_run = args.value("parent");
    }
  }
  int status = 0;
  if (!machine_options(run_command(), args, opt, status)) return status;
  if (!args.value("only").empty() && !args.value("from").empty())
    return usage_error(run_command(), "--only and --from cannot be combined");
  std::string error = select_nodes(*wf, args.value("only"), args.value("from"), opt.selected);
  if (!error.empty()) {
    std::fprintf(stderr, "sluice run: error: %s\n", error.c_str());
    return kExitBadInput;
  }
  start.only = args.value("only");
  start.from = args.value("from");
  start.dry_run = args.flag("dry-run");
  status = run_workflow(run_command(), *wf, std::move(opt), start);
  leave_at_exit(std::move(wf));  // the command ends here
  return status;
}

}  // namespace

const Command& run_command() {
  static const Command cmd{
      "run",
      "run a workflow on this machine",
      "sluice run [-p NAME=VALUE]... [-j N] [--keep-going] [--no-cache] [--only STEP | --from STEP] [--dry-run] [-v] FILE\n"
      "       sluice run --queued RUN [--home DIR] [--workflows DIR]",
      "Steps run in parallel as their dependencies finish, each in its own work dir\n"
      ".sluice/runs/RUN/STEP/ with a log per attempt. Exit status: 0 when every step\n"
      "succeeded or was skipped by 'when', 1 when a step failed, 2 for bad input,\n"
      "130 when interrupted.\n\n"
      "--queued RUN runs a run that 'sluice serve' queued in the store: this process\n"
      "claims it (a run is executed once, whoever else tries) and runs the workflow\n"
      "source and params recorded with it; there workflow.trigger queues a run of a\n"
      "workflow the server serves (--workflows DIR) instead of running a child.",
      {{"param", 'p', "NAME=VALUE", "override a param (typed against its declaration)", true},
       {"jobs", 'j', "N", "run at most N steps at once (default: the number of cores)"},
       {"keep-going", 'k', "", "after a failure, still run every step whose dependencies succeeded"},
       {"no-cache", 0, "", "run every step, even those whose result is in the cache (the cache is refreshed)"},
       {"only", 0, "STEP", "run STEP and the steps it needs"},
       {"from", 0, "STEP", "run STEP, everything downstream of it, and the steps those need"},
       {"dry-run", 'n', "", "print what would run, in order, and run nothing"},
       {"verbose", 'v', "", "stream every step's output, prefixed with its name"},
       {"home", 0, "DIR", "the state folder (default: $SLUICE_HOME or ./.sluice)"},
       {"queued", 0, "RUN", "run RUN, queued in the store by 'sluice serve'"},
       {"workflows", 0, "DIR", "with --queued: the folder the server serves (where workflow.trigger finds its target)"},
       {"parent", 0, "RUN", "record this run as a child of run RUN (workflow.run and workflow.trigger pass it)"}},
      0,
      1,
      run_run};
  return cmd;
}

}  // namespace sluice::engine
