#include <catch2/catch.hpp>

#include <chrono>

#include "engine/lua_host.h"

using namespace sluice;
using namespace sluice::engine;
using namespace std::chrono_literals;

namespace {

struct Fixture {
  LuaHost host;
  dsl::ParamValues params;
  std::vector<std::pair<std::string, dsl::Value>> matrix;
  std::map<std::string, std::map<std::string, std::string>> steps;
  LuaLimits limits;

  WhenInput input() const { return WhenInput{&params, &matrix, &steps}; }

  // The expression's truthiness; fails the test on an error.
  bool eval(const std::string& expr) {
    bool result = false;
    std::string error;
    INFO(expr);
    bool ok = host.eval_when(expr, input(), limits, result, error);
    INFO(error);
    REQUIRE(ok);
    return result;
  }

  // The error message; fails the test if the expression evaluates.
  std::string error_of(const std::string& expr) {
    bool result = false;
    std::string error;
    INFO(expr);
    REQUIRE_FALSE(host.eval_when(expr, input(), limits, result, error));
    return error;
  }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("lua_host: results are Lua truthiness") {
  Fixture f;
  CHECK(f.eval("true"));
  CHECK_FALSE(f.eval("false"));
  CHECK_FALSE(f.eval("nil"));
  CHECK(f.eval("0"));  // 0 is true in Lua
  CHECK(f.eval("''"));
  CHECK(f.eval("1 + 1 == 2 -- a trailing comment"));
  CHECK(f.eval("string.upper('a') == 'A' and ('b'):upper() == 'B'"));
  CHECK(f.eval("math.max(1, 3) == 3 and table.concat({1, 2}, ',') == '1,2'"));
  CHECK(f.eval("select('#', unpack({1, 2, 3})) == 3 and tonumber('7') == 7 and tostring(8) == '8'"));
  CHECK(f.eval("_G.type(_G) == 'table' and _G.params == params"));
}

TEST_CASE("lua_host: pcall, xpcall and coroutines work as in Lua") {
  Fixture f;
  CHECK(f.eval("pcall(error, 'x') == false and select(2, pcall(error, 'x', 0)) == 'x'"));
  CHECK(f.eval("select(2, pcall(function(a, b) return a + b end, 1, 2)) == 3"));
  CHECK(f.eval("select(2, xpcall(function() error('e', 0) end, function(m) return m .. '!' end)) == 'e!'"));
  CHECK(f.eval("coroutine.wrap(function() return pcall(coroutine.yield, 5) end)() == 5"));
  CHECK(f.eval("select(2, coroutine.resume(coroutine.create(function() error('in co', 0) end))) == 'in co'"));
}

TEST_CASE("lua_host: params of every type") {
  Fixture f;
  f.params["name"] = dsl::Value("recommender");
  f.params["epochs"] = dsl::Value(int64_t{10});
  f.params["min_auc"] = dsl::Value(0.75);
  f.params["verbose"] = dsl::Value(true);
  f.params["quiet"] = dsl::Value(false);
  f.params["depths"] = dsl::Value(dsl::ValueArray{dsl::Value(int64_t{3}), dsl::Value(int64_t{5})});
  f.params["tags"] = dsl::Value(dsl::ValueArray{dsl::Value("a"), dsl::Value("b")});
  f.params["empty"] = dsl::Value(dsl::ValueArray{});
  CHECK(f.eval("params.name == 'recommender'"));
  CHECK(f.eval("params.epochs == 10 and type(params.epochs) == 'number'"));
  CHECK(f.eval("params.min_auc == 0.75"));
  CHECK(f.eval("params.verbose == true and params.quiet == false"));
  CHECK(f.eval("#params.depths == 2 and params.depths[1] == 3 and params.depths[2] == 5"));
  CHECK(f.eval("params.tags[2] == 'b'"));
  CHECK(f.eval("type(params.empty) == 'table' and #params.empty == 0"));
  CHECK(f.eval("params.missing == nil"));
}

TEST_CASE("lua_host: matrix bindings") {
  Fixture f;
  f.matrix = {{"lr", dsl::Value(0.05)}, {"model", dsl::Value("xgb")}, {"depth", dsl::Value(int64_t{4})}};
  CHECK(f.eval("matrix.lr == 0.05 and matrix.model == 'xgb' and matrix.depth == 4"));
  CHECK(f.eval("matrix.other == nil"));
  f.matrix.clear();
  CHECK(f.eval("next(matrix) == nil"));
}

TEST_CASE("lua_host: step values become booleans, numbers or strings") {
  Fixture f;
  f.steps["pick"] = {{"auc", "0.81"}, {"n", "42"}, {"neg", "-1e3"}, {"ok", "true"}, {"bad", "false"},
                     {"name", "model-7"}, {"space", " 1"}, {"inf", "inf"}, {"empty", ""}, {"True", "True"}};
  f.params["min_auc"] = dsl::Value(0.75);
  CHECK(f.eval("steps.pick.values.auc >= params.min_auc"));
  CHECK(f.eval("steps.pick.values.n == 42 and steps.pick.values.neg == -1000"));
  CHECK(f.eval("steps.pick.values.ok == true and steps.pick.values.bad == false"));
  CHECK_FALSE(f.eval("steps.pick.values.bad"));
  CHECK(f.eval("steps.pick.values.name == 'model-7'"));
  CHECK(f.eval("steps.pick.values.space == ' 1' and steps.pick.values.inf == 'inf'"));
  CHECK(f.eval("steps.pick.values.empty == '' and steps.pick.values.True == 'True'"));
  // A missing value is nil; a step without values reads as { values = {} }.
  CHECK(f.eval("steps.pick.values.missing == nil"));
  CHECK(f.eval("steps.unknown.values.auc == nil and next(steps.unknown.values) == nil"));
  CHECK(f.error_of("steps.pick.values.missing >= 0.5") == "when: attempt to compare number with nil");
}

TEST_CASE("lua_host: errors are reported without chunk noise") {
  Fixture f;
  CHECK(f.error_of("1 +") == "when: unexpected symbol near ')'");
  CHECK(f.error_of("params.nope.x") == "when: attempt to index field 'nope' (a nil value)");
  CHECK(f.error_of("error('custom failure')") == "when: custom failure");
  CHECK(f.error_of("error({})") == "when: (error object is a table value)");
  CHECK(f.error_of("error()") == "when: nil");
}

TEST_CASE("lua_host: blocked globals name themselves") {
  Fixture f;
  for (const char* name : {"os", "io", "require", "debug", "load", "dofile", "loadstring", "loadfile", "package",
                           "ffi", "jit", "collectgarbage", "getfenv", "setfenv", "print"}) {
    INFO(name);
    CHECK(f.error_of(std::string(name)) == std::string("when: ") + name + " is not available in the sluice sandbox");
  }
  CHECK(f.error_of("os.execute('touch x')") == "when: os is not available in the sluice sandbox");
  CHECK(f.error_of("require('ffi')") == "when: require is not available in the sluice sandbox");
  CHECK(f.error_of("io.open('/etc/passwd')") == "when: io is not available in the sluice sandbox");
  CHECK(f.error_of("_G.debug") == "when: debug is not available in the sluice sandbox");
  CHECK(f.eval("rawget(_G, 'os') == nil"));
  CHECK(f.eval("some_unknown_name == nil"));
  CHECK(f.eval("string.dump == nil"));
  CHECK(f.eval("getmetatable('') == false and getmetatable(_G) == false"));
  CHECK(f.error_of("setmetatable(_G, {})") == "when: cannot change a protected metatable");
}

TEST_CASE("lua_host: nothing leaks from one evaluation into the next") {
  Fixture f;
  CHECK(f.eval("(function() leaked = 1 return true end)()"));
  CHECK(f.eval("leaked == nil"));
  CHECK(f.eval("(function() string.upper = nil; table.concat = nil; math.pi = 3 return true end)()"));
  CHECK(f.eval("string.upper('a') == 'A' and table.concat({'x'}) == 'x' and math.pi > 3.14"));
  CHECK(f.eval("(function() params.x = 1; steps.s = 1; _G.pairs = nil return true end)()"));
  CHECK(f.eval("params.x == nil and steps.s.values ~= nil and pairs ~= nil"));
  // The real string table behind ("x"):upper() cannot be reached.
  CHECK(f.error_of("getmetatable('').__index.upper") == "when: attempt to index a boolean value");
  CHECK(f.eval("('a'):upper() == 'A'"));
}

TEST_CASE("lua_host: an infinite loop stops at the time limit") {
  Fixture f;
  f.limits.time = 200ms;
  for (const char* expr : {"(function() while true do end end)()",
                           "coroutine.wrap(function() while true do end end)()",
                           "coroutine.resume(coroutine.create(function() while true do end end))",
                           "(function() while true do pcall(function() while true do end end) end end)()",
                           "(function() local n = 0 while true do n = n + #tostring(n) end end)()"}) {
    INFO(expr);
    auto t0 = std::chrono::steady_clock::now();
    CHECK(f.error_of(expr) == "when: time limit exceeded");
    double took = seconds_since(t0);
    CHECK(took >= 0.19);
    CHECK(took < 1.2);
  }
  f.limits = LuaLimits{};
  CHECK(f.eval("1 < 2"));
}

TEST_CASE("lua_host: a long C call past the deadline still fails") {
  Fixture f;
  f.limits.time = 1ms;  // one string.rep of 64 MB takes longer; the hook never runs during it
  CHECK(f.error_of("#string.rep('x', 64 * 1024 * 1024) > 0") == "when: time limit exceeded");
}

TEST_CASE("lua_host: a moved host keeps working") {
  Fixture f;
  LuaHost moved = std::move(f.host);
  bool result = false;
  std::string error;
  REQUIRE(moved.eval_when("math.floor(2.5) == 2", f.input(), f.limits, result, error));
  CHECK(result);
}

TEST_CASE("lua_host: a memory bomb stops at the memory limit") {
  Fixture f;
  REQUIRE(f.host.exact_memory_limit());  // Debian's LuaJIT takes our allocator
  const uint64_t before = f.host.memory_used();
  f.limits.memory = 32ull << 20;
  CHECK(f.error_of("(function() local t = {} while true do t[#t+1] = string.rep('x', 1000) .. #t end end)()") ==
        "when: memory limit exceeded");
  // One allocation beyond the limit fails at once; catching it does not help.
  CHECK(f.error_of("#string.rep('x', 64 * 1024 * 1024) > 0") == "when: memory limit exceeded");
  CHECK(f.error_of("pcall(string.rep, 'x', 64 * 1024 * 1024) or true") == "when: memory limit exceeded");
  // The host is usable afterwards: the failed call's garbage is collected.
  CHECK(f.host.memory_used() < before + (1u << 20));
  CHECK(f.eval("#string.rep('z', 1000) == 1000"));
  // Garbage does not count against the limit for long: 200 MB churned through 32 MB.
  CHECK(f.eval("(function() for i = 1, 200 do local s = string.rep('y', 1024 * 1024) .. i end return true end)()"));
}

TEST_CASE("lua_host: many small evaluations stay fast") {
  Fixture f;
  f.params["min_auc"] = dsl::Value(0.75);
  f.steps["pick"] = {{"auc", "0.81"}};
  auto t0 = std::chrono::steady_clock::now();
  int truthy = 0;
  for (int i = 0; i < 10'000; ++i) truthy += f.eval("steps.pick.values.auc >= params.min_auc") ? 1 : 0;
  CHECK(truthy == 10'000);
  CHECK(seconds_since(t0) < 10.0);  // generous: a sanity bound, not a benchmark
}

TEST_CASE("lua_host: eval_expr sees only the globals it is given") {
  LuaHost host;
  std::map<std::string, dsl::Value> globals;
  globals["candidate"] = dsl::Value(dsl::ValueTable{{"version", dsl::Value(int64_t{3})},
                                                    {"metrics", dsl::Value(dsl::ValueTable{{"auc", dsl::Value(0.84)}})}});
  bool result = false;
  std::string error;
  const std::string gate = "candidate.metrics.auc >= (champion and champion.metrics.auc or 0) + 0.01";
  REQUIRE(host.eval_expr(gate, globals, "gate", LuaLimits{}, result, error));
  CHECK(result);
  globals["champion"] = dsl::Value(dsl::ValueTable{{"metrics", dsl::Value(dsl::ValueTable{{"auc", dsl::Value(0.835)}})}});
  REQUIRE(host.eval_expr(gate, globals, "gate", LuaLimits{}, result, error));
  CHECK_FALSE(result);
  // The same text as a `when` expression is compiled separately: its errors keep their own label.
  CHECK_FALSE(host.eval_expr("champion.metrics.nope.x", globals, "gate", LuaLimits{}, result, error));
  CHECK(error == "gate: attempt to index field 'nope' (a nil value)");
  CHECK_FALSE(host.eval_expr("params.x", {}, "gate", LuaLimits{}, result, error));
  CHECK(error == "gate: attempt to index global 'params' (a nil value)");
  CHECK_FALSE(host.eval_expr("candidate >", globals, "gate", LuaLimits{}, result, error));
  CHECK(error == "gate: unexpected symbol near ')'");
  CHECK_FALSE(host.eval_expr("(function() while true do end end)()", globals, "gate",
                             LuaLimits{std::chrono::milliseconds(50)}, result, error));
  CHECK(error == "gate: time limit exceeded");
  // The host stays usable, and `when` errors still say "when".
  bool when_result = false;
  CHECK_FALSE(host.eval_when("steps.x.values.y.z", WhenInput{}, LuaLimits{}, when_result, error));
  CHECK(error.rfind("when: ", 0) == 0);
}
