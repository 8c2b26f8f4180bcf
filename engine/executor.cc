#include "engine/executor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "engine/action_pool.h"
#include "engine/lua_action.h"
#include "engine/lua_host.h"
#include "engine/redact.h"
#include "engine/plugin_args.h"
#include "engine/shell_quote.h"
#include "registry/model_refs.h"
#include "engine/step_cache.h"

extern char** environ;

namespace sluice::engine {

namespace fs = std::filesystem;
using Outcome = ProcessResult::Outcome;

std::string new_run_id() {
  // Ids this process makes only grow, also within one millisecond (the
  // random part then counts up) and when the clock steps back (the last
  // millisecond is kept): runs listed by id are in the order they were made.
  static std::mutex mu;
  static int64_t last_ms = -1;
  static uint32_t last_suffix = 0;
  int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  uint32_t suffix = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (ms > last_ms) {
      std::random_device rd;
      suffix = static_cast<uint32_t>(rd()) & 0x7fffffffu;  // room to count up
    } else if (last_suffix == 0xffffffffu) {
      ms = last_ms + 1;
    } else {
      ms = last_ms;
      suffix = last_suffix + 1;
    }
    last_ms = ms;
    last_suffix = suffix;
  }
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  char rest[32];
  std::snprintf(rest, sizeof rest, ".%03d-%08x", static_cast<int>(ms % 1000), suffix);
  return std::string(stamp) + rest;
}

std::string check_resources(const dsl::Workflow& wf, const RunOptions& o) {
  for (uint32_t i = 0; i < wf.dag.size(); ++i) {
    if (!o.selected.empty() && !o.selected[i]) continue;
    const dsl::Step& s = wf.steps[wf.dag.node(i).step];
    char buf[256];
    if (s.resources.cpus > o.cpus + 1e-9) {
      std::snprintf(buf, sizeof buf, "step '%s' asks for %g cpus but this machine has %g", s.name.c_str(), s.resources.cpus, o.cpus);
      return buf;
    }
    if (o.memory && s.resources.memory > o.memory)
      return "step '" + s.name + "' asks for " + dsl::format_size(s.resources.memory) + " of memory but this machine has " +
             dsl::format_size(o.memory);
  }
  return {};
}

std::string select_nodes(const dsl::Workflow& wf, const std::string& only, const std::string& from, std::vector<bool>& selected) {
  selected.clear();
  if (only.empty() && from.empty()) return {};
  const std::string& name = only.empty() ? from : only;
  int64_t step = wf.step_index(name);
  if (step < 0) return "unknown step '" + name + "'";
  const auto n = static_cast<uint32_t>(wf.dag.size());
  std::vector<bool> core(n, false);
  std::vector<uint32_t> work;
  for (uint32_t id : wf.dag.instances(static_cast<uint32_t>(step))) {
    core[id] = true;
    work.push_back(id);
  }
  if (!from.empty()) {  // everything downstream
    while (!work.empty()) {
      uint32_t id = work.back();
      work.pop_back();
      for (uint32_t s : wf.dag.successors(id))
        if (!core[s]) core[s] = true, work.push_back(s);
    }
  }
  // Plus every ancestor, whose outputs the selected steps read.
  selected = core;
  for (uint32_t i = 0; i < n; ++i)
    if (core[i]) work.push_back(i);
  while (!work.empty()) {
    uint32_t id = work.back();
    work.pop_back();
    for (uint32_t p : wf.dag.predecessors(id))
      if (!selected[p]) selected[p] = true, work.push_back(p);
  }
  return {};
}

namespace {

// Removes file `rel` (not a folder) of the work dir `root` without following
// a symbolic link on the way: a link an earlier attempt left must not lead
// the unlink outside the work dir.
void remove_stale_output(const std::string& root, const std::string& rel) {
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  size_t start = 0;
  while (dir >= 0) {
    const size_t slash = rel.find('/', start);
    const std::string part = rel.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (slash == std::string::npos) {
      struct stat st {};
      if (::fstatat(dir, part.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) ::unlinkat(dir, part.c_str(), 0);
      break;
    }
    if (!part.empty()) {
      const int next = ::openat(dir, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      ::close(dir);
      dir = next;
    }
    start = slash + 1;
  }
  if (dir >= 0) ::close(dir);
}

// Why an attempt failed. A problem beside the exit status (the log could not
// be created at the first output) fails an attempt that exited 0, and is
// added to any other reason.
std::string describe_failure(const ProcessResult& r, const dsl::Step& step) {
  if (r.outcome != Outcome::SpawnFailed && !r.error.empty()) {
    if (r.outcome == Outcome::Exited && r.exit_code == 0) return r.error;
    ProcessResult plain = r;
    plain.error.clear();
    return describe_failure(plain, step) + " (" + r.error + ")";
  }
  switch (r.outcome) {
    case Outcome::Exited: return "exit code " + std::to_string(r.exit_code);
    case Outcome::Signaled: {
      const char* name = sigabbrev_np(r.signal);
      return name ? std::string("killed by SIG") + name : "killed by signal " + std::to_string(r.signal);
    }
    case Outcome::TimedOut: return "timed out after " + dsl::format_duration(step.timeout.value_or(dsl::Duration(0)));
    case Outcome::Cancelled: return "cancelled";
    case Outcome::SpawnFailed: return r.error;
  }
  return "failed";
}

std::string upper_env_name(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_value_key(const std::string& k) {
  if (k.empty() || std::isdigit(static_cast<unsigned char>(k[0]))) return false;
  return std::all_of(k.begin(), k.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'; });
}

}  // namespace

struct Executor::Impl {
  Impl(const dsl::Workflow& w, Runner& r, EventSink& s, RunOptions o)
      : wf(w), runner(r), sink(s), opt(std::move(o)),
        plan(w, opt.selected, PlanOptions{opt.keep_going, std::max<uint32_t>(1, opt.jobs), opt.cpus, opt.memory}),
        rng(std::hash<std::string>()(opt.run_id)),
        cache(w, opt, rec) {
    rec.run_id = opt.run_id;
    rec.nodes.resize(wf.dag.size());
    attempt_started.resize(wf.dag.size());
    wf_dir = fs::absolute(fs::path(wf.path)).parent_path();
    run_dir = fs::path(opt.home) / "runs" / opt.run_id;
    for (char** e = environ; *e; ++e) base_env.emplace_back(*e);
    runner.on_line = [this](Runner::Id id, std::string_view line) {
      auto it = running.find(id);
      if (it == running.end()) return;
      Event e = event(Event::Kind::StepOutput, it->second);
      e.message = redactor.apply(line);
      sink.on_event(e);
    };
  }

  Event event(Event::Kind kind, uint32_t node) const {
    Event e;
    e.kind = kind;
    e.node = node;
    e.state = plan.state(node);
    e.skip = plan.skip_reason(node);
    e.attempt = plan.attempts(node);
    e.done = plan.finished_count();
    e.total = plan.selected_count();
    e.running = plan.running();
    e.failed = plan.failed_count();
    e.record = &rec.nodes[node];
    return e;
  }

  const dsl::Step& step_of(uint32_t node) const { return wf.steps[wf.dag.node(node).step]; }

  // The single instance of a non-matrix step (the checker forbids templates
  // naming a matrix step's outputs or values).
  uint32_t instance_of(const std::string& step) const {
    return wf.dag.instances(static_cast<uint32_t>(wf.step_index(step)))[0];
  }

  // Resolves one reference for `node`; false with `error` when it cannot be.
  bool lookup(uint32_t node, const std::map<std::string, std::string>& inputs, const dsl::Ref& ref, std::string& value,
              std::string& error) const {
    const dsl::DagNode& dn = wf.dag.node(node);
    const NodeRecord& self = rec.nodes[node];
    switch (ref.kind) {
      case dsl::Ref::Kind::Param: {
        auto it = opt.params.find(ref.key);
        if (it == opt.params.end()) break;
        value = it->second.to_text();
        return true;
      }
      case dsl::Ref::Kind::Matrix:
        for (const auto& [k, v] : dn.matrix)
          if (k == ref.key) {
            value = v.to_text();
            return true;
          }
        break;
      case dsl::Ref::Kind::Input: {
        auto it = inputs.find(ref.key);
        if (it == inputs.end()) break;
        value = it->second;
        return true;
      }
      case dsl::Ref::Kind::Output: {
        auto it = self.outputs.find(ref.key);
        if (it == self.outputs.end()) break;
        value = it->second;
        return true;
      }
      case dsl::Ref::Kind::StepOutput: {
        const NodeRecord& up = rec.nodes[instance_of(ref.step)];
        auto it = up.outputs.find(ref.key);
        if (it == up.outputs.end() || up.workdir.empty()) {
          error = "output '" + ref.key + "' of step '" + ref.step + "' is not available: the step did not run in this run";
          return false;
        }
        value = it->second;
        return true;
      }
      case dsl::Ref::Kind::StepValue: {
        const NodeRecord& up = rec.nodes[instance_of(ref.step)];
        auto it = up.values.find(ref.key);
        if (it == up.values.end()) {
          std::string have;
          for (const auto& [k, v] : up.values) have += (have.empty() ? "" : ", ") + k;
          error = "step '" + ref.step + "' set no value '" + ref.key + "' (" + ref.text + ")" +
                  (have.empty() ? std::string("; it set no values") : "; it set: " + have);
          return false;
        }
        value = it->second;
        return true;
      }
      case dsl::Ref::Kind::RunId: value = opt.run_id; return true;
      case dsl::Ref::Kind::Secret: {
        const char* v = std::getenv(("SLUICE_SECRET_" + upper_env_name(ref.key)).c_str());
        if (!v) {
          error = "secret '" + ref.key + "' is not set: export SLUICE_SECRET_" + upper_env_name(ref.key);
          return false;
        }
        value = v;
        return true;
      }
      case dsl::Ref::Kind::Model: {
        // Resolved when the step starts: an alias moved during the run is seen by later steps.
        auto resolved = registry::resolve_model_ref(opt.home, ref.step, ref.model_ref, ref.key);
        if (!resolved) {
          error = ref.text + ": " + resolved.error();
          return false;
        }
        value = *resolved;
        return true;
      }
    }
    error = "cannot resolve " + ref.text;
    return false;
  }

  // Resolves `node`'s references outside its command (no inputs yet).
  RefLookup resolver(uint32_t node) const {
    static const std::map<std::string, std::string> kNoInputs;
    return [this, node](const dsl::Ref& r, std::string& v, std::string& e) { return lookup(node, kNoInputs, r, v, e); };
  }

  bool render_plain(uint32_t node, const std::map<std::string, std::string>& inputs, const dsl::Template& t, std::string& out,
                    std::string& error) const {
    out.clear();
    for (const dsl::TemplatePart& p : t.parts) {
      if (!p.is_ref) {
        out += p.literal;
        continue;
      }
      std::string v;
      if (!lookup(node, inputs, p.ref, v, error)) return false;
      out += v;
    }
    return true;
  }

  // The values a `when` expression sees: every non-matrix step that ran.
  std::map<std::string, std::map<std::string, std::string>> when_values() const {
    std::map<std::string, std::map<std::string, std::string>> out;
    for (uint32_t i = 0; i < wf.dag.size(); ++i) {
      const dsl::Step& s = step_of(i);
      if (!s.is_matrix() && !rec.nodes[i].workdir.empty()) out[s.name] = rec.nodes[i].values;
    }
    return out;
  }

  void emit_final(uint32_t node) {
    NodeState st = plan.state(node);
    if (st == NodeState::Skipped && looked_ahead[node] && plan.attempts(node) == 0) forget_look_ahead(node);
    Event::Kind k = st == NodeState::Skipped     ? Event::Kind::StepSkipped
                    : st == NodeState::Cancelled ? Event::Kind::StepCancelled
                    : st == NodeState::Cached    ? Event::Kind::StepCached
                                                 : Event::Kind::StepFinished;
    Event e = event(k, node);
    e.message = rec.nodes[node].error;
    if (!rec.nodes[node].attempts.empty()) {
      const AttemptRecord& a = rec.nodes[node].attempts.back();
      e.log_path = a.log_path;
      e.elapsed = a.finished - a.started;
    }
    sink.on_event(e);
  }

  // Emits one final event per node that became final since the last call:
  // the node just handled and any skips that cascaded from it. Nodes
  // restored by `sluice resume` were reported by the run that finished them.
  void report_finals() {
    for (uint32_t node : plan.take_finished())
      if (restored.empty() || !restored[node]) emit_final(node);
  }

  // `sluice resume`: the nodes the run finished before its engine died
  // become final as recorded (succeeded and cached ones with their values
  // and outputs from the store), in topological order; the attempts of
  // unfinished ones continue their numbering.
  void restore_finished(const ResumeFrom& from) {
    restored.assign(wf.dag.size(), false);
    for (uint32_t node : wf.dag.topological_order()) {
      if (plan.state(node) == NodeState::Excluded) continue;
      const std::string& name = wf.dag.node(node).name;
      if (auto u = from.unfinished.find(name); u != from.unfinished.end()) {
        plan.resume_attempts(node, u->second.recorded, u->second.interrupted);
        rec.nodes[node].earlier_attempts = u->second.recorded;
      }
      auto f = from.finished.find(name);
      if (f == from.finished.end() || is_final(plan.state(node))) continue;
      const NodeState state = f->second.state;
      // An output gone from the store since fails the step that reads it
      // (`sluice resume` checks them before it takes the run over).
      if (state == NodeState::Succeeded || state == NodeState::Cached) cache.restore_recorded(node);
      restored[node] = true;
      rec.nodes[node].restored = true;
      plan.restore(node, state, f->second.skip);
    }
  }

  void fail_attempt(uint32_t node, const std::string& reason, bool retryable) {
    const std::string why = redactor.apply(reason);
    rec.nodes[node].error = why;
    if (!rec.nodes[node].attempts.empty()) rec.nodes[node].attempts.back().error = why;
    auto delay = plan.failed(node, Clock::now(), std::uniform_real_distribution<double>(0, 1)(rng), retryable);
    if (delay) {
      Event e = event(Event::Kind::StepRetrying, node);
      e.message = why;
      e.delay = *delay;
      if (!rec.nodes[node].attempts.empty()) e.log_path = rec.nodes[node].attempts.back().log_path;
      sink.on_event(e);
    }
    report_finals();
    if (plan.stopping()) cancel_running();
  }

  void dispatch(uint32_t node) {
    const dsl::Step& step = step_of(node);
    NodeRecord& nr = rec.nodes[node];
    if (auto pre = ahead.find(node); pre != ahead.end()) {
      start_prepared(node, std::move(pre->second));
      ahead.erase(pre);
      return;
    }
    if (!step.when.empty()) {
      auto values = when_values();
      WhenInput in{&opt.params, &wf.dag.node(node).matrix, &values};
      bool result = false;
      std::string error;
      if (!lua.eval_when(step.when, in, LuaLimits{}, result, error)) {
        plan.started(node);
        nr.attempts.push_back(AttemptRecord{plan.attempts(node), "", std::chrono::system_clock::now(),
                                            std::chrono::system_clock::now(), Outcome::Exited, -1, 0, error});
        fail_attempt(node, error, false);
        return;
      }
      if (!result) {
        plan.skipped_by_when(node);
        report_finals();
        return;
      }
    }
    // [store] A cache hit, or a result `sluice retry` reuses, finishes the
    // step without running it (engine/step_cache.h).
    if (cache.restore(node, resolver(node))) {
      plan.cached(node);
      report_finals();
      return;
    }
    Event started = begin_attempt(node);
    std::string error;
    if (step.kind != dsl::ActionKind::Run) {
      sink.on_event(started);
      ActionCall call;
      std::shared_ptr<ActionHandler> handler;
      if (!prepare_action(node, call, handler, error)) {
        nr.attempts.back().finished = std::chrono::system_clock::now();
        fail_attempt(node, error, false);
        return;
      }
      running_actions.emplace(actions.submit(std::move(handler), std::move(call), opt.verbose), node);
      return;
    }
    ProcessSpec spec;
    spec.log_path = started.log_path;
    if (!prepare(node, spec, plan.attempts(node), error)) {
      sink.on_event(started);
      nr.attempts.back().finished = std::chrono::system_clock::now();
      fail_attempt(node, error, false);
      return;
    }
    spawn(node, spec, started);
  }

  // Starts the next attempt of `node` in the plan and its record; returns
  // its StepStarted event, not yet emitted.
  Event begin_attempt(uint32_t node) {
    NodeRecord& nr = rec.nodes[node];
    plan.started(node);
    const int attempt = plan.attempts(node);
    AttemptRecord a;
    a.number = attempt;
    a.started = std::chrono::system_clock::now();
    nr.workdir = workdir_of(node);
    a.log_path = log_path_of(node, attempt);
    nr.attempts.push_back(a);
    attempt_started[node] = Clock::now();
    Event started = event(Event::Kind::StepStarted, node);
    started.log_path = a.log_path;
    return started;
  }

  std::string workdir_of(uint32_t node) const { return (run_dir / wf.dag.node(node).name).string(); }
  std::string log_path_of(uint32_t node, int attempt) const {
    return workdir_of(node) + "/attempt-" + std::to_string(attempt) + ".log";
  }

  void spawn(uint32_t node, const ProcessSpec& spec, Event& started) {
    Runner::Id id = runner.start(spec);
    running.emplace(id, node);
    // Reported once spawned, with the process group: recorded with the
    // attempt, so a `sluice resume` after this engine's death can end it.
    started.pgid = runner.process_group(id);
    sink.on_event(started);
  }

  // ---- Look-ahead (bench/README.md, "executor overhead")
  // While every slot is busy, the engine decides the next ready run steps'
  // cache lookups and prepares their work dirs, inputs, commands and
  // environments, so that a freed slot is refilled by a spawn alone instead
  // of all of that. Only first attempts of plain run steps (no `when`, not a
  // resumed run), and at most -j of them at a time. What it does is what
  // dispatch would have done a moment later: a cache hit finishes the step
  // at once (it takes no slot); a step it cannot prepare is left to
  // dispatch, which prepares it again and reports the error. A prepared step
  // the run then skips (fail-fast, Ctrl-C) loses the work dir it was given.

  enum class Ahead { Nothing, Prepared, Finished };

  // Prepares one more ready step, if there is one to prepare.
  Ahead look_ahead() {
    if (plan.stopping() || opt.resume || ahead.size() >= std::max<uint32_t>(1, opt.jobs)) return Ahead::Nothing;
    size_t scanned = 0;
    for (uint32_t node : plan.ready()) {
      if (++scanned > 4 * static_cast<size_t>(std::max<uint32_t>(1, opt.jobs)) + 4) break;
      if (looked_ahead[node]) continue;
      const dsl::Step& step = step_of(node);
      if (step.kind != dsl::ActionKind::Run || !step.when.empty() || plan.attempts(node) != 0) continue;
      looked_ahead[node] = true;
      if (cache.restore(node, resolver(node))) {
        plan.cached(node);
        report_finals();
        return Ahead::Finished;
      }
      NodeRecord& nr = rec.nodes[node];
      nr.workdir = workdir_of(node);
      ProcessSpec spec;
      spec.log_path = log_path_of(node, 1);
      std::string error;
      bool fresh = false;
      const bool ok = prepare(node, spec, 1, error, &fresh);
      made_ahead[node] = fresh;
      if (ok) ahead.emplace(node, std::move(spec));
      return Ahead::Prepared;
    }
    return Ahead::Nothing;
  }

  // A step looked at ahead but never started (the run skipped it) is
  // recorded like any skipped step: no work dir, no inputs, no cache key.
  void forget_look_ahead(uint32_t node) {
    ahead.erase(node);
    NodeRecord& nr = rec.nodes[node];
    if (made_ahead[node] && !nr.workdir.empty()) {
      std::error_code ec;
      fs::remove_all(nr.workdir, ec);
    }
    made_ahead[node] = false;
    nr = NodeRecord{};
  }

  // Dispatch of a step look_ahead prepared: only the spawn is left.
  void start_prepared(uint32_t node, ProcessSpec spec) {
    Event started = begin_attempt(node);
    spawn(node, spec, started);
  }

  // The work dir, the outputs' paths and the resolved inputs of an attempt
  // (into nr.outputs / nr.inputs): what every kind of step needs. `fresh`:
  // whether the work dir was just created (empty).
  bool prepare_files(uint32_t node, std::string& error, bool* fresh_out = nullptr) {
    const dsl::Step& step = step_of(node);
    NodeRecord& nr = rec.nodes[node];
    std::error_code ec;
    // One mkdir per step; the run dir is made when the first step finds it
    // missing. A new work dir is empty; a retry's (EEXIST) is not.
    bool fresh = ::mkdir(nr.workdir.c_str(), 0777) == 0;
    if (!fresh && errno == ENOENT) {
      fs::create_directories(run_dir, ec);
      fresh = ::mkdir(nr.workdir.c_str(), 0777) == 0;
    }
    if (!fresh && errno != EEXIST) {
      error = "cannot create work dir " + nr.workdir + ": " + std::strerror(errno);
      return false;
    }
    // Outputs: absolute paths inside the work dir (relative, without '..':
    // the checker sees to that); an output's folder is made when it has one.
    // A retry or a resumed step starts without the output files an earlier
    // attempt left: a stale file must not pass the output check.
    nr.outputs.clear();
    for (const dsl::NamedTemplate& o : step.outputs) {
      std::string p = nr.workdir + "/" + o.value.text;
      if (o.value.text.find('/') != std::string::npos) fs::create_directories(fs::path(p).parent_path(), ec);
      if (!fresh) remove_stale_output(nr.workdir, o.value.text);
      nr.outputs[o.name] = std::move(p);
    }
    // [store] Inputs: upstream outputs or files of the workflow's folder,
    // materialised read-only from the artifact store into the work dir.
    std::map<std::string, std::string> inputs;
    if (!cache.stage_inputs(node, resolver(node), inputs, error)) return false;
    nr.inputs = std::move(inputs);
    if (fresh_out) *fresh_out = fresh;
    return true;
  }

  // The process of attempt `attempt` of run step `node`: its work dir and
  // inputs made ready (prepare_files), its command and environment rendered.
  // spec.log_path is the caller's. `fresh_out`: as for prepare_files.
  bool prepare(uint32_t node, ProcessSpec& spec, int attempt, std::string& error, bool* fresh_out = nullptr) {
    const dsl::Step& step = step_of(node);
    NodeRecord& nr = rec.nodes[node];
    bool fresh = false;
    if (!prepare_files(node, error, &fresh)) return false;
    if (fresh_out) *fresh_out = fresh;
    const std::map<std::string, std::string>& inputs = nr.inputs;
    std::string command;
    auto resolve = [&](const dsl::Ref& ref, std::string& value, std::string& err) { return lookup(node, inputs, ref, value, err); };
    if (!render_command(step.command, resolve, command, error)) return false;

    spec.command = std::move(command);
    spec.workdir = nr.workdir;
    spec.timeout = step.timeout ? std::chrono::duration_cast<std::chrono::milliseconds>(*step.timeout) : std::chrono::milliseconds(0);
    spec.kill_grace = opt.kill_grace;
    spec.stream = opt.verbose;
    spec.env = base_env;
    for (const auto* list : {&wf.env, &step.env}) {
      for (const dsl::NamedTemplate& e : *list) {
        std::string v;
        if (!render_plain(node, inputs, e.value, v, error)) return false;
        spec.env.push_back(e.name + "=" + v);
      }
    }
    const std::string values_path = nr.workdir + "/values", metrics_path = nr.workdir + "/metrics";
    // Steps append to these; a retry starts from nothing. Not pre-created:
    // two file creations per step would cost more than the step (bench/).
    if (!fresh) {
      ::unlink(values_path.c_str());
      ::unlink(metrics_path.c_str());
    }
    spec.env.push_back("SLUICE_RUN_ID=" + opt.run_id);
    spec.env.push_back("SLUICE_STEP=" + wf.dag.node(node).name);
    spec.env.push_back("SLUICE_ATTEMPT=" + std::to_string(attempt));
    spec.env.push_back("SLUICE_WORKDIR=" + nr.workdir);
    spec.env.push_back("SLUICE_VALUES=" + values_path);
    spec.env.push_back("SLUICE_METRICS=" + metrics_path);
    for (const auto& [k, v] : opt.params) spec.env.push_back("SLUICE_PARAM_" + upper_env_name(k) + "=" + v.to_text());
    return true;
  }

  // What a Lua step or plugin action sees of the steps it depends on.
  std::map<std::string, LuaUpstream> upstream_of(uint32_t node) const {
    std::map<std::string, LuaUpstream> out;
    for (uint32_t dep : step_of(node).deps) {
      const dsl::Step& s = wf.steps[dep];
      LuaUpstream& up = out[s.name];
      up.matrix = s.is_matrix();
      for (uint32_t id : wf.dag.instances(dep)) {
        const NodeRecord& r = rec.nodes[id];
        if (up.matrix)
          up.instances.push_back(LuaUpstream::Instance{wf.dag.node(id).matrix, r.values});
        else
          up.values = r.values;
      }
    }
    return out;
  }

  // `with` as JSON, every string's templates resolved for `node`.
  bool render_value(uint32_t node, const dsl::Value& v, nlohmann::json& out, std::string& error) const {
    switch (v.type()) {
      case dsl::ValueType::String: {
        dsl::Diagnostics diags;
        dsl::Template t = dsl::parse_template(v.as_string(), diags, [](size_t) { return dsl::SourcePos{}; });
        std::string text;
        if (!render_plain(node, rec.nodes[node].inputs, t, text, error)) return false;
        out = std::move(text);
        return true;
      }
      case dsl::ValueType::Integer: out = v.as_integer(); return true;
      case dsl::ValueType::Float: out = v.as_float(); return true;
      case dsl::ValueType::Boolean: out = v.as_bool(); return true;
      case dsl::ValueType::Array:
        out = nlohmann::json::array();
        for (const dsl::Value& e : v.as_array()) {
          nlohmann::json j;
          if (!render_value(node, e, j, error)) return false;
          out.push_back(std::move(j));
        }
        return true;
      case dsl::ValueType::Table:
        out = nlohmann::json::object();
        for (const auto& [k, e] : v.as_table()) {
          nlohmann::json j;
          if (!render_value(node, e, j, error)) return false;
          out[k] = std::move(j);
        }
        return true;
    }
    return false;
  }

  // An attempt of a Lua or plugin step: its ActionCall and handler.
  bool prepare_action(uint32_t node, ActionCall& call, std::shared_ptr<ActionHandler>& handler, std::string& error) {
    const dsl::Step& step = step_of(node);
    NodeRecord& nr = rec.nodes[node];
    const dsl::PluginManifest* manifest = nullptr;
    if (step.kind == dsl::ActionKind::Uses) {
      if (!opt.find_plugin) {
        error = "plugin '" + step.plugin + "' cannot be found: no plugin catalog";
        return false;
      }
      handler = opt.find_plugin(step.plugin, manifest, error);
      if (!handler) return false;
    } else {
      handler = lua_steps;
    }
    if (!prepare_files(node, error)) return false;
    call.run_id = opt.run_id;
    call.node = wf.dag.node(node).name;
    call.step = step.name;
    call.attempt = plan.attempts(node);
    call.home = opt.home;
    call.workflow_name = wf.name;
    call.workflow_path = fs::absolute(fs::path(wf.path)).string();
    call.workflow_dir = wf_dir.string();
    call.served_workflows = opt.served_workflows;
    if (step.kind == dsl::ActionKind::Lua) {
      call.script_path = (wf_dir / step.script).string();
      call.chunk_name = step.script;
      call.timeout = std::chrono::seconds(60);
    } else if (step.kind == dsl::ActionKind::LuaInline) {
      call.code = step.script;
      call.timeout = std::chrono::seconds(60);
    } else {
      call.plugin = step.plugin;
      call.action = step.action;
      for (const dsl::WithArg& a : step.with) {
        nlohmann::json j;
        if (!render_value(node, a.value, j, error)) return false;
        call.args[a.name] = std::move(j);
      }
      // Typed against plugin.toml: defaults added, rendered templates converted.
      if (manifest && !resolve_call_args(*manifest, step.action, call.args, error)) return false;
    }
    if (step.timeout) call.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*step.timeout);
    call.memory = step.resources.memory;
    call.params = opt.params;
    call.inputs = nr.inputs;
    call.outputs = nr.outputs;
    call.matrix = wf.dag.node(node).matrix;
    call.steps = upstream_of(node);
    call.workdir = nr.workdir;
    call.log_path = nr.attempts.back().log_path;
    return true;
  }

  void complete_action(uint32_t node, ActionPool::Finished& f) {
    NodeRecord& nr = rec.nodes[node];
    AttemptRecord& a = nr.attempts.back();
    a.finished = std::chrono::system_clock::now();
    ActionResult& r = f.result;
    redact_log(node);
    redact_results(r.values, f.metrics);
    a.outcome = r.ok ? Outcome::Exited : r.cancelled ? Outcome::Cancelled : r.timed_out ? Outcome::TimedOut : Outcome::Exited;
    a.exit_code = r.ok ? 0 : -1;
    if (r.cancelled && (interrupt_seen || plan.stopping())) {
      a.error = nr.error = "cancelled";
      plan.cancelled(node);
      report_finals();
      return;
    }
    if (!r.ok) {
      fail_attempt(node, r.error.empty() ? std::string("the action failed") : r.error, true);
      return;
    }
    if (!check_outputs(node)) return;
    nr.values = std::move(r.values);
    nr.metrics = std::move(f.metrics);
    nr.error.clear();
    plan.succeeded(node);
    report_finals();
  }

  // Declared outputs exist after a successful attempt, stay inside the work
  // dir, and the step left its inputs unchanged; else the attempt fails.
  bool check_outputs(uint32_t node) {
    NodeRecord& nr = rec.nodes[node];
    for (const dsl::NamedTemplate& o : step_of(node).outputs) {
      std::error_code ec;
      if (!fs::exists(nr.outputs[o.name], ec)) {
        fail_attempt(node, "missing output '" + o.name + "': " + o.value.text + " was not created", true);
        return false;
      }
    }
    // [store] Outputs stay inside the work dir; inputs are unchanged.
    if (std::string bad = cache.check_attempt(node); !bad.empty()) {
      fail_attempt(node, bad, false);
      return false;
    }
    return true;
  }

  // Results and streamed lines of action steps, after the runner woke.
  void drain_actions() {
    for (ActionPool::Line& l : actions.take_lines()) {
      auto it = running_actions.find(l.id);
      if (it == running_actions.end()) continue;
      Event e = event(Event::Kind::StepOutput, it->second);
      e.message = redactor.apply(l.text);
      sink.on_event(e);
    }
    for (ActionPool::Finished& f : actions.take_finished()) {
      auto it = running_actions.find(f.id);
      if (it == running_actions.end()) continue;
      uint32_t node = it->second;
      running_actions.erase(it);
      complete_action(node, f);
    }
  }

  void cancel_running() {
    runner.cancel_all();
    actions.cancel_all();
  }

  // Reads the step's values and metrics files; false with `error` on a
  // malformed line.
  bool collect(uint32_t node, std::string& error) {
    NodeRecord& nr = rec.nodes[node];
    nr.values.clear();
    nr.metrics.clear();
    // Most steps write neither file: one failing open each, no stream
    // set-up. A file that cannot be read holds nothing, as before.
    auto read_all = [](const std::string& path) {
      std::string out;
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return out;
      char buf[4096];
      for (ssize_t got; (got = ::read(fd, buf, sizeof buf)) != 0;) {
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) break;
        out.append(buf, static_cast<size_t>(got));
      }
      ::close(fd);
      return out;
    };
    // Lines as std::getline splits them: a last line needs no '\n'.
    auto next_line = [](const std::string& text, size_t& at, std::string& line) {
      if (at >= text.size()) return false;
      size_t nl = text.find('\n', at);
      if (nl == std::string::npos) nl = text.size();
      line.assign(text, at, nl - at);
      at = nl + 1;
      return true;
    };
    std::string text = read_all(nr.workdir + "/values");
    std::string line;
    int n = 0;
    for (size_t at = 0; next_line(text, at, line);) {
      ++n;
      if (line.empty()) continue;
      size_t eq = line.find('=');
      std::string key = eq == std::string::npos ? line : line.substr(0, eq);
      if (eq == std::string::npos || !is_value_key(key)) {
        error = "$SLUICE_VALUES line " + std::to_string(n) + " is not KEY=VALUE: '" + line + "'";
        return false;
      }
      nr.values[key] = line.substr(eq + 1);
    }
    text = read_all(nr.workdir + "/metrics");
    n = 0;
    for (size_t at = 0; next_line(text, at, line);) {
      ++n;
      if (line.empty()) continue;
      char name[256];
      double value = 0;
      if (std::sscanf(line.c_str(), "%255s %lf", name, &value) != 2) {
        error = "$SLUICE_METRICS line " + std::to_string(n) + " is not 'NAME VALUE': '" + line + "'";
        return false;
      }
      nr.metrics.emplace_back(name, value);
    }
    return true;
  }

  // Secrets out of a finished attempt's log file (engine/redact.h), before
  // any event lets the recorder store it. Errors are redacted by fail_attempt.
  void redact_log(uint32_t node) {
    if (redactor.empty()) return;
    AttemptRecord& a = rec.nodes[node].attempts.back();
    std::string error = redactor.redact_file(a.log_path);
    if (!error.empty()) {  // keep the secret out of the store: drop the log rather than store it unredacted
      std::remove(a.log_path.c_str());
      Event e = event(Event::Kind::StepOutput, node);
      e.message = "error: " + error + "; the log was removed to keep secrets out of the store";
      sink.on_event(e);
    }
  }

  // Secrets out of the values and metric names an attempt reported.
  void redact_results(std::map<std::string, std::string>& values, std::vector<std::pair<std::string, double>>& metrics) const {
    if (redactor.empty()) return;
    std::map<std::string, std::string> clean;
    for (auto& [k, v] : values) clean[redactor.apply(k)] = redactor.apply(v);
    values = std::move(clean);
    for (auto& [name, value] : metrics) redactor.apply_in_place(name);
  }

  void complete(uint32_t node, const ProcessResult& r) {
    NodeRecord& nr = rec.nodes[node];
    AttemptRecord& a = nr.attempts.back();
    a.finished = std::chrono::system_clock::now();
    redact_log(node);
    a.outcome = r.outcome;
    a.exit_code = r.exit_code;
    a.signal = r.signal;
    if (r.outcome == Outcome::Cancelled) {
      a.error = nr.error = "cancelled";
      plan.cancelled(node);
      report_finals();
      return;
    }
    if (r.outcome == Outcome::Exited && r.exit_code == 0 && r.error.empty()) {
      std::string error;
      if (!check_outputs(node)) return;
      if (!collect(node, error)) {
        fail_attempt(node, error, true);
        return;
      }
      redact_results(nr.values, nr.metrics);
      nr.error.clear();
      plan.succeeded(node);
      report_finals();
      return;
    }
    fail_attempt(node, describe_failure(r, step_of(node)), true);
  }

  RunRecord run(const std::atomic<bool>& interrupt) {
    const auto t0 = Clock::now();
    Event start;
    start.kind = Event::Kind::RunStarted;
    start.total = plan.selected_count();
    start.message = opt.run_id;
    sink.on_event(start);
    if (opt.resume) {
      restore_finished(*opt.resume);
      report_finals();  // skips that cascaded from a restored failure
    }
    while (!plan.done()) {
      if (interrupt.load() && !rec.interrupted) {
        rec.interrupted = interrupt_seen = true;
        plan.stop();
        cancel_running();
        report_finals();
      }
      plan.wake_retries(Clock::now());
      while (auto n = plan.next_startable()) dispatch(*n);
      if (plan.done()) break;
      // Before waiting: the next steps' preparation, one at a time, as long
      // as no running step has finished meanwhile.
      Runner::Id id = 0;
      ProcessResult r;
      bool reaped = false, finished_ahead = false;
      for (Ahead a; !reaped && (a = look_ahead()) != Ahead::Nothing;) {
        if (a == Ahead::Finished) {
          finished_ahead = true;
          break;
        }
        reaped = runner.wait(id, r, std::chrono::milliseconds(0));
      }
      if (finished_ahead) continue;
      auto max_wait = std::chrono::milliseconds(1000);
      if (auto t = plan.next_retry()) {
        auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*t - Clock::now());
        max_wait = std::clamp(until, std::chrono::milliseconds(0), max_wait);
      }
      if (reaped || runner.wait(id, r, max_wait)) {
        auto it = running.find(id);
        if (it != running.end()) {
          uint32_t node = it->second;
          running.erase(it);
          complete(node, r);
        }
      }
      drain_actions();
    }
    report_finals();
    for (uint32_t i = 0; i < wf.dag.size(); ++i) {
      rec.nodes[i].state = plan.state(i);
      rec.nodes[i].skip = plan.skip_reason(i);
    }
    rec.elapsed = Clock::now() - t0;
    Event fin;
    fin.kind = Event::Kind::RunFinished;
    fin.elapsed = rec.elapsed;
    fin.total = plan.selected_count();
    fin.done = plan.finished_count();
    fin.failed = plan.failed_count();
    fin.message = rec.interrupted ? "interrupted" : "";
    sink.on_event(fin);
    return std::move(rec);
  }

  const dsl::Workflow& wf;
  Runner& runner;
  EventSink& sink;
  RunOptions opt;
  Plan plan;
  RunRecord rec;
  std::unordered_map<Runner::Id, uint32_t> running;
  std::vector<Clock::time_point> attempt_started;
  LuaHost lua;  // `when` expressions, on this thread
  std::mt19937_64 rng;
  fs::path wf_dir, run_dir;
  std::vector<std::string> base_env;
  StepCache cache;  // [store]
  const Redactor redactor = Redactor::from_environment(environ);  // secrets: see engine/redact.h
  bool interrupt_seen = false;
  std::vector<bool> restored;  // per node: finished before a resume (empty: not resuming)
  // Look-ahead: steps prepared to start, by node; per node, whether
  // look_ahead took it, and whether it created the work dir.
  std::unordered_map<uint32_t, ProcessSpec> ahead;
  std::vector<bool> looked_ahead = std::vector<bool>(wf.dag.size(), false);
  std::vector<bool> made_ahead = std::vector<bool>(wf.dag.size(), false);
  std::shared_ptr<ActionHandler> lua_steps = make_lua_step_handler();
  std::unordered_map<ActionPool::Id, uint32_t> running_actions;
  ActionPool actions{std::max<uint32_t>(1, opt.jobs), [this] { runner.wake(); }};  // last: joined first
};

Executor::Executor(const dsl::Workflow& wf, Runner& runner, EventSink& sink, RunOptions options)
    : impl_(std::make_unique<Impl>(wf, runner, sink, std::move(options))) {}

Executor::~Executor() = default;

RunRecord Executor::run(const std::atomic<bool>& interrupt) { return impl_->run(interrupt); }

std::vector<std::string> Executor::dry_run() const {
  const dsl::Workflow& wf = impl_->wf;
  std::vector<std::string> out;
  for (uint32_t node : wf.dag.topological_order()) {
    if (!impl_->opt.selected.empty() && !impl_->opt.selected[node]) continue;
    const dsl::DagNode& dn = wf.dag.node(node);
    const dsl::Step& s = wf.steps[dn.step];
    std::string what;
    switch (s.kind) {
      case dsl::ActionKind::Run:
        what = dsl::render(s.command, [&](const dsl::Ref& r) -> std::optional<std::string> {
          if (r.kind == dsl::Ref::Kind::Param) {
            auto it = impl_->opt.params.find(r.key);
            if (it != impl_->opt.params.end()) return it->second.to_text();
          } else if (r.kind == dsl::Ref::Kind::Matrix) {
            for (const auto& [k, v] : dn.matrix)
              if (k == r.key) return v.to_text();
          } else if (r.kind == dsl::Ref::Kind::RunId) {
            return impl_->opt.run_id;
          }
          return std::nullopt;
        });
        break;
      case dsl::ActionKind::Lua: what = "lua " + s.script; break;
      case dsl::ActionKind::LuaInline: what = "lua (inline)"; break;
      case dsl::ActionKind::Uses: what = "uses " + s.plugin + "." + s.action; break;
    }
    if (!s.when.empty()) what += "   [when " + s.when + "]";
    out.push_back(dn.name + ": " + what);
  }
  return out;
}

}  // namespace sluice::engine
