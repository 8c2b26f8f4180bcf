#pragma once
// The Lua host: one LuaJIT state with the sluice sandbox and its limits. Today it
// evaluates `when` expressions; Lua steps and Lua plugins are meant to run on the
// same host (same sandbox, same limits, same protected calls). See docs/lua.md,
// "Lua sandbox (when expressions)".
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
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
