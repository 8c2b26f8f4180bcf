#pragma once
// The Lua host: one LuaJIT state with the sluice sandbox and its limits. It
// evaluates `when` expressions and runs Lua steps and Lua plugin actions with
// the same sandbox, limits and protected calls. See docs/lua.md.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dsl/params.h"
#include "dsl/value.h"

namespace sluice::engine {

// Limits of one call into Lua. Both are checked by a count hook between Lua VM
// instructions; the memory limit is also enforced by the state's allocator, so a
// single huge allocation fails at once. Time inside one C library call (a giant
// string.rep, a pathological string.find) is only noticed when it returns.
struct LuaLimits {
  std::chrono::milliseconds time{std::chrono::seconds(60)};  // wall clock, steady
  uint64_t memory = 512ull << 20;  // bytes held by the whole state, the host's own ~32 KB included
  // Set from another thread to stop the call at the next check: it fails
  // with "cancelled". Null = not cancellable.
  const std::atomic<bool>* cancel = nullptr;
};

// The data a `when` expression sees, as the globals `params`, `matrix` and `steps`:
//   params.NAME         the run's param values (strings, numbers, booleans, arrays as 1-based tables);
//   matrix.KEY          this instance's matrix bindings (empty for a plain step);
//   steps.S.values.K    values recorded by upstream step S; "true"/"false" become booleans,
//                       text that parses fully as a finite decimal number becomes a number,
//                       anything else stays a string.
// A step with no recorded values (or not listed) reads as { values = {} }, so
// steps.S.values.K is nil for a missing value (Lua semantics). Integers beyond 2^53
// lose precision (Lua numbers are doubles). Pointers must stay valid for the call;
// null pointers mean "none".
struct WhenInput {
  const dsl::ParamValues* params = nullptr;
  const std::vector<std::pair<std::string, dsl::Value>>* matrix = nullptr;
  const std::map<std::string, std::map<std::string, std::string>>* step_values = nullptr;
};

// An upstream step as a Lua step sees it in `ctx.steps`. A plain step reads as
// { values = {...} }; a matrix step (matrix = true) as a list of its instances,
// each { matrix = {...}, values = {...} }, in the order given. Values are the
// recorded text, converted as for `when` (booleans, numbers, else strings).
struct LuaUpstream {
  struct Instance {
    std::vector<std::pair<std::string, dsl::Value>> matrix;
    std::map<std::string, std::string> values;
  };
  bool matrix = false;
  std::map<std::string, std::string> values;  // a plain step
  std::vector<Instance> instances;            // a matrix step
};

struct LuaLogLine {
  enum class Level { Info, Warn, Error };
  Level level = Level::Info;
  std::string text;
};

struct LuaMetric {
  std::string name;
  double value = 0;
  std::optional<int64_t> step;  // sluice.metric's third argument
};

// Everything one Lua step attempt needs; plain data, copied into Lua (never
// referenced after run_step returns). See docs/lua.md, "Lua steps".
struct LuaStepInput {
  // The chunk: the file `script_path` (re-read each call, compiled once per host
  // while its text is unchanged) or, when that is empty, the text `code`.
  std::string script_path;
  std::string code;
  // A Lua plugin action (docs/plugins.md): when `action` is set, the chunk is
  // the plugin's init.lua and must return a table of actions; run_step then
  // calls `action(ctx, args)` with `args` (a Table: the step's `with`, defaults
  // applied) and takes its return value as the step's values. Same sandbox,
  // limits and fresh environment as a step; set `plugin_dir` too.
  std::string action;
  dsl::Value args = dsl::Value(dsl::ValueTable{});
  // How errors name the chunk: `name:line: message`. Default: script_path for a
  // file, "lua_inline:<run.step>" for inline code. LuaJIT shortens names longer
  // than 60 bytes from the left, so prefer a path relative to the workflow file.
  std::string chunk_name;

  dsl::ParamValues params;
  std::map<std::string, std::string> inputs;   // name -> absolute path; readable through sluice.fs
  std::map<std::string, std::string> outputs;  // name -> absolute path inside workdir
  std::vector<std::pair<std::string, dsl::Value>> matrix;  // this instance's bindings
  struct Run {
    std::string id;
    std::string step;
    int attempt = 1;
  } run;
  std::map<std::string, LuaUpstream> steps;  // upstream step name -> what it recorded
  std::string workdir;                       // absolute, existing; sluice.fs's root
  LuaLimits limits;
  std::vector<std::string> http_hosts;  // "host" or "host:port" sluice.http may reach; empty = none
  std::string plugin_dir;               // "" = require() finds stdlib modules only (sluice.*)
  std::string home;  // the state folder whose store sluice.registry uses ("" = none); run.step names the node
  // Called on the calling thread for each log line as it is written (it is
  // also collected in the result). Optional.
  std::function<void(const LuaLogLine&)> on_log;
};

struct LuaStepResult {
  bool ok = false;
  // On failure: "chunk:line: message" (a Lua error), "chunk: ..." (a bad return
  // value, an unreadable script), or "time limit exceeded" / "memory limit
  // exceeded" / "cancelled"; `traceback` is the Lua stack where it happened, for the log.
  std::string error;
  std::string traceback;
  std::map<std::string, std::string> values;  // the returned table, as text
  std::vector<LuaLogLine> log;                // sluice.log.*, print
  std::vector<LuaMetric> metrics;             // sluice.metric, in call order
};

// One LuaJIT state with the sluice sandbox. Not thread-safe: one LuaHost per
// worker thread, never shared between threads; values cross hosts by deep copy.
// Every call into Lua is protected: a Lua error, a limit or an allocation failure
// is reported as an error string and leaves the host usable. Each call gets a
// fresh global environment; nothing a script does to its globals or to the
// library tables it sees survives into the next call.
class LuaHost {
 public:
  LuaHost();  // throws std::bad_alloc if no state can be created
  ~LuaHost();
  LuaHost(const LuaHost&) = delete;
  LuaHost& operator=(const LuaHost&) = delete;
  LuaHost(LuaHost&&) noexcept;  // a moved-from host may only be destroyed or assigned to
  LuaHost& operator=(LuaHost&&) noexcept;

  // Evaluates `return (<expr>)` and sets `result` to its Lua truthiness (nil and
  // false are false). On any failure returns false with `error` as
  // "when: <message>" (no chunk name or position).
  bool eval_when(const std::string& expr, const WhenInput& in, const LuaLimits& limits, bool& result,
                 std::string& error);

  // Evaluates `return (<expr>)` like eval_when, with `globals` as the only
  // data it sees (tables become Lua tables, arrays 1-based; a name that is not
  // given reads as nil). Errors are "<label>: <message>". Promotion gates use it
  // with `candidate` and `champion`.
  bool eval_expr(const std::string& expr, const std::map<std::string, dsl::Value>& globals, const std::string& label,
                 const LuaLimits& limits, bool& result, std::string& error);

  // Runs one Lua step attempt in a fresh sandbox environment (see LuaStepInput).
  // Never throws for anything the script does; the host stays usable.
  LuaStepResult run_step(const LuaStepInput& in);

  // Bytes the state holds now.
  uint64_t memory_used() const;
  // True when the state runs on the host's counting allocator (the memory limit
  // is exact); false when LuaJIT refused a custom allocator and the limit is
  // checked from the count hook only.
  bool exact_memory_limit() const;

  struct State;  // the lua_State and its bookkeeping (lua_host.cc)

 private:
  std::unique_ptr<State> s_;
};

}  // namespace sluice::engine
