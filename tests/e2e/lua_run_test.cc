// End-to-end: Lua steps (`lua`, `lua_inline`) run by the built binary — the
// sandbox holds per step while the engine carries on, values and metrics flow
// both ways between Lua and shell steps, fan-in, cancellation.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

// `sluice show --json` of the only run in `dir`.
nlohmann::json only_run(const TempDir& dir) {
  auto runs = run_sluice({"runs", "--json"}, dir.path());
  REQUIRE(runs.status == 0);
  auto list = nlohmann::json::parse(runs.out)["runs"];
  REQUIRE(list.size() == 1);
  auto show = run_sluice({"show", "--json", list[0]["id"].get<std::string>()}, dir.path());
  REQUIRE(show.status == 0);
  return nlohmann::json::parse(show.out);
}

std::map<std::string, nlohmann::json> steps_by_node(const nlohmann::json& run) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& s : run["steps"]) out[s["node"].get<std::string>()] = s;
  return out;
}

}  // namespace

TEST_CASE("lua: every escape attempt fails its own step with a clear message and the engine carries on") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "escapes"
[steps.os_execute]
lua_inline = 'os.execute("touch pwned")'
[steps.io_open]
lua_inline = 'io.open("/etc/passwd")'
[steps.require_os]
lua_inline = 'require("os")'
[steps.package_loadlib]
lua_inline = 'package.loadlib("libc.so.6", "system")'
[steps.debug_sethook]
lua_inline = 'debug.sethook()'
[steps.string_dump]
lua_inline = 'load(string.dump(function() end))'
[steps.bytecode]
lua_inline = 'assert(loadstring("\27LJ\2\0"))'
[steps.require_ffi]
lua_inline = 'require("ffi")'
[steps.fs_dotdot]
lua_inline = 'sluice.fs.read("../x")'
[steps.fs_absolute]
lua_inline = 'sluice.fs.read("/etc/passwd")'
[steps.spin]
lua_inline = 'while true do end'
timeout = "300ms"
[steps.spin_coroutine]
lua_inline = 'coroutine.wrap(function() while true do end end)()'
timeout = "300ms"
[steps.alloc]
lua_inline = 'local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep("x", 1000) .. i end'
resources = { memory = "32M" }
[steps.patch]
lua_inline = 'leaked = 42; string.upper = function() return "patched" end; return { set = true }'
[steps.probe]
lua_inline = 'return { leaked = tostring(leaked), upper = string.upper("a") }'
needs = ["patch"]
)");
  // -j1: every step runs on the same worker thread and so the same LuaHost.
  auto r = run_sluice({"run", "-j", "1", "--keep-going", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  CHECK_FALSE(dir.exists("pwned"));
  auto steps = steps_by_node(only_run(dir));
  const std::map<std::string, std::string> expected = {
      {"os_execute", "lua_inline:os_execute:1: os.execute is not available in the sluice sandbox"},
      {"io_open", "lua_inline:io_open:1: io is not available in the sluice sandbox"},
      {"require_os", "lua_inline:require_os:1: require: module 'os' is not available in the sluice sandbox"},
      {"package_loadlib", "lua_inline:package_loadlib:1: package is not available in the sluice sandbox"},
      {"debug_sethook", "lua_inline:debug_sethook:1: debug is not available in the sluice sandbox"},
      {"string_dump", "lua_inline:string_dump:1: string.dump is not available in the sluice sandbox"},
      {"bytecode", "lua_inline:bytecode:1: loadstring: bytecode is not allowed in the sluice sandbox (text chunks only)"},
      {"require_ffi", "lua_inline:require_ffi:1: require: module 'ffi' is not available in the sluice sandbox"},
      {"fs_dotdot", "lua_inline:fs_dotdot:1: fs.read: '../x' is refused: '..' is not allowed in sluice.fs paths"},
      {"fs_absolute",
       "lua_inline:fs_absolute:1: fs.read: '/etc/passwd' is refused: it is outside the work dir and the declared inputs"},
      {"spin", "time limit exceeded"},
      {"spin_coroutine", "time limit exceeded"},
      {"alloc", "memory limit exceeded"},
  };
  for (const auto& [node, error] : expected) {
    INFO(node);
    CHECK(steps[node]["status"] == "failed");
    CHECK(steps[node]["error"] == error);
  }
  // The host that ran all of that still works, and nothing one step did to
  // its globals or library tables is seen by the next.
  CHECK(steps["patch"]["status"] == "succeeded");
  CHECK(steps["probe"]["status"] == "succeeded");
  CHECK(steps["probe"]["values"]["leaked"] == "nil");
  CHECK(steps["probe"]["values"]["upper"] == "A");
}

TEST_CASE("lua: values and metrics flow between shell and Lua steps") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "flow"
[params]
min_rows = 3
[steps.count]
run = "echo rows=5 >> $SLUICE_VALUES"
[steps.check]
lua_inline = '''
sluice.metric("rows_seen", ctx.steps.count.values.rows)
return { ok = ctx.steps.count.values.rows >= ctx.params.min_rows, doubled = ctx.steps.count.values.rows * 2 }
'''
needs = ["count"]
[steps.report]
run = "echo ok=${steps.check.values.ok} doubled=${steps.check.values.doubled} > ${outputs.txt}"
outputs = { txt = "report.txt" }
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  auto steps = steps_by_node(only_run(dir));
  CHECK(steps["check"]["values"] == nlohmann::json({{"ok", "true"}, {"doubled", "10"}}));
  REQUIRE(steps["check"]["metrics"].size() == 1);
  CHECK(steps["check"]["metrics"][0]["name"] == "rows_seen");
  CHECK(steps["check"]["metrics"][0]["value"] == 5);
  std::string workdir = fs::path(steps["report"]["attempts"][0]["log_path"].get<std::string>()).parent_path().string();
  CHECK(read_file(workdir + "/report.txt") == "ok=true doubled=10\n");
}

TEST_CASE("lua: a fan-in step sees every instance of a matrix step and writes its declared output") {
  TempDir dir;
  dir.write("scripts/pick.lua", R"(local best
for _, inst in ipairs(ctx.steps.train) do
  if not best or inst.values.auc > best.values.auc then best = inst end
end
sluice.log.info("best lr", best.matrix.lr, "auc", best.values.auc)
sluice.fs.write(ctx.outputs.choice, sluice.json.encode({ lr = best.matrix.lr }))
return { lr = best.matrix.lr, auc = best.values.auc, n = #ctx.steps.train }
)");
  dir.write("wf.toml", R"(name = "sweep"
[steps.train]
run = "echo auc=$(echo '${matrix.lr}' | sed 's/0.05/0.71/; s/0.1/0.83/; s/0.2/0.77/') >> $SLUICE_VALUES"
matrix = { lr = [0.05, 0.1, 0.2] }
[steps.pick]
lua = "scripts/pick.lua"
needs = ["train"]
outputs = { choice = "choice.json" }
)");
  auto r = run_sluice({"run", "-v", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("[pick] info: best lr 0.1 auc 0.83\n") != std::string::npos);  // -v streams the Lua log
  auto steps = steps_by_node(only_run(dir));
  CHECK(steps["pick"]["values"] == nlohmann::json({{"lr", "0.1"}, {"auc", "0.83"}, {"n", "3"}}));
  std::string workdir = fs::path(steps["pick"]["attempts"][0]["log_path"].get<std::string>()).parent_path().string();
  CHECK(read_file(workdir + "/choice.json") == R"({"lr":0.1})");
}

TEST_CASE("lua: a script error fails the step with path:line and keeps the traceback in the log") {
  TempDir dir;
  dir.write("scripts/validate.lua", "local function check(n)\n  error(\"too few rows: \" .. n)\nend\ncheck(3)\n");
  dir.write("wf.toml", R"(name = "bad"
[steps.validate]
lua = "scripts/validate.lua"
[steps.never]
run = "true"
needs = ["validate"]
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  CHECK(r.status == 1);
  CHECK(r.out.find("FAILED validate: scripts/validate.lua:2: too few rows: 3\n") != std::string::npos);
  auto steps = steps_by_node(only_run(dir));
  CHECK(steps["never"]["status"] == "skipped");
  std::string log = read_file(steps["validate"]["attempts"][0]["log_path"].get<std::string>());
  CHECK(log ==
        "error: scripts/validate.lua:2: too few rows: 3\nstack traceback:\n\t[C]: in function 'error'\n"
        "\tscripts/validate.lua:2: in function 'check'\n\tscripts/validate.lua:4: in main chunk\n");
}

TEST_CASE("lua: a declared output the script did not write fails the step") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "out"
[steps.make]
lua_inline = 'return { done = true }'
outputs = { model = "model.json" }
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  CHECK(r.status == 1);
  CHECK(r.out.find("FAILED make: missing output 'model': model.json was not created") != std::string::npos);
}

TEST_CASE("lua: fail-fast cancels a running Lua step, and SIGINT stops one with exit 130") {
  SECTION("fail-fast") {
    TempDir dir;
    dir.write("wf.toml", R"(name = "ff"
[steps.spin]
lua_inline = 'while true do end'
timeout = "10m"
[steps.fail]
run = "sleep 0.2; exit 3"
)");
    auto r = run_sluice({"run", "-j", "2", "wf.toml"}, dir.path(), {}, 60);
    INFO(r.out << r.err);
    CHECK(r.status == 1);
    auto steps = steps_by_node(only_run(dir));
    CHECK(steps["fail"]["status"] == "failed");
    CHECK(steps["spin"]["status"] == "cancelled");
  }
  SECTION("SIGINT") {
    TempDir dir;
    dir.write("wf.toml", R"(name = "int"
[steps.spin]
lua_inline = 'sluice.fs.write("started", "1") while true do end'
timeout = "10m"
)");
    int pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err");
    bool started = false;
    for (int i = 0; i < 1000 && !started; ++i) {
      if (fs::exists(dir / ".sluice/runs"))
        for (const auto& e : fs::directory_iterator(dir / ".sluice/runs"))
          if (fs::exists(e.path() / "spin/started")) started = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(started);
    kill(pid, SIGINT);
    int status = wait_sluice(pid, 30);
    INFO(read_file(dir / "out") << read_file(dir / "err"));
    CHECK(status == 130);
    CHECK(read_file(dir / "out").find("1 steps: 1 cancelled") != std::string::npos);
  }
}
