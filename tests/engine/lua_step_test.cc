// Lua steps on the LuaHost: ctx, returned values, errors with positions, the
// sandbox's escape attempts (each fails its run; the next run on the same host
// works), limits, require, fan-in.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "engine/lua_host.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::engine;
using namespace std::chrono_literals;

namespace {

using TempDir = sluice::test::ScratchDir;

void write_file(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

struct Fixture {
  LuaHost host;
  TempDir root;
  LuaStepInput in;

  Fixture() {
    std::filesystem::create_directories(root / "work");
    in.workdir = root / "work";
    in.run = {"20260101-000000-000-abcd", "check", 1};
  }

  LuaStepResult run(const std::string& code) {
    in.script_path.clear();
    in.code = code;
    return host.run_step(in);
  }

  // The step's values; fails the test if the step fails.
  std::map<std::string, std::string> values(const std::string& code) {
    INFO(code);
    LuaStepResult r = run(code);
    INFO(r.error);
    INFO(r.traceback);
    REQUIRE(r.ok);
    return r.values;
  }

  std::string value(const std::string& code, const std::string& key = "v") { return values(code)[key]; }

  // The step's error; fails the test if the step succeeds.
  std::string error_of(const std::string& code) {
    INFO(code);
    LuaStepResult r = run(code);
    REQUIRE_FALSE(r.ok);
    CHECK(r.values.empty());
    return r.error;
  }

  // The next step on the same host still works.
  void still_works() { CHECK(value("return { v = string.upper('ok') .. #ctx.run.id }") == "OK24"); }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("lua_step: ctx carries params, inputs, outputs, matrix, run and workdir") {
  Fixture f;
  f.in.params["name"] = dsl::Value("recommender");
  f.in.params["epochs"] = dsl::Value(int64_t{10});
  f.in.params["min_auc"] = dsl::Value(0.75);
  f.in.params["verbose"] = dsl::Value(true);
  f.in.params["depths"] = dsl::Value(dsl::ValueArray{dsl::Value(int64_t{3}), dsl::Value(int64_t{5})});
  f.in.inputs["data"] = f.root / "in/data.csv";
  f.in.outputs["model"] = f.root / "work/model.json";
  f.in.matrix = {{"lr", dsl::Value(0.05)}, {"kind", dsl::Value("xgb")}};
  f.in.run.attempt = 2;
  auto v = f.values(R"lua(
    local p = ctx.params
    assert(p.name == "recommender" and p.epochs == 10 and p.min_auc == 0.75 and p.verbose == true)
    assert(#p.depths == 2 and p.depths[2] == 5)
    assert(ctx.matrix.lr == 0.05 and ctx.matrix.kind == "xgb")
    assert(ctx.run.step == "check" and ctx.run.attempt == 2)
    assert(select("#", ...) == 1 and (...) == ctx)   -- the chunk also gets ctx as its argument
    return { data = ctx.inputs.data, model = ctx.outputs.model, run = ctx.run.id, workdir = ctx.workdir }
  )lua");
  CHECK(v["data"] == f.root / "in/data.csv");
  CHECK(v["model"] == f.root / "work/model.json");
  CHECK(v["run"] == "20260101-000000-000-abcd");
  CHECK(v["workdir"] == f.root / "work");
}

TEST_CASE("lua_step: returned values are converted to text") {
  Fixture f;
  auto v = f.values(
      "return { s = 'text', n = 42, neg = -3, f = 0.1, third = 1/3, big = 1e20, huge = 2^53, t = true, "
      "no = false, empty = '', ['dotted.name-x'] = 1 }");
  CHECK(v == std::map<std::string, std::string>{{"s", "text"},
                                                {"n", "42"},
                                                {"neg", "-3"},
                                                {"f", "0.1"},
                                                {"third", "0.3333333333333333"},
                                                {"big", "1e+20"},
                                                {"huge", "9007199254740992"},
                                                {"t", "true"},
                                                {"no", "false"},
                                                {"empty", ""},
                                                {"dotted.name-x", "1"}});
  CHECK(f.values("return").empty());
  CHECK(f.values("return nil").empty());
  CHECK(f.values("return {}").empty());
  CHECK(f.values("local x = 1").empty());
}

TEST_CASE("lua_step: a bad return value fails the step and names the key") {
  Fixture f;
  f.in.run.step = "pick";
  CHECK(f.error_of("return 'auc'") == "lua_inline:pick: a Lua step returns a table of values (or nothing), not a string");
  CHECK(f.error_of("return { model = { path = 'x' } }") ==
        "lua_inline:pick: value 'model' is a table; step values must be strings, numbers or booleans");
  CHECK(f.error_of("return { f = print }") ==
        "lua_inline:pick: value 'f' is a function; step values must be strings, numbers or booleans");
  CHECK(f.error_of("return { 0.9 }") == "lua_inline:pick: returned a value under the number key 1; step values need names");
  CHECK(f.error_of("return { ['a b'] = 1 }") ==
        "lua_inline:pick: value name 'a b' is not valid (letters, digits, '_', '-', '.'; not starting with a digit)");
  CHECK(f.error_of("return { ['1st'] = 1 }").find("value name '1st' is not valid") != std::string::npos);
  f.still_works();
}

TEST_CASE("lua_step: a failing script file reports path:line and a traceback") {
  Fixture f;
  const std::string script = f.root / "scripts/validate.lua";
  write_file(script,
             "local function check(rows)\n"
             "  if rows < 10 then\n"
             "    error('too few rows: ' .. rows)\n"
             "  end\n"
             "end\n"
             "check(3)\n");
  f.in.script_path = script;
  LuaStepResult r = f.host.run_step(f.in);
  REQUIRE_FALSE(r.ok);
  CHECK(r.error == script + ":3: too few rows: 3");  // LuaJIT keeps names up to 60 bytes whole
  CHECK(r.traceback.rfind("stack traceback:", 0) == 0);
  CHECK(r.traceback.find(":3: in function 'check'") != std::string::npos);
  CHECK(r.traceback.find(":6: in main chunk") != std::string::npos);

  SECTION("the chunk name can be the path as the workflow wrote it") {
    f.in.chunk_name = "scripts/validate.lua";
    r = f.host.run_step(f.in);
    CHECK(r.error == "scripts/validate.lua:3: too few rows: 3");
    CHECK(r.traceback.find("scripts/validate.lua:6: in main chunk") != std::string::npos);
  }
  SECTION("runtime errors from Lua itself") {
    write_file(script, "local t = nil\nreturn { n = t.rows }\n");
    f.in.chunk_name = "scripts/validate.lua";
    CHECK(f.host.run_step(f.in).error == "scripts/validate.lua:2: attempt to index local 't' (a nil value)");
  }
  SECTION("syntax errors") {
    write_file(script, "local x = 1\nreturn { x = }\n");
    f.in.chunk_name = "scripts/validate.lua";
    CHECK(f.host.run_step(f.in).error == "scripts/validate.lua:2: unexpected symbol near '}'");
  }
  SECTION("errors raised by sluice functions carry the caller's line") {
    write_file(script, "\n\nsluice.fs.read('../secret')\n");
    f.in.chunk_name = "scripts/validate.lua";
    CHECK(f.host.run_step(f.in).error ==
          "scripts/validate.lua:3: fs.read: '../secret' is refused: '..' is not allowed in sluice.fs paths");
  }
  SECTION("a missing script") {
    f.in.script_path = f.root / "scripts/nope.lua";
    f.in.chunk_name = "scripts/nope.lua";
    CHECK(f.host.run_step(f.in).error ==
          "scripts/nope.lua: cannot read the script " + (f.root / "scripts/nope.lua") + ": No such file or directory");
  }
  SECTION("an inline step is named lua_inline:STEP") {
    CHECK(f.error_of("\nerror('bad input')") == "lua_inline:check:2: bad input");
  }
}

TEST_CASE("lua_step: an edited script file is compiled again") {
  Fixture f;
  const std::string script = f.root / "s.lua";
  f.in.script_path = script;
  write_file(script, "return { v = 1 }");
  CHECK(f.host.run_step(f.in).values["v"] == "1");
  CHECK(f.host.run_step(f.in).values["v"] == "1");
  write_file(script, "return { v = 'two' }");
  CHECK(f.host.run_step(f.in).values["v"] == "two");
  f.in.script_path.clear();
  f.in.code = "return { v = 3 }";
  CHECK(f.host.run_step(f.in).values["v"] == "3");
  f.in.code = "return { v = 4 }";
  CHECK(f.host.run_step(f.in).values["v"] == "4");
}

TEST_CASE("lua_step: upstream values and fan-in over a matrix step's instances") {
  Fixture f;
  f.in.run.step = "pick";
  f.in.steps["validate"].values = {{"rows", "1200"}, {"ok", "true"}, {"note", "fine"}};
  LuaUpstream& train = f.in.steps["train"];
  train.matrix = true;
  for (auto [lr, auc] : {std::pair{0.05, "0.81"}, {0.1, "0.86"}, {0.2, "0.79"}})
    train.instances.push_back({{{"lr", dsl::Value(lr)}}, {{"auc", auc}, {"model", "model-" + std::to_string(lr)}}});
  auto v = f.values(R"lua(
    assert(ctx.steps.validate.values.rows == 1200 and ctx.steps.validate.values.ok == true)
    assert(ctx.steps.validate.values.note == "fine")
    local best
    for _, inst in ipairs(ctx.steps.train) do
      if not best or inst.values.auc > best.values.auc then best = inst end
    end
    return { n = #ctx.steps.train, lr = best.matrix.lr, auc = best.values.auc, model = best.values.model }
  )lua");
  CHECK(v == std::map<std::string, std::string>{{"n", "3"}, {"lr", "0.1"}, {"auc", "0.86"}, {"model", "model-0.100000"}});
  CHECK(f.value("return { v = tostring(ctx.steps.unknown) }") == "nil");
}

TEST_CASE("lua_step: every escape attempt fails its run with a clear message; the next run works") {
  Fixture f;
  f.in.run.step = "esc";
  f.in.limits.time = 300ms;
  const struct {
    const char* code;
    const char* error;
  } cases[] = {
      {"os.execute('touch /tmp/pwned')", "lua_inline:esc:1: os.execute is not available in the sluice sandbox"},
      {"os.exit(1)", "lua_inline:esc:1: os.exit is not available in the sluice sandbox"},
      {"os.getenv('HOME')", "lua_inline:esc:1: os.getenv is not available in the sluice sandbox"},
      {"io.open('/etc/passwd')", "lua_inline:esc:1: io is not available in the sluice sandbox"},
      {"io.popen('id')", "lua_inline:esc:1: io is not available in the sluice sandbox"},
      {"require('os')", "lua_inline:esc:1: require: module 'os' is not available in the sluice sandbox"},
      {"require('io')", "lua_inline:esc:1: require: module 'io' is not available in the sluice sandbox"},
      {"package.loadlib('libc.so.6', 'system')", "lua_inline:esc:1: package is not available in the sluice sandbox"},
      {"debug.sethook()", "lua_inline:esc:1: debug is not available in the sluice sandbox"},
      {"local f = function() end\nload(string.dump(f))", "lua_inline:esc:2: string.dump is not available in the sluice sandbox"},
      {"loadstring('\\27LJ\\2\\0\\0')", "lua_inline:esc:1: loadstring: bytecode is not allowed in the sluice sandbox (text chunks only)"},
      {"load('\\27LuaQ')", "lua_inline:esc:1: load: bytecode is not allowed in the sluice sandbox (text chunks only)"},
      {"load(function() return nil end, 'x', 'b')", "lua_inline:esc:1: load: mode 'b' is not allowed in the sluice sandbox (text chunks only)"},
      {"require('ffi')", "lua_inline:esc:1: require: module 'ffi' is not available in the sluice sandbox"},
      {"ffi.C.system('id')", "lua_inline:esc:1: ffi is not available in the sluice sandbox"},
      {"jit.on()", "lua_inline:esc:1: jit is not available in the sluice sandbox"},
      {"sluice.fs.read('../../etc/passwd')", "lua_inline:esc:1: fs.read: '../../etc/passwd' is refused: '..' is not allowed in sluice.fs paths"},
      {"sluice.fs.read('/etc/passwd')", "lua_inline:esc:1: fs.read: '/etc/passwd' is refused: it is outside the work dir and the declared inputs"},
      {"sluice.fs.write('/tmp/x', 'y')", "lua_inline:esc:1: fs.write: '/tmp/x' is refused: writing is allowed only inside the work dir"},
      {"dofile('/etc/passwd')", "lua_inline:esc:1: dofile is not available in the sluice sandbox"},
      {"loadfile('/etc/passwd')", "lua_inline:esc:1: loadfile is not available in the sluice sandbox"},
      {"setfenv(1, {})", "lua_inline:esc:1: setfenv is not available in the sluice sandbox"},
      {"getfenv(0)", "lua_inline:esc:1: getfenv is not available in the sluice sandbox"},
      {"collectgarbage('stop')", "lua_inline:esc:1: collectgarbage is not available in the sluice sandbox"},
      {"newproxy(true)", "lua_inline:esc:1: newproxy is not available in the sluice sandbox"},
      {"module('x')", "lua_inline:esc:1: module is not available in the sluice sandbox"},
      {"getmetatable('').__index.upper = nil", "lua_inline:esc:1: attempt to index a boolean value"},
      {"setmetatable(_G, {})", "lua_inline:esc:1: cannot change a protected metatable"},
      {"load('return os.execute')()", "[string \"return os.execute\"]:1: os.execute is not available in the sluice sandbox"},
      // coroutine.wrap prefixes the caller's position again (Lua 5.1 behaviour)
      {"coroutine.wrap(function() return io.open end)()",
       "lua_inline:esc:1: lua_inline:esc:1: io is not available in the sluice sandbox"},
      {"while true do end", "time limit exceeded"},
      {"coroutine.wrap(function() while true do end end)()", "time limit exceeded"},
      {"coroutine.resume(coroutine.create(function() while true do end end))", "time limit exceeded"},
      {"while true do pcall(function() while true do end end) end", "time limit exceeded"},
      {"local t = {} while true do t[#t + 1] = string.rep('x', 4096) .. #t end", "memory limit exceeded"},
      {"local s = 'x' while true do s = s .. s end", "memory limit exceeded"},
  };
  f.in.limits.memory = 64ull << 20;
  for (const auto& c : cases) {
    INFO(c.code);
    CHECK(f.error_of(c.code) == c.error);
    f.still_works();
  }
  CHECK_FALSE(std::filesystem::exists("/tmp/pwned"));
}

TEST_CASE("lua_step: symlinks that lead outside are refused") {
  Fixture f;
  write_file(f.root / "secret.txt", "s3cret");
  std::filesystem::create_symlink(f.root / "secret.txt", f.root / "work/link.txt");
  std::filesystem::create_symlink(f.root.path, f.root / "work/up");
  CHECK(f.error_of("return { v = sluice.fs.read('link.txt') }") ==
        "lua_inline:check:1: fs.read: 'link.txt' is refused: it leads outside the work dir and the declared inputs (through a symlink)");
  CHECK(f.error_of("return { v = sluice.fs.read('up/secret.txt') }") ==
        "lua_inline:check:1: fs.read: 'up/secret.txt' is refused: it leads outside the work dir and the declared inputs (through a symlink)");
  CHECK(f.error_of("sluice.fs.write('up/new.txt', 'x')") ==
        "lua_inline:check:1: fs.write: 'up/new.txt' is refused: it leads outside the work dir (through a symlink)");
  CHECK(f.error_of("sluice.fs.write('link.txt', 'x')") ==
        "lua_inline:check:1: fs.write: 'link.txt' is refused: it is a symlink that leads outside the work dir");
  CHECK(f.error_of("return { v = sluice.fs.exists('up/nothing') }") ==
        "lua_inline:check:1: fs.exists: 'up/nothing' is refused: it leads outside the work dir and the declared inputs (through a symlink)");
  CHECK_FALSE(std::filesystem::exists(f.root / "new.txt"));
  {
    std::ifstream in(f.root / "secret.txt");
    std::string text;
    in >> text;
    CHECK(text == "s3cret");
  }
  // Declared as an input, the same file may be read, through its path or a link to it.
  f.in.inputs["secret"] = f.root / "secret.txt";
  CHECK(f.value("return { v = sluice.fs.read(ctx.inputs.secret) }") == "s3cret");
  CHECK(f.value("return { v = sluice.fs.read('link.txt') }") == "s3cret");
  CHECK(f.error_of("sluice.fs.write(ctx.inputs.secret, 'x')") ==
        "lua_inline:check:1: fs.write: '" + (f.root / "secret.txt") + "' is refused: declared inputs are read-only");
}

TEST_CASE("lua_step: nothing a step does to its globals or libraries reaches the next step") {
  Fixture f;
  CHECK(f.values("leaked = 'yes'; _G.also = 1; ctx.params.x = 1; sluice.extra = 1; return {}").empty());
  CHECK(f.value("return { v = tostring(leaked) .. tostring(also) .. tostring(ctx.params.x) .. tostring(sluice.extra) }") ==
        "nilnilnilnil");
  CHECK(f.values("string.upper = function() return 'pwned' end; table.concat = nil; math.floor = nil; "
                 "sluice.json.encode = nil; sluice.log = nil; os.time = nil; return {}")
            .empty());
  CHECK(f.value("return { v = string.upper('a') .. ('b'):upper() .. table.concat({'c'}) .. math.floor(1.5) .. "
                "sluice.json.encode({1}) .. type(sluice.log.info) .. type(os.time()) }") == "ABc1[1]functionnumber");
  // Within one step the change holds (these are the step's own copies).
  CHECK(f.value("string.upper = function() return 'mine' end; return { v = string.upper('a') }") == "mine");
  CHECK(f.value("pairs = function() return 'mine' end; return { v = pairs() }") == "mine");
  CHECK(f.value("return { v = type(pairs) }") == "function");
  // The base functions are read through the environment's metatable: a step
  // can shadow one, but assigning nil lets the original show through again.
  CHECK(f.value("pairs = nil; return { v = type(pairs) }") == "function");
}

TEST_CASE("lua_step: load and loadstring compile text into the step's sandbox") {
  Fixture f;
  CHECK(f.value("return { v = loadstring('return 1 + 2')() }") == "3");
  CHECK(f.value("x = 5; return { v = load('return x * 2')() }") == "10");
  CHECK(f.value("return { v = load('return y', 'chunk', 't', { y = 7 })() }") == "7");
  CHECK(f.value("local parts = { 'return ', '4', '2' }; local i = 0\n"
                "return { v = load(function() i = i + 1; return parts[i] end)() }") == "42");
  CHECK(f.value("local fn, err = loadstring('return +'); return { v = tostring(fn) .. ' ' .. err }") ==
        "nil [string \"return +\"]:1: unexpected symbol near '+'");
}

TEST_CASE("lua_step: require finds stdlib modules and the plugin's own modules only") {
  Fixture f;
  CHECK(f.value("return { v = require('sluice') == sluice and require('sluice.json') == sluice.json }") == "true");
  CHECK(f.value("return { v = require('sluice.stats').mean({1, 2, 3}) }") == "2");
  CHECK(f.error_of("require('sluice.nope')") == "lua_inline:check:1: require: module 'sluice.nope' is not available in the sluice sandbox");
  CHECK(f.error_of("require('helpers')") == "lua_inline:check:1: require: module 'helpers' is not available in the sluice sandbox");

  f.in.plugin_dir = f.root / "plugin";
  write_file(f.root / "plugin/helpers.lua",
             "local M = {}\nlocal loads = (loads or 0) + 1\nfunction M.double(x) return 2 * x end\n"
             "function M.loads() return loads end\nM.name = ...\nreturn M\n");
  write_file(f.root / "plugin/lib/util.lua", "return { up = function(s) return string.upper(s) end }\n");
  write_file(f.root / "plugin/broken.lua", "local x = \nreturn x\n");
  write_file(f.root / "plugin/loop.lua", "return require('loop')\n");
  write_file(f.root / "outside.lua", "return { pwned = true }\n");
  std::filesystem::create_symlink(f.root / "outside.lua", f.root / "plugin/escape.lua");
  CHECK(f.value("local h = require('helpers'); assert(require('helpers') == h)\n"
                "return { v = h.double(21) .. h.name .. h.loads() }") == "42helpers1");
  CHECK(f.value("return { v = require('lib.util').up('x') }") == "X");
  CHECK(f.error_of("require('broken')") == (f.root / "plugin/broken.lua") + ":2: unexpected symbol near 'return'");
  CHECK(f.error_of("require('loop')").find("require: module 'loop' requires itself (a loop)") != std::string::npos);
  CHECK(f.error_of("require('escape')") == "lua_inline:check:1: require: module 'escape' leads outside the plugin folder");
  CHECK(f.error_of("require('../outside')") ==
        "lua_inline:check:1: require: module '../outside' is not available in the sluice sandbox");
  CHECK(f.error_of("require('/etc/passwd')") ==
        "lua_inline:check:1: require: module '/etc/passwd' is not available in the sluice sandbox");
}

TEST_CASE("lua_step: math.random is seeded from the run id, the step and the matrix bindings") {
  Fixture f;
  const std::string draw = "return { v = math.random(1, 1000000) .. ' ' .. math.random() }";
  const std::string first = f.value(draw);
  CHECK(f.value(draw) == first);  // the same run and step: the same numbers
  CHECK(f.value("math.randomseed(7); return {}").empty());
  CHECK(f.value(draw) == first);  // a step's own reseeding does not carry over
  LuaHost other;
  f.in.code = draw;
  CHECK(other.run_step(f.in).values["v"] == first);  // nor does the host matter
  f.in.run.step = "other";
  CHECK(f.value(draw) != first);
  f.in.run.step = "check";
  f.in.run.id = "20260101-000000-000-ffff";
  CHECK(f.value(draw) != first);
  f.in.run.id = "20260101-000000-000-abcd";
  f.in.matrix = {{"lr", dsl::Value(0.1)}};
  const std::string with_matrix = f.value(draw);
  CHECK(with_matrix != first);
  f.in.matrix = {{"lr", dsl::Value(0.2)}};
  CHECK(f.value(draw) != with_matrix);
}

TEST_CASE("lua_step: log lines, print and metrics are collected") {
  Fixture f;
  std::vector<std::string> live;
  f.in.on_log = [&](const LuaLogLine& l) { live.push_back(l.text); };
  LuaStepResult r = f.run(
      "sluice.log.info('rows', 1200, true, nil)\n"
      "sluice.log.warn('skew', 0.5)\n"
      "print('a', 1)\n"
      "sluice.log.error(setmetatable({}, { __tostring = function() return 'custom' end }))\n"
      "sluice.metric('auc', 0.81)\n"
      "for i = 1, 3 do sluice.metric('loss', 1 / i, i) end\n"
      "return { ok = true }");
  INFO(r.error);
  REQUIRE(r.ok);
  REQUIRE(r.log.size() == 4);
  CHECK(r.log[0].level == LuaLogLine::Level::Info);
  CHECK(r.log[0].text == "rows 1200 true nil");
  CHECK(r.log[1].level == LuaLogLine::Level::Warn);
  CHECK(r.log[1].text == "skew 0.5");
  CHECK(r.log[2].text == "a\t1");
  CHECK(r.log[3].level == LuaLogLine::Level::Error);
  CHECK(r.log[3].text == "custom");
  CHECK(live == std::vector<std::string>{"rows 1200 true nil", "skew 0.5", "a\t1", "custom"});
  REQUIRE(r.metrics.size() == 4);
  CHECK(r.metrics[0].name == "auc");
  CHECK(r.metrics[0].value == 0.81);
  CHECK_FALSE(r.metrics[0].step.has_value());
  CHECK(r.metrics[3].name == "loss");
  CHECK(r.metrics[3].step == 3);
  CHECK(r.metrics[2].value == 0.5);

  // Log lines written before a failure are kept.
  r = f.run("sluice.log.info('before')\nerror('after')");
  CHECK_FALSE(r.ok);
  REQUIRE(r.log.size() == 1);
  CHECK(r.log[0].text == "before");

  CHECK(f.error_of("sluice.metric('has space', 1)") ==
        "lua_inline:check:1: metric: metric name 'has space' contains white space or a control character");
  CHECK(f.error_of("sluice.metric('auc', 'high')") == "lua_inline:check:1: metric: value of 'auc' is a string, not a number");
  CHECK(f.error_of("sluice.metric('auc', 0/0)") == "lua_inline:check:1: metric: value of 'auc' is nan");
  CHECK(f.error_of("sluice.metric('loss', 1, 1.5)") ==
        "lua_inline:check:1: metric: step of 'loss' must be a whole number >= 0, not 1.5");
}

TEST_CASE("lua_step: limits stop a step and leave the host healthy") {
  Fixture f;
  REQUIRE(f.host.exact_memory_limit());
  f.in.limits.time = 200ms;
  auto t0 = std::chrono::steady_clock::now();
  LuaStepResult r = f.run("local function spin() while true do end end\nspin()");
  CHECK(r.error == "time limit exceeded");
  CHECK(r.traceback.find("lua_inline:check:1: in function 'spin'") != std::string::npos);  // where it was spinning
  CHECK(seconds_since(t0) < 1.5);
  f.in.limits = LuaLimits{};
  f.in.limits.memory = 32ull << 20;
  const uint64_t before = f.host.memory_used();
  CHECK(f.error_of("local t = {} for i = 1, 1e9 do t[i] = {i} end") == "memory limit exceeded");
  CHECK(f.error_of("return { v = #string.rep('x', 64 * 1024 * 1024) }") == "memory limit exceeded");
  CHECK(f.host.memory_used() < before + (2u << 20));
  // Garbage is collected before it counts: 200 MB churned through a 32 MB limit.
  CHECK(f.value("for i = 1, 200 do local s = string.rep('y', 1024 * 1024) .. i end return { v = 1 }") == "1");
  f.still_works();
}

TEST_CASE("lua_step: os has time, clock and date only") {
  Fixture f;
  CHECK(f.value("return { v = type(os.time()) .. type(os.clock()) .. os.date('!%Y', 0) }") == "numbernumber1970");
  CHECK(f.value("return { v = os.time({ year = 2024, month = 1, day = 1, hour = 12 }) > 0 }") == "true");
  CHECK(f.value("local n = 0 for k in pairs(os) do n = n + 1 end return { v = n }") == "3");
}

TEST_CASE("lua_step: many hosts in threads do not interfere") {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&ok, t] {
      Fixture f;
      for (int i = 0; i < 200; ++i) {
        f.in.params["i"] = dsl::Value(int64_t{i});
        f.in.code = "x = (x or 0) + 1; return { v = ctx.params.i * " + std::to_string(t + 1) + " + x }";
        LuaStepResult r = f.host.run_step(f.in);
        if (r.ok && r.values["v"] == std::to_string(i * (t + 1) + 1)) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok == 800);
}
