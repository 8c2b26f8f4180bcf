#pragma once
// Steps that are not shell commands — Lua scripts, Lua plugin actions, native
// plugin actions and the built-in actions (registry.*, workflow.*) — run as
// actions: the executor resolves the step's templates, then calls the step's
// ActionHandler on one of its action threads (see action_pool.h). A handler
// reports through the ActionContext and returns an ActionResult; it never
// throws for anything a script, plugin or argument does.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dsl/params.h"
#include "dsl/plugin_manifest.h"
#include "dsl/value.h"
#include "engine/lua_host.h"

namespace sluice::engine {

// One attempt of one action step: plain data, resolved at dispatch.
struct ActionCall {
  std::string run_id;
  std::string node;     // the instance, e.g. "train[lr=0.1]"
  std::string step;     // the step, e.g. "train"
  int attempt = 1;
  std::string home;     // the state folder (.sluice): the store is home/sluice.db
  std::string workflow_name;
  std::string workflow_path;  // absolute
  std::string workflow_dir;   // absolute; Lua scripts are relative to it

  // Lua steps: the script (absolute path) or inline code. Plugin steps: the
  // action and its args (`with`, templates resolved, defaults applied).
  std::string script_path;
  std::string code;
  std::string chunk_name;     // how Lua errors name the chunk
  std::string plugin, action;
  nlohmann::json args = nlohmann::json::object();

  dsl::ParamValues params;
  std::map<std::string, std::string> inputs;   // name -> absolute path
  std::map<std::string, std::string> outputs;  // name -> absolute path inside workdir
  std::vector<std::pair<std::string, dsl::Value>> matrix;
  std::map<std::string, LuaUpstream> steps;    // upstream steps this one depends on
  std::string workdir;                         // absolute, exists
  std::string log_path;                        // the attempt's log (the context writes it)
  std::chrono::milliseconds timeout{0};        // 0 = none (Lua steps get 60 s)
  uint64_t memory = 0;                         // resources.memory; 0 = the default (Lua: 512M)
  std::vector<std::string> http_hosts;         // sluice.http allow-list
  std::string served_workflows;                // RunOptions::served_workflows ("" = not under sluice serve)
};

// The host side of a running action; valid during invoke(), on its thread.
class ActionContext {
 public:
  virtual ~ActionContext() = default;
  // A line into the attempt's log (and, with -v, the terminal).
  virtual void log(std::string_view line) = 0;
  virtual void metric(const std::string& name, double value, std::optional<int64_t> step = std::nullopt) = 0;
  // True once the step is cancelled or past its timeout: return promptly.
  virtual bool cancelled() const = 0;
  // The flag behind cancelled() without the timeout, for code that polls an
  // atomic (LuaLimits::cancel). Null when the context has none.
  virtual const std::atomic<bool>* cancel_flag() const { return nullptr; }
  // The time left before the step's timeout (nullopt: no timeout).
  virtual std::optional<std::chrono::milliseconds> time_left() const = 0;
  // This thread's Lua host (created on first use, reused between steps).
  virtual LuaHost& lua() = 0;
};

struct ActionResult {
  bool ok = false;
  bool timed_out = false;   // the failure is the step's timeout
  bool cancelled = false;   // stopped because cancelled() said so
  std::string error;        // one line: why it failed
  std::map<std::string, std::string> values;
};

class ActionHandler {
 public:
  virtual ~ActionHandler() = default;
  // Runs one attempt. Called from action threads, possibly several at once
  // for different steps: a handler keeps no per-call state in members.
  virtual ActionResult invoke(const ActionCall& call, ActionContext& ctx) = 0;
};

}  // namespace sluice::engine
