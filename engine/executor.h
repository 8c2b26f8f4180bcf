#pragma once
// One run of a workflow on this machine: the loop that asks the Plan what may
// start, prepares each attempt (templates, work dir, environment), hands it
// to the Runner, and feeds results back to the Plan. Reports through events.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dsl/params.h"
#include "dsl/plugin_manifest.h"
#include "dsl/spec.h"
#include "engine/action.h"
#include "engine/cache_key.h"
#include "engine/events.h"
#include "engine/plan.h"
#include "engine/runner.h"

namespace sluice::engine {

class CachePrefetch;  // engine/cache_prefetch.h

// `sluice resume`: what the run being resumed (RunOptions::run_id) recorded
// before its engine died (engine/resume.h).
struct ResumeFrom {
  struct Finished {
    NodeState state = NodeState::Succeeded;  // succeeded, cached, failed, skipped, cancelled
    SkipReason skip = SkipReason::None;
  };
  struct Attempts {
    int recorded = 0;     // attempts recorded; the next one is recorded + 1
    int interrupted = 0;  // of those, cut short by the engine's death
  };
  // Nodes the run finished: restored from its record (values, outputs)
  // without running, and not recorded again.
  std::map<std::string, Finished> finished;
  // Nodes with attempts that did not finish them: they run again.
  std::map<std::string, Attempts> unfinished;
};

struct RunOptions {
  std::string run_id;        // time-sortable, see new_run_id()
  std::string home;          // the state folder, e.g. "<cwd>/.sluice"
  dsl::ParamValues params;   // typed, defaults applied
  uint32_t jobs = 1;         // -j
  double cpus = 1;           // the machine's cores (slots for resources.cpus)
  uint64_t memory = 0;       // the machine's memory in bytes (0 = unlimited)
  bool keep_going = false;
  bool verbose = false;      // stream step output as StepOutput events
  std::vector<bool> selected;  // per DAG node; empty = all
  std::chrono::milliseconds kill_grace{5000};
  // Finds the handler of a `uses` step's plugin and its manifest (for the
  // defaults of `with`); null with `error` when there is none. Unset: plugin
  // steps fail with "no plugin catalog". Called on the executor's thread.
  std::function<std::shared_ptr<ActionHandler>(const std::string& plugin, const dsl::PluginManifest*& manifest,
                                               std::string& error)>
      find_plugin;
  // The step cache (engine/step_cache.h, docs/store.md "The step cache").
  bool no_cache = false;  // --no-cache: run every step; keys are still recorded and refresh the cache
  // `sluice run FILE`: the cache entries of the file's newest run, read while
  // the file was parsed (engine/cache_prefetch.h); null: read at the first lookup.
  std::shared_ptr<CachePrefetch> cache_prefetch;
  // `sluice retry`: node name -> the run whose recorded result the node takes
  // (restored like a cache hit, whatever its cache settings).
  std::map<std::string, std::string> reuse;
  // `sluice rerun`: node name -> input name -> digest, for inputs that came
  // from outside the workflow: the bytes the earlier run read, from the store.
  std::map<std::string, std::map<std::string, std::string>> pinned_inputs;
  // The version of a plugin, for the cache keys of `uses` steps ("" = unknown).
  std::function<std::string(const std::string& plugin)> plugin_version;
  // Set when `sluice serve` started this run (`sluice run --queued`): the
  // folder of workflows the server serves (absolute). workflow.trigger then
  // queues a run for the server instead of running a child (ActionCall).
  std::string served_workflows;
  // `sluice resume`: continue run_id from its record. Finished nodes are
  // restored before anything starts and emit no events.
  std::optional<ResumeFrom> resume;
};

struct AttemptRecord {
  int number = 0;
  std::string log_path;
  std::chrono::system_clock::time_point started, finished;
  ProcessResult::Outcome outcome = ProcessResult::Outcome::Exited;
  int exit_code = -1;
  int signal = 0;
  std::string error;  // why the attempt failed; empty on success
};

// Where one input of a step came from (set when its digest is known).
struct InputSource {
  std::string digest;       // in the artifact store
  std::string from_node;    // the upstream instance in this run; "" = from outside the workflow
  std::string from_output;  // its output name
  std::string source;       // the path it was read from (absolute)
};

struct NodeRecord {
  NodeState state = NodeState::Excluded;  // final state
  SkipReason skip = SkipReason::None;
  std::string workdir;  // absolute; empty when the node never started
  std::vector<AttemptRecord> attempts;
  std::map<std::string, std::string> values;   // from $SLUICE_VALUES
  std::vector<std::pair<std::string, double>> metrics;  // from $SLUICE_METRICS
  std::map<std::string, std::string> outputs;  // name -> absolute path
  std::map<std::string, std::string> inputs;   // name -> absolute path, as resolved at dispatch
  std::string error;  // the final failure, if any
  // The artifact store's side (engine/step_cache.h): digests as they become
  // known (restored outputs, and outputs read by later steps), the inputs'
  // sources, and the cache's decision.
  std::map<std::string, std::string> output_digests;  // name -> digest
  std::map<std::string, InputSource> input_sources;   // name -> source
  std::string cache_key;                              // "" = not computed
  std::vector<KeyPart> key_parts;                     // sorted by part
  std::string cache_note;  // registry::SetStepStatus::cache_note
  // `sluice resume`: finished before the engine died (its attempts are in
  // the store); or how many attempts were recorded before this process's.
  bool restored = false;
  int earlier_attempts = 0;
};

struct RunRecord {
  std::string run_id;
  std::vector<NodeRecord> nodes;  // per DAG node
  bool interrupted = false;
  Clock::duration elapsed{};
};

// "20261127-040253.123-3fa9c1d2": UTC time to the millisecond, then 32
// random bits in hex; sorts by start time. The ids one process makes are
// strictly increasing (within a millisecond the hex part counts up).
std::string new_run_id();

// Checks before anything runs: every selected instance fits the machine
// (cpus, memory). Returns "" or one error line naming the step.
std::string check_resources(const dsl::Workflow& wf, const RunOptions& options);

// Which nodes `--only STEP` and `--from STEP` select: the named step's
// instances (and, for --from, everything downstream), plus every ancestor
// their inputs come from. "" or an error naming the unknown step.
std::string select_nodes(const dsl::Workflow& wf, const std::string& only, const std::string& from, std::vector<bool>& selected);

class Executor {
 public:
  Executor(const dsl::Workflow& wf, Runner& runner, EventSink& sink, RunOptions options);
  ~Executor();

  // Runs until every selected node is final. `interrupt` (set from a signal
  // handler, which also calls Runner::wake) stops new starts and cancels
  // running attempts.
  RunRecord run(const std::atomic<bool>& interrupt);

  // What would run, in order, with params and matrix values substituted:
  // "node: command" lines (for --dry-run).
  std::vector<std::string> dry_run() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::engine
