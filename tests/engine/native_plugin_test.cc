// Native plugins through the real path: dlopen of libraries built from
// tests/plugins/, actions run in `sluice __plugin-worker` processes (the
// built sluice binary) or in-process. The crashy plugin misbehaves on request.
#include <atomic>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>

#include "engine/native_plugin.h"
#include "support/plugin_manifest_reader.h"
#include "support/temp_dir.h"
#include "support/test_action_context.h"

using namespace std::chrono_literals;
using sluice::engine::ActionCall;
using sluice::engine::ActionResult;
using sluice::test::ScratchDir;
using sluice::test::TestActionContext;

namespace {

const std::string kPlugins = SLUICE_TEST_PLUGINS;  // build/tests/plugins

sluice::dsl::PluginManifest manifest_of(const std::string& name, bool isolate = true) {
  sluice::engine::set_plugin_worker_path(SLUICE_BIN);
  auto m = sluice::test::read_test_manifest(kPlugins + "/" + name).manifest;
  m.isolate = isolate;
  return m;
}

std::shared_ptr<sluice::engine::ActionHandler> load(const sluice::dsl::PluginManifest& m) {
  std::string error;
  auto h = sluice::engine::make_native_plugin_handler(m, error);
  INFO(error);
  REQUIRE(h);
  CHECK(error.empty());
  return h;
}

std::string load_error(const sluice::dsl::PluginManifest& m) {
  std::string error;
  auto h = sluice::engine::make_native_plugin_handler(m, error);
  CHECK(!h);
  return error;
}

ActionCall call_of(const ScratchDir& dir, const std::string& action, nlohmann::json args = nlohmann::json::object()) {
  ActionCall c;
  c.plugin = "crashy";
  c.action = action;
  c.args = std::move(args);
  c.workdir = dir.path;
  c.outputs = {{"out", dir / "out.txt"}};
  return c;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool contains(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

}  // namespace

TEST_CASE("native plugins: a well-behaved action reports logs, metrics, values and outputs") {
  for (bool isolate : {true, false}) {
    INFO("isolate = " << isolate);
    ScratchDir dir;
    auto handler = load(manifest_of("crashy", isolate));
    TestActionContext ctx;
    ActionCall call = call_of(dir, "ok", {{"word", "hi"}});
    call.inputs = {{"data", dir / "in.csv"}};
    ActionResult r = handler->invoke(call, ctx);
    INFO(r.error);
    REQUIRE(r.ok);
    CHECK(r.error.empty());
    const std::map<std::string, std::string> want = {
        {"via_callback", "yes"}, {"overridden", "by result"}, {"workdir", dir.path}, {"has_input", "true"},
        {"n", "42"},             {"x", "0.5"},                {"b", "true"}};
    CHECK(r.values == want);
    CHECK(ctx.metrics == std::vector<TestActionContext::Metric>{{"loss", 0.25, 3}, {"auc", 0.5, std::nullopt}});
    // Log callbacks arrive in order, one line each; warnings say so.
    std::vector<std::string> callbacks;
    for (const auto& l : ctx.logs)
      if (l != "printed to stdout") callbacks.push_back(l);
    CHECK(callbacks == std::vector<std::string>{"hello from crashy", "warning: two", "warning: lines"});
    // A worker's stdout reaches the step's log too (in-process it is the engine's).
    CHECK(contains(ctx.logs, "printed to stdout") == isolate);
    CHECK(slurp(dir / "out.txt") == "{\"word\":\"hi\"}\n");
  }
}

TEST_CASE("native plugins: a crash fails only its step and the handler still works") {
  ScratchDir dir;
  auto handler = load(manifest_of("crashy"));
  TestActionContext ctx;
  ActionResult r = handler->invoke(call_of(dir, "segv"), ctx);
  CHECK(!r.ok);
  CHECK(!r.timed_out);
  CHECK(r.error == "plugin crashed: SIGSEGV");

  r = handler->invoke(call_of(dir, "abort"), ctx);
  CHECK(!r.ok);
  CHECK(r.error == "plugin crashed: SIGABRT");

  r = handler->invoke(call_of(dir, "exit"), ctx);
  CHECK(!r.ok);
  CHECK(r.error == "plugin exited with status 7 before its action returned");

  r = handler->invoke(call_of(dir, "ok"), ctx);
  INFO(r.error);
  CHECK(r.ok);
  CHECK(r.values.at("via_callback") == "yes");
}

TEST_CASE("native plugins: an endless loop is stopped by the step's timeout") {
  ScratchDir dir;
  auto handler = load(manifest_of("crashy"));
  ActionCall call = call_of(dir, "spin");
  call.timeout = 1s;
  TestActionContext ctx(call.timeout);
  ActionResult r = handler->invoke(call, ctx);
  CHECK(!r.ok);
  CHECK(r.timed_out);
  CHECK(!r.cancelled);
  CHECK(r.error == "timed out after 1s");

  TestActionContext later;
  r = handler->invoke(call_of(dir, "ok"), later);
  CHECK(r.ok);
}

TEST_CASE("native plugins: runaway allocation is stopped by the memory limit") {
  ScratchDir dir;
  auto handler = load(manifest_of("crashy"));
  ActionCall call = call_of(dir, "hog");
  call.memory = 256ull << 20;
  call.timeout = 60s;  // never reached: the limit stops it first
  TestActionContext ctx(call.timeout);
  ActionResult r = handler->invoke(call, ctx);
  CHECK(!r.ok);
  CHECK(!r.timed_out);
  INFO(r.error);
  CHECK(std::regex_match(r.error, std::regex(R"(plugin crashed: SIGSEGV \(peak memory (2[3-9]\d)M of its 256M limit\))")));

  TestActionContext later;
  r = handler->invoke(call_of(dir, "ok"), later);
  CHECK(r.ok);
}

TEST_CASE("native plugins: cancellation stops an action, isolated or in-process") {
  for (bool isolate : {true, false}) {
    INFO("isolate = " << isolate);
    ScratchDir dir;
    auto handler = load(manifest_of("crashy", isolate));
    TestActionContext ctx;
    std::atomic<bool> started{false};
    std::thread canceller([&] {
      while (!started) std::this_thread::sleep_for(1ms);
      std::this_thread::sleep_for(200ms);
      ctx.cancel();
    });
    started = true;
    ActionResult r = handler->invoke(call_of(dir, "spin_politely"), ctx);
    canceller.join();
    CHECK(!r.ok);
    CHECK(r.cancelled);
    CHECK(!r.timed_out);
    CHECK(r.error == "cancelled");
    CHECK(contains(ctx.logs, "stopping as asked"));
  }
}

TEST_CASE("native plugins: cancelling a plugin that never asks kills its worker") {
  ScratchDir dir;
  auto handler = load(manifest_of("crashy"));
  TestActionContext ctx;
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    ctx.cancel();
  });
  ActionResult r = handler->invoke(call_of(dir, "spin"), ctx);
  canceller.join();
  CHECK(r.cancelled);
  CHECK(r.error == "cancelled");
}

TEST_CASE("native plugins: what a worker leaves running is killed with it") {
  ScratchDir dir;
  auto handler = load(manifest_of("crashy"));
  TestActionContext ctx;
  ActionResult r = handler->invoke(call_of(dir, "orphan"), ctx);
  REQUIRE(r.ok);
  const std::string pid = slurp(dir / "out.txt").substr(0, slurp(dir / "out.txt").find('\n'));
  REQUIRE(!pid.empty());
  // Gone, or a zombie waiting for whoever adopted it: either way not running.
  auto running = [&] {
    std::ifstream stat("/proc/" + pid + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const size_t paren = line.rfind(')');
    return paren != std::string::npos && line.size() > paren + 2 && line[paren + 2] != 'Z';
  };
  for (int i = 0; i < 500 && running(); ++i) std::this_thread::sleep_for(10ms);
  CHECK(!running());
}

TEST_CASE("native plugins: in-process actions time out cooperatively") {
  ScratchDir dir;
  auto handler = load(manifest_of("crashy", false));
  ActionCall call = call_of(dir, "spin_politely");
  call.timeout = 300ms;
  TestActionContext ctx(call.timeout);
  ActionResult r = handler->invoke(call, ctx);
  CHECK(r.timed_out);
  CHECK(r.error == "timed out after 300ms");
}

TEST_CASE("native plugins: failure statuses and bad values become step errors") {
  for (bool isolate : {true, false}) {
    INFO("isolate = " << isolate);
    ScratchDir dir;
    auto handler = load(manifest_of("crashy", isolate));
    TestActionContext ctx;
    CHECK(handler->invoke(call_of(dir, "fail"), ctx).error == "disk full");
    CHECK(handler->invoke(call_of(dir, "bad_args"), ctx).error == "bad arguments: 'n' must be positive");
    CHECK(handler->invoke(call_of(dir, "bad_values"), ctx).error ==
          "the plugin returned values that are not a JSON object");
    CHECK(handler->invoke(call_of(dir, "nope"), ctx).error == "plugin 'crashy' has no action 'nope'");
  }
}

TEST_CASE("native plugins: isolated actions run side by side") {
  ScratchDir dir;
  auto handler = load(manifest_of("crashy"));
  std::vector<ActionResult> results(6);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      ScratchDir own;
      TestActionContext ctx;
      results[i] = handler->invoke(call_of(own, i % 2 ? "segv" : "ok"), ctx);
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < results.size(); ++i) {
    INFO(i << ": " << results[i].error);
    if (i % 2) CHECK(results[i].error == "plugin crashed: SIGSEGV");
    else CHECK(results[i].ok);
  }
}

TEST_CASE("native plugins: libraries that do not fit are refused with their path") {
  for (bool isolate : {true, false}) {
    INFO("isolate = " << isolate);
    auto bad = manifest_of("badabi", isolate);
    CHECK(load_error(bad) == bad.library + ": built for plugin ABI 2, this sluice speaks ABI 1 (rebuild it against this sluice's SDK)");

    auto nosym = manifest_of("nosymbol", isolate);
    CHECK(load_error(nosym) == nosym.library + ": no entry symbol 'sluice_plugin_entry' (is it a sluice plugin?)");

    auto missing = manifest_of("crashy", isolate);
    missing.library = kPlugins + "/crashy/libmissing.so";
    CHECK(load_error(missing) == missing.library + ": cannot load: cannot open shared object file: No such file or directory");

    auto notlib = manifest_of("crashy", isolate);
    notlib.library = kPlugins + "/crashy/plugin.toml";
    CHECK(load_error(notlib) == notlib.library + ": cannot load: invalid ELF header");

    auto renamed = manifest_of("crashy", isolate);
    renamed.name = "crashier";
    CHECK(load_error(renamed) ==
          renamed.library + ": the library is plugin 'crashy', " + renamed.path + " says 'crashier'");

    auto version = manifest_of("crashy", isolate);
    version.version = "0.4.0";
    CHECK(load_error(version) == version.library + ": the library is version 0.3.0, " + version.path + " says 0.4.0");

    auto actions = manifest_of("crashy", isolate);
    actions.actions.erase(actions.actions.begin());  // "abort"
    sluice::dsl::PluginAction extra;
    extra.name = "zap";
    actions.actions.push_back(extra);
    CHECK(load_error(actions) == actions.library +
                                     ": the library's actions (abort, bad_args, bad_values, exit, fail, hog, ok, orphan, "
                                     "segv, spin, spin_politely) differ from " +
                                     actions.path + "'s (bad_args, bad_values, exit, fail, hog, ok, orphan, segv, "
                                                    "spin, spin_politely, zap)");
  }
  auto lua = manifest_of("crashy");
  lua.kind = sluice::dsl::PluginKind::Lua;
  CHECK(load_error(lua) == lua.path + ": plugin 'crashy' is not a native plugin");
  auto nolib = manifest_of("crashy");
  nolib.library.clear();
  CHECK(load_error(nolib) == nolib.path + ": a native plugin needs library = \"<file>\"");
}
