#pragma once
// The `sluice` module Lua steps script against: C++ functions registered in a
// LuaHost's state. Internal to engine/: lua_host.cc builds the sandbox around
// the module; lua_stdlib.cc (log, metric, fs, time, json), lua_csv.cc,
// lua_stats.cc and lua_http.cc fill it. See docs/lua.md, "The sluice module".
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <lua.hpp>

#include "engine/lua_host.h"

namespace sluice::engine::lua {

// The step attempt being run. Owned by LuaHost::run_step for the duration of
// one call; the sluice functions reach it through current_step().
struct StepContext {
  const LuaStepInput* in = nullptr;
  LuaStepResult* out = nullptr;
  std::chrono::steady_clock::time_point deadline;
  uint64_t memory_limit = 0;
  // realpath() of the work dir and of each declared input, filled on first use
  // by sluice.fs / sluice.csv.
  bool resolved = false;
  std::string real_workdir;
  std::vector<std::string> real_inputs;
  uint64_t log_bytes = 0;  // text logged so far; lines beyond kMaxLogBytes are counted, not kept
  uint64_t log_dropped = 0;
};

constexpr uint64_t kMaxLogBytes = 16ull << 20;

// --- provided by lua_host.cc ---
// The step being run, or null when the state is not running a step.
StepContext* current_step(lua_State* L);
// Raises "time limit exceeded" once the running call is past its deadline. C
// functions with long loops call it now and then: the count hook only runs
// between Lua VM instructions.
void check_limits(lua_State* L);
// Fails the running call with "time limit exceeded" now (a C function that
// waited until the deadline, e.g. an HTTP request cut short by it).
[[noreturn]] void raise_time_limit(lua_State* L);

// --- provided by lua_stdlib.cc ---
// Pushes the template of the `sluice` table (built once per state; each step
// gets a deep copy). Needs the state's base library to be open.
void push_sluice_template(lua_State* L);
// Appends a log line to the running step (dropping it past kMaxLogBytes).
void add_log(StepContext& c, LuaLogLine::Level level, std::string text);
// tostring() of each argument from `first` on, joined by `sep`.
std::string join_args(lua_State* L, int first, const char* sep);

// The step context, or a Lua error naming `fn` when called outside a step.
StepContext& step_of(lua_State* L, const char* fn);
// Raises "<fn>: <message>" at the caller's position (luaL_where level 1).
[[noreturn]] void raise(lua_State* L, const char* fn, const std::string& message);

// sluice.fs path rules, shared by sluice.csv: returns the absolute path to use
// or raises "<fn>: '<path>' is refused: <why>".
enum class Access { Read, Write, Exists };
std::string resolve_path(lua_State* L, StepContext& c, const char* fn, const std::string& path, Access access);

// Number formatting shared by values, CSV and JSON: integers in ±2^53 without
// a fraction, others in the shortest form that reads back to the same double.
std::string format_number(double d);

// The array at `index` (1..#t) as doubles; raises naming `fn` and the first
// element that is not a finite-or-infinite number (NaN is refused too).
std::vector<double> check_numbers(lua_State* L, int index, const char* fn, const char* what);

// --- the parts: each sets its functions into the table at the stack top ---
void add_json(lua_State* L);   // sluice.json (lua_stdlib.cc)
void add_csv(lua_State* L);    // sluice.csv (lua_csv.cc)
void add_stats(lua_State* L);  // sluice.stats (lua_stats.cc)
void add_http(lua_State* L);   // sluice.http (lua_http.cc)
void add_registry(lua_State* L);  // sluice.registry (lua_registry.cc)

// Pushes sluice.json.null (a unique userdata per state).
void push_json_null(lua_State* L);

}  // namespace sluice::engine::lua
