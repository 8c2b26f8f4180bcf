#include "engine/workflow_actions.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "dsl/suggest.h"
#include "engine/executor.h"
#include "engine/queued_run.h"
#include "engine/serve_catalog.h"
#include "engine/state_store.h"

extern char** environ;

namespace sluice::engine {

namespace fs = std::filesystem;

namespace {

// "-p NAME=VALUE" text of one param value: strings as they are, everything
// else as JSON (numbers, booleans, arrays), which `-p` parses against the
// child's declaration.
std::string param_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

struct Child {
  pid_t pid = -1;
  int out = -1;  // read end of stdout+stderr
};

bool spawn_child(const std::vector<std::string>& argv, const std::string& cwd, Child& child, std::string& error) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    error = std::string("cannot create a pipe: ") + std::strerror(errno);
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t dfl;
  sigemptyset(&dfl);
  sigaddset(&dfl, SIGINT);
  sigaddset(&dfl, SIGTERM);
  sigaddset(&dfl, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc = posix_spawn(&child.pid, argv[0].c_str(), &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    error = "cannot start " + argv[0] + ": " + std::strerror(rc);
    return false;
  }
  child.out = fds[0];
  return true;
}

// The served workflow `target` names: its file (relative to the calling
// workflow's folder, as under `sluice run`), else its name. Null with
// `error` when the server does not serve it.
const ServedWorkflow* find_served(const Catalog& cat, const ActionCall& call, const std::string& target,
                                  std::string& error) {
  std::error_code ec;
  fs::path file = target;
  if (file.is_relative()) file = fs::path(call.workflow_dir) / file;
  file = fs::weakly_canonical(file, ec);
  for (const auto& [name, w] : cat.workflows)
    if (fs::weakly_canonical(w.path, ec) == file) return &w;
  if (const ServedWorkflow* w = cat.find(target)) return w;
  for (const LoadError& e : cat.errors)
    if (fs::weakly_canonical(e.path, ec) == file) {
      error = "'" + target + "' is not served: it does not validate (" + e.path + ")";
      return nullptr;
    }
  const std::vector<std::string> names = cat.names();
  std::string served;
  for (const std::string& n : names) served += (served.empty() ? "" : ", ") + n;
  error = "'" + target + "' is not a workflow sluice serve serves from " + call.served_workflows + " (it serves " +
          (served.empty() ? std::string("none") : served) + ")" + dsl::did_you_mean(file.stem().string(), names);
  return nullptr;
}

// workflow.trigger in a run `sluice serve` started: queues a run of the
// served workflow for the server to start (its queue polls the store), with
// this run as its parent, and returns at once.
ActionResult queue_for_server(const ActionCall& call, ActionContext& ctx) {
  ActionResult r;
  const std::string target = call.args["workflow"].get<std::string>();
  std::string error;
  std::shared_ptr<const Catalog> cat = load_catalog(call.served_workflows);
  const ServedWorkflow* w = find_served(*cat, call, target, error);
  if (!w) {
    r.error = "workflow.trigger: " + error;
    return r;
  }
  // The params are typed like `-p NAME=VALUE` (templates give text), as for a child run.
  const nlohmann::json given = call.args.contains("params") ? call.args["params"] : nlohmann::json::object();
  if (!given.is_object()) {
    r.error = "workflow.trigger: 'params' must be a table";
    return r;
  }
  dsl::ParamValues params = dsl::default_params(*w->wf);
  for (const auto& [k, v] : given.items())
    if (!dsl::apply_override(*w->wf, k + "=" + param_text(v), params, error)) {
      r.error = "workflow.trigger: " + error;
      return r;
    }
  const std::string run_id = new_run_id();
  const int64_t now = registry::now_ms();
  std::vector<registry::Write> writes = {registry::PutWorkflow{
      .name = w->wf->name, .digest = w->digest, .source = w->wf->source, .path = w->path, .at = now}};
  for (registry::Write& x : queued_run_writes(*w, params, registry::Trigger::Child, run_id, now, call.run_id))
    writes.push_back(std::move(x));
  try {
    open_state_store(call.home)->apply(std::move(writes));
  } catch (const registry::StoreError& e) {
    r.error = std::string("workflow.trigger: cannot queue the run: ") + e.what();
    return r;
  }
  ctx.log("info: queued run " + run_id + " of workflow '" + w->wf->name + "' for sluice serve to start");
  r.values["run_id"] = run_id;
  r.values["status"] = "queued";
  r.ok = true;
  return r;
}

// Whether run `run_id` is in the store: the recorder commits a run's start
// before its first step, so it is unless recording the run failed.
bool run_recorded(const std::string& home, const std::string& run_id) {
  try {
    return open_state_store(home)->run(run_id).has_value();
  } catch (const registry::StoreError&) {
    return false;
  }
}

class WorkflowHandler : public ActionHandler {
 public:
  ActionResult invoke(const ActionCall& call, ActionContext& ctx) override {
    ActionResult r;
    const bool trigger = call.action == "trigger";
    if (call.action != "run" && !trigger) {
      r.error = "workflow." + call.action + ": no such action";
      return r;
    }
    const nlohmann::json& args = call.args;
    if (!args.contains("workflow") || !args["workflow"].is_string()) {
      r.error = "workflow." + call.action + ": 'workflow' must be the path of a workflow file";
      return r;
    }
    if (trigger && !call.served_workflows.empty()) return queue_for_server(call, ctx);
    fs::path file = args["workflow"].get<std::string>();
    if (file.is_relative()) file = fs::path(call.workflow_dir) / file;
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) {
      r.error = "workflow." + call.action + ": workflow file not found: " + file.string();
      return r;
    }
    std::vector<std::string> argv = {self_path(), "run", "--home", call.home};
    if (args.contains("params")) {
      if (!args["params"].is_object()) {
        r.error = "workflow." + call.action + ": 'params' must be a table";
        return r;
      }
      for (const auto& [k, v] : args["params"].items()) {
        argv.push_back("-p");
        argv.push_back(k + "=" + param_text(v));
      }
    }
    // Recorded as a child of this run (trigger "child"); as a plain run when
    // this run could not be recorded.
    if (run_recorded(call.home, call.run_id)) {
      argv.push_back("--parent");
      argv.push_back(call.run_id);
    } else {
      ctx.log("warning: run " + call.run_id + " is not in the store: the child run is not linked to it");
    }
    argv.push_back(file.string());
    ctx.log("info: starting a child run of " + file.string());
    Child child;
    std::string error;
    if (!spawn_child(argv, call.workdir, child, error)) {
      r.error = "workflow." + call.action + ": " + error;
      return r;
    }
    std::string child_run;
    int status = wait_child(child, ctx, child_run);
    r.values["run_id"] = child_run;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const std::string outcome = ok                                             ? "succeeded"
                                : WIFEXITED(status) && WEXITSTATUS(status) == 1 ? "failed"
                                : WIFEXITED(status) && WEXITSTATUS(status) == 2 ? "invalid"
                                                                                 : "cancelled";
    r.values["status"] = outcome;
    if (ctx.cancelled()) {
      r.cancelled = !ctx.time_left() || ctx.time_left()->count() > 0;
      r.timed_out = !r.cancelled;
      r.error = r.timed_out ? "timed out; the child run " + child_run + " was stopped" : "cancelled";
      return r;
    }
    if (!ok && !trigger) {
      r.error = "child run " + (child_run.empty() ? std::string("of ") + file.string() : child_run) + " " + outcome;
      return r;
    }
    r.ok = true;
    return r;
  }

 private:
  static std::string self_path() {
    std::error_code ec;
    fs::path p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string("sluice") : p.string();
  }

  // Copies the child's output into the step log, stopping the child's process
  // group when the step is cancelled or times out. Returns the wait status.
  static int wait_child(Child& child, ActionContext& ctx, std::string& run_id) {
    std::string pending;
    bool stopping = false;
    auto kill_at = std::chrono::steady_clock::time_point::max();
    for (;;) {
      if (!stopping && ctx.cancelled()) {
        stopping = true;
        ::kill(-child.pid, SIGTERM);
        kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      }
      if (stopping && std::chrono::steady_clock::now() >= kill_at) ::kill(-child.pid, SIGKILL);
      pollfd p{child.out, POLLIN, 0};
      int n = ::poll(&p, 1, 100);
      if (n > 0) {
        char buf[4096];
        ssize_t got = ::read(child.out, buf, sizeof buf);
        if (got > 0) {
          pending.append(buf, static_cast<size_t>(got));
          size_t nl;
          while ((nl = pending.find('\n')) != std::string::npos) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            // "run <id>: N steps of workflow 'x'" names the child run.
            if (run_id.empty() && line.rfind("run ", 0) == 0 && line.find(':') != std::string::npos)
              run_id = line.substr(4, line.find(':') - 4);
            ctx.log("child: " + line);
          }
          continue;
        }
        if (got == 0 || (got < 0 && errno != EINTR)) break;  // EOF: the child closed its output
      }
    }
    if (!pending.empty()) ctx.log("child: " + pending);
    ::close(child.out);
    int status = 0;
    while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::kill(-child.pid, SIGKILL);  // whatever the child left in its group
    return status;
  }
};

}  // namespace

dsl::PluginManifest workflow_plugin_manifest() {
  dsl::PluginManifest m;
  m.path = "<builtin>";
  m.name = "workflow";
  m.version = "1.0.0";
  m.kind = dsl::PluginKind::Builtin;
  m.description = "Start another workflow: a child run (run) or the feedback loop (trigger)";
  std::vector<dsl::ActionParam> params = {
      dsl::make_action_param("params", dsl::ParamKind::Table, false, "Params of the child run (-p NAME=VALUE each)", dsl::Value(dsl::ValueTable{})),
      dsl::make_action_param("workflow", dsl::ParamKind::String, true, "The workflow file, relative to this workflow's folder"),
  };
  m.actions.push_back(dsl::make_plugin_action("run", "Run another workflow as a child run and wait; fails if it fails", params));
  m.actions.push_back(dsl::make_plugin_action(
      "trigger",
      "Start a run of another workflow (under sluice run: a child run, its outcome a value; under sluice serve: a "
      "queued run the server starts)",
      params));
  return m;
}

std::shared_ptr<ActionHandler> make_workflow_handler() { return std::make_shared<WorkflowHandler>(); }

}  // namespace sluice::engine
