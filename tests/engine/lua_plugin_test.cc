// Lua plugins through the real path: plugin folders on disk, the catalog's
// search path, the handler it makes, and real LuaJIT (the thread's LuaHost).
// TestContext is the host side of ActionContext: it records what the handler
// reports.
#include <stdlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/lua_plugin.h"
#include "engine/plugin_catalog.h"
#include "engine/plugin_check.h"
#include "dsl/parser.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::engine;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using TempDir = sluice::test::ScratchDir;

void write_file(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class TestContext : public ActionContext {
 public:
  std::vector<std::string> lines;
  std::vector<std::pair<std::string, double>> metrics;
  std::atomic<bool> cancel{false};
  LuaHost host;

  void log(std::string_view line) override { lines.emplace_back(line); }
  void metric(const std::string& name, double value, std::optional<int64_t>) override { metrics.emplace_back(name, value); }
  bool cancelled() const override { return cancel.load(); }
  const std::atomic<bool>* cancel_flag() const override { return &cancel; }
  std::optional<std::chrono::milliseconds> time_left() const override { return std::nullopt; }
  LuaHost& lua() override { return host; }
};

const std::string kManifest = R"(
name = "textstats"
version = "1.0.0"
kind = "lua"
[actions.count.params]
path = { type = "string", required = true }
top = { type = "integer", default = 3 }
[actions.echo.params]
x = { type = "any" }
[actions.broken]
[actions.missing]
[actions.spin]
[actions.leak]
[actions.bad_return]
)";

// A plugin folder `<root>/plugins/textstats` and a call for it.
struct PluginFixture {
  TempDir root;
  TestContext ctx;
  ActionCall call;

  explicit PluginFixture(const std::string& init_lua) {
    write_file(root / "plugins/textstats/plugin.toml", kManifest);
    write_file(root / "plugins/textstats/init.lua", init_lua);
    fs::create_directories(root / "work");
    call.run_id = "20260101-000000.000-abcd1234";
    call.node = call.step = "count";
    call.workdir = root / "work";
    call.plugin = "textstats";
  }

  std::shared_ptr<ActionHandler> handler() {
    PluginCatalog catalog({root / "plugins"});
    std::string error;
    std::shared_ptr<ActionHandler> h = catalog.handler("textstats", error);
    INFO(error);
    REQUIRE(h);
    return h;
  }

  ActionResult invoke(const std::string& action, nlohmann::json args = nlohmann::json::object()) {
    call.action = action;
    call.args = std::move(args);
    return handler()->invoke(call, ctx);
  }
};

const std::string kTextstats = R"lua(
local words = require("words")   -- words.lua in the plugin's folder
local actions = {}
function actions.count(ctx, args)
  local text = sluice.fs.read(args.path)
  local n = words.count(text)
  sluice.log.info("counted", n)
  sluice.log.warn("top is", args.top)
  sluice.metric("words", n)
  leaked = "set by count"          -- a global: must not reach the next call
  string.upper = function() return "patched" end  -- nor this call's library copy
  return { words = n, top = args.top, step = ctx.run.step, attempt = ctx.run.attempt }
end
function actions.echo(ctx, args)
  return { x = sluice.json.encode(args.x), type = type(args.x), leaked = tostring(leaked),
           upper = string.upper("a"), param = ctx.params.p, input = ctx.inputs.data, output = ctx.outputs.out }
end
function actions.broken(ctx, args)
  local t = nil
  return { v = t.field }
end
function actions.spin() while true do end end
function actions.leak() local t = {} while true do t[#t + 1] = string.rep("x", 1024) .. #t end end
function actions.bad_return() return "done" end
actions.missing = 42
return actions
)lua";

}  // namespace

TEST_CASE("plugin catalog: the search path is the workflow's plugins, ./plugins, SLUICE_PLUGIN_PATH, then beside the binary") {
  TempDir a, b;
  ::setenv("SLUICE_PLUGIN_PATH", (a.path + "::" + b.path + "/").c_str(), 1);
  std::vector<std::string> path = plugin_search_path("/srv/flows/../flows");
  ::unsetenv("SLUICE_PLUGIN_PATH");
  const std::string exe_dir = fs::canonical("/proc/self/exe").parent_path().string();
  const std::vector<std::string> expected = {"/srv/flows/plugins",
                                             (fs::current_path() / "plugins").string(),
                                             a.path,
                                             b.path,
                                             exe_dir + "/plugins",
                                             fs::path(exe_dir + "/../lib/sluice/plugins").lexically_normal().string()};
  // (Under ctest the current directory is the binary's: one entry less.)
  std::vector<std::string> unique;
  for (const std::string& p : expected)
    if (std::find(unique.begin(), unique.end(), p) == unique.end()) unique.push_back(p);
  CHECK(path == unique);
  // Without a workflow folder, and duplicates dropped.
  std::vector<std::string> plain = plugin_search_path("");
  CHECK(plain.front() == (fs::current_path() / "plugins").string());
  CHECK(plugin_search_path(fs::current_path().string()).size() == plain.size());
}

TEST_CASE("plugin catalog: the first folder holding a name wins, invalid manifests and unknown names are errors") {
  TempDir root;
  const std::string first = root / "first", second = root / "second";
  write_file(first + "/alpha/plugin.toml", "name = \"alpha\"\nversion = \"1.0\"\nkind = \"lua\"\n[actions.run]\n");
  write_file(second + "/alpha/plugin.toml", "name = \"alpha\"\nversion = \"2.0\"\nkind = \"lua\"\n[actions.run]\n");
  write_file(second + "/beta/plugin.toml", "name = \"beta\"\nversion = \"1.0\"\nkind = \"lua\"\nverison = 2\n");
  write_file(second + "/gamma/plugin.toml",
             "name = \"gamma\"\nversion = \"1.0\"\nkind = \"native\"\nlibrary = \"libgamma.so\"\n[actions.run]\n");
  write_file(second + "/Bad Name/plugin.toml", "name = \"x\"\n");
  fs::create_directories(second + "/not_a_plugin");  // no plugin.toml: ignored
  PluginCatalog catalog({first, second, root / "missing"});

  std::string error;
  const dsl::PluginManifest* alpha = catalog.find("alpha", error);
  REQUIRE(alpha);
  CHECK(alpha->version == "1.0");
  CHECK(alpha->dir == first + "/alpha");
  CHECK(catalog.find("alpha", error) == alpha);  // found once, kept

  CHECK_FALSE(catalog.find("beta", error));
  CHECK(error == second + "/beta/plugin.toml:1:1: error: plugin declares no actions: add an [actions.NAME] table\n"
                 "name = \"beta\"\n^\n" +
                 second + "/beta/plugin.toml:4:1: error: unknown key 'verison' in plugin.toml; did you mean 'version'?\n"
                 "verison = 2\n^\n");

  CHECK_FALSE(catalog.find("delta", error));
  CHECK(error == "no plugin 'delta' on the search path: no delta/plugin.toml in " + first + ", " + second + ", " +
                     root.path + "/missing");

  // A dotted name, as `uses = "trainer.xgboost.train"` asks for it.
  write_file(second + "/trainer.xgboost/plugin.toml",
             "name = \"trainer.xgboost\"\nversion = \"1.0\"\nkind = \"lua\"\n[actions.train]\n");
  const dsl::PluginManifest* dotted = catalog.find("trainer.xgboost", error);
  REQUIRE(dotted);
  CHECK(dotted->find("train"));

  // A native plugin whose library does not exist is a source folder: the
  // search goes on, and with nothing further the error says it is not built.
  CHECK_FALSE(catalog.handler("gamma", error));
  CHECK(error.rfind("native plugin 'gamma' is not built: " + second +
                        "/gamma/plugin.toml names a library that does not exist, and no other gamma/plugin.toml is in ",
                    0) == 0);

  std::vector<std::string> problems;
  std::vector<const dsl::PluginManifest*> all = catalog.all(problems);
  std::vector<std::string> names;
  for (const dsl::PluginManifest* m : all) names.push_back(m->name + "@" + m->version);
  CHECK(names == std::vector<std::string>{"alpha@1.0", "trainer.xgboost@1.0"});
  REQUIRE(problems.size() == 3);
  CHECK(problems[0] == second + "/Bad Name: not a plugin folder: 'Bad Name' is not a valid plugin name (use lowercase "
                                "letters, digits, '_' and '-', starting with a letter or digit (dots may join several "
                                "such names))\n");
  CHECK(problems[1].rfind(second + "/beta/plugin.toml:1:1: error: plugin declares no actions", 0) == 0);
  CHECK(problems[2].rfind("native plugin 'gamma' is not built: ", 0) == 0);
}

TEST_CASE("plugin catalog: a built-in wins over a folder of the same name and keeps its handler") {
  struct Fixed : ActionHandler {
    ActionResult invoke(const ActionCall&, ActionContext&) override {
      ActionResult r;
      r.ok = true;
      r.values["from"] = "builtin";
      return r;
    }
  };
  TempDir root;
  write_file(root / "registry/plugin.toml", "name = \"registry\"\nversion = \"9\"\nkind = \"lua\"\n[actions.register]\n");
  PluginCatalog catalog({root.path});
  dsl::PluginManifest m;
  m.name = "registry";
  m.version = "0.1.0";
  m.actions.push_back(dsl::PluginAction{"register", "Registers a model version", {}});
  auto fixed = std::make_shared<Fixed>();
  catalog.add_builtin(m, fixed);
  std::string error;
  const dsl::PluginManifest* found = catalog.find("registry", error);
  REQUIRE(found);
  CHECK(found->kind == dsl::PluginKind::Builtin);
  CHECK(found->path == "<builtin>");
  CHECK(catalog.handler("registry", error) == fixed);
  std::vector<std::string> problems;
  REQUIRE(catalog.all(problems).size() == 1);
  CHECK(problems.empty());
}

TEST_CASE("plugin check: unknown plugins, invalid manifests, unknown actions and bad 'with' point into the workflow") {
  TempDir root;
  write_file(root / "plugins/dataset/plugin.toml",
             "name = \"dataset\"\nversion = \"1.0\"\nkind = \"lua\"\n"
             "[actions.split.params]\ndata = { type = \"string\", required = true }\n");
  write_file(root / "plugins/broken/plugin.toml", "name = \"broken\"\nversion = 1\nkind = \"lua\"\n[actions.x]\n");
  write_file(root / "flow.toml", R"(name = "flow"

[steps.a]
uses = "datset.split"
with = { data = "x.csv" }

[steps.b]
uses = "dataset.splt"

[steps.c]
uses = "dataset.split"
with = { data = 1, seed = 2 }

[steps.d]
uses = "broken.x"

[steps.e]
run = "true"
)");
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::load_workflow(root / "flow.toml", diags);
  REQUIRE(wf);
  CHECK(workflow_dir(*wf) == root.path);
  PluginCatalog catalog({root / "plugins"});
  CHECK_FALSE(check_plugin_steps(*wf, catalog, diags));
  diags.set_source(wf->source);
  const std::string flow = root / "flow.toml";
  CHECK(diags.format_all() ==
        flow + ":4:8: error: unknown plugin 'datset' in step 'a': no datset/plugin.toml in " + root.path +
            "/plugins; did you mean 'dataset'?\n"
            "uses = \"datset.split\"\n"
            "       ^\n" +
            flow + ":8:8: error: plugin 'dataset' has no action 'splt' (step 'b'); did you mean 'split'?\n"
            "uses = \"dataset.splt\"\n"
            "       ^\n" +
            flow + ":12:10: error: param 'data' of 'dataset.split' must be a string, found an integer\n"
            "with = { data = 1, seed = 2 }\n"
            "         ^\n" +
            flow + ":12:20: error: unknown param 'seed' in 'with' of step 'c' for 'dataset.split': it takes 'data'\n"
            "with = { data = 1, seed = 2 }\n"
            "                   ^\n" +
            flow + ":15:8: error: plugin 'broken' in step 'd' has an invalid plugin.toml: " + root.path +
            "/plugins/broken/plugin.toml:2:11: error: 'version' must be a string, found an integer (run 'sluice "
            "plugins broken' for every error)\n"
            "uses = \"broken.x\"\n"
            "       ^\n");
}

TEST_CASE("lua plugin: an action gets ctx and its args, logs, records metrics and returns values") {
  PluginFixture f(kTextstats);
  write_file(f.root / "plugins/textstats/words.lua",
             "local M = {}\nfunction M.count(s) local n = 0 for _ in s:gmatch('%S+') do n = n + 1 end return n end\nreturn M\n");
  write_file(f.root / "work/in.txt", "the quick brown fox\njumps\n");
  f.call.attempt = 2;
  ActionResult r = f.invoke("count", {{"path", "in.txt"}, {"top", 7}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values == std::map<std::string, std::string>{{"words", "5"}, {"top", "7"}, {"step", "count"}, {"attempt", "2"}});
  CHECK(f.ctx.lines == std::vector<std::string>{"info: counted 5", "warn: top is 7"});
  CHECK(f.ctx.metrics == std::vector<std::pair<std::string, double>>{{"words", 5.0}});

  // The next call on the same host: a fresh environment (no leaked global, the
  // real string.upper), and args of every JSON shape arrive as Lua values.
  f.call.params["p"] = dsl::Value(int64_t{3});
  f.call.inputs["data"] = f.root / "in.csv";
  f.call.outputs["out"] = f.root / "work/out.json";
  r = f.invoke("echo", {{"x", {{"list", {1, 2.5, "s", true}}, {"n", nullptr}}}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values == std::map<std::string, std::string>{{"x", "{\"list\":[1,2.5,\"s\",true]}"},
                                                       {"type", "table"},
                                                       {"leaked", "nil"},
                                                       {"upper", "A"},
                                                       {"param", "3"},
                                                       {"input", f.root / "in.csv"},
                                                       {"output", f.root / "work/out.json"}});
}

TEST_CASE("lua plugin: errors fail the call with the plugin's chunk and line, the traceback goes to the log") {
  PluginFixture f(kTextstats);
  write_file(f.root / "plugins/textstats/words.lua", "return {}\n");
  ActionResult r = f.invoke("broken");
  CHECK_FALSE(r.ok);
  CHECK_FALSE(r.timed_out);
  CHECK(r.error == "textstats/init.lua:20: attempt to index local 't' (a nil value)");
  REQUIRE(f.ctx.lines.size() == 2);
  CHECK(f.ctx.lines[0] == "error: textstats/init.lua:20: attempt to index local 't' (a nil value)");
  CHECK(f.ctx.lines[1] ==
        "stack traceback:\n"
        "\ttextstats/init.lua:20: in function <textstats/init.lua:18>");

  CHECK(f.invoke("missing").error ==
        "textstats/init.lua: action 'missing' is not a function in the table init.lua returns (found number)");
  CHECK(f.invoke("bad_return").error == "textstats/init.lua: action 'bad_return' returns a table of values (or nothing), not a string");
  CHECK(f.invoke("nope").error == "plugin 'textstats' has no action 'nope'");

  // A plugin that does not return a table, or does not compile.
  write_file(f.root / "plugins/textstats/init.lua", "return 1\n");
  CHECK(f.invoke("count").error == "textstats/init.lua: a plugin's init.lua returns a table of actions, not a number");
  write_file(f.root / "plugins/textstats/init.lua", "local actions = {\nreturn actions\n");
  CHECK(f.invoke("count").error == "textstats/init.lua:2: unexpected symbol near 'return'");
  fs::remove(f.root / "plugins/textstats/init.lua");
  PluginCatalog catalog({f.root / "plugins"});
  std::string error;
  CHECK_FALSE(catalog.handler("textstats", error));
  CHECK(error == "Lua plugin 'textstats' (" + f.root / "plugins/textstats/plugin.toml" + ") has no readable init.lua in " +
                     f.root / "plugins/textstats");
}

TEST_CASE("lua plugin: time, memory and cancellation stop an action and leave the host usable") {
  PluginFixture f(kTextstats);
  write_file(f.root / "plugins/textstats/words.lua",
             "return { count = function(s) local n = 0 for _ in s:gmatch('%S+') do n = n + 1 end return n end }\n");
  write_file(f.root / "work/in.txt", "a b");

  f.call.timeout = 200ms;  // the step's timeout is the limit
  ActionResult r = f.invoke("spin");
  CHECK_FALSE(r.ok);
  CHECK(r.timed_out);
  CHECK(r.error == "time limit exceeded");

  f.call.timeout = 60s;
  f.call.memory = 32ull << 20;
  r = f.invoke("leak");
  CHECK_FALSE(r.timed_out);
  CHECK(r.error == "memory limit exceeded");

  f.ctx.cancel = true;
  r = f.invoke("spin");
  CHECK(r.cancelled);
  CHECK_FALSE(r.timed_out);
  CHECK(r.error == "cancelled");
  f.ctx.cancel = false;

  r = f.invoke("count", {{"path", "in.txt"}, {"top", 1}});
  INFO(r.error);
  CHECK(r.ok);
  CHECK(r.values["words"] == "2");
}

// --- the sample plugin, samples/plugins/dataset ---

namespace {

struct Dataset {
  TempDir root;
  TestContext ctx;
  PluginCatalog catalog{{std::string(SLUICE_SOURCE_DIR) + "/samples/plugins"}};
  ActionCall call;

  Dataset() {
    fs::create_directories(root / "work");
    call.run_id = "20260101-000000.000-abcd1234";
    call.node = call.step = "data";
    call.workdir = root / "work";
    call.plugin = "dataset";
  }

  // Runs `action` with `with` as a workflow would give it: checked and
  // completed against plugin.toml (dsl::resolve_action_args), then as JSON.
  ActionResult run(const std::string& action, const dsl::ValueTable& with) {
    std::string error;
    const dsl::PluginManifest* m = catalog.find("dataset", error);
    INFO(error);
    REQUIRE(m);
    dsl::ValueTable args;
    REQUIRE(dsl::resolve_action_args(*m, *m->find(action), with, args, error));
    call.action = action;
    call.args = nlohmann::json::parse(dsl::Value(args).to_json());
    std::shared_ptr<ActionHandler> h = catalog.handler("dataset", error);
    REQUIRE(h);
    return h->invoke(call, ctx);
  }
};

// 200 rows: id, age (every 10th empty), income, segment (a/b/c), label (1 in 4).
std::string customers_csv() {
  std::string csv = "id,age,income,segment,label\n";
  for (int i = 1; i <= 200; ++i) {
    std::string age = i % 10 == 0 ? "" : std::to_string(18 + (i * 7) % 60);
    csv += std::to_string(i) + "," + age + "," + std::to_string(1000 + i * 13 % 500) + "," +
           std::string(1, static_cast<char>('a' + i % 3)) + "," + (i % 4 == 0 ? "1" : "0") + "\n";
  }
  return csv;
}

std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::string field;
    std::istringstream ls(line);
    while (std::getline(ls, field, ',')) fields.push_back(field);
    if (!line.empty() && line.back() == ',') fields.push_back("");
    rows.push_back(fields);
  }
  return rows;
}

}  // namespace

TEST_CASE("sample plugin dataset: profile reports types, null rates and numeric summaries") {
  Dataset d;
  write_file(d.root / "work/customers.csv", customers_csv());
  d.call.outputs["report"] = d.root / "work/profile.json";
  ActionResult r = d.run("profile", {{"data", dsl::Value("customers.csv")}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values == std::map<std::string, std::string>{
                        {"rows", "200"}, {"columns", "5"}, {"max_null_rate", "0.1"}, {"worst_column", "age"}});
  CHECK(d.ctx.metrics == std::vector<std::pair<std::string, double>>{{"rows", 200.0}});

  // The numbers, computed here from the same rows.
  double sum = 0, mn = 1e9, mx = -1e9;
  int n = 0;
  for (int i = 1; i <= 200; ++i) {
    if (i % 10 == 0) continue;
    const double age = 18 + (i * 7) % 60;
    sum += age;
    mn = std::min(mn, age);
    mx = std::max(mx, age);
    ++n;
  }
  nlohmann::json report = nlohmann::json::parse(read_file(d.root / "work/profile.json"));
  CHECK(report["rows"] == 200);
  const nlohmann::json& age = report["columns"][1];
  CHECK(age["name"] == "age");
  CHECK(age["type"] == "number");
  CHECK(age["nulls"] == 20);
  CHECK(age["null_rate"] == 0.1);
  CHECK(age["min"] == mn);
  CHECK(age["max"] == mx);
  CHECK(age["mean"].get<double>() == Approx(sum / n).epsilon(1e-12));
  const nlohmann::json& segment = report["columns"][3];
  CHECK(segment["type"] == "string");
  CHECK(segment["distinct"] == 3);
  // a: i % 3 == 0 (66 rows), b: 67, c: 67; ties by value.
  CHECK(segment["top"] == nlohmann::json::parse(R"([{"count":67,"value":"b"},{"count":67,"value":"c"},{"count":66,"value":"a"}])"));
  CHECK(report["columns"][4]["type"] == "number");
  REQUIRE(d.ctx.lines.size() == 5);
  CHECK(d.ctx.lines[1] == "info: age              number   nulls  10.0%  distinct 54");
}

TEST_CASE("sample plugin dataset: split keeps every row once, stratifies, and repeats for a seed") {
  Dataset d;
  const std::string csv = customers_csv();
  write_file(d.root / "work/customers.csv", csv);
  d.call.outputs["train"] = d.root / "work/train.csv";
  d.call.outputs["test"] = d.root / "work/test.csv";
  ActionResult r = d.run("split", {{"data", dsl::Value("customers.csv")}, {"stratify", dsl::Value("label")}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values == std::map<std::string, std::string>{{"train_rows", "160"}, {"test_rows", "40"}, {"strata", "2"}});
  const std::string train = read_file(d.root / "work/train.csv"), test = read_file(d.root / "work/test.csv");
  auto train_rows = csv_rows(train), test_rows = csv_rows(test), all_rows = csv_rows(csv);
  REQUIRE(train_rows.size() == 161);
  REQUIRE(test_rows.size() == 41);
  CHECK(train_rows[0] == all_rows[0]);  // the header
  CHECK(test_rows[0] == all_rows[0]);
  std::set<std::string> ids;
  int test_positive = 0;
  for (size_t i = 1; i < test_rows.size(); ++i) {
    ids.insert(test_rows[i][0]);
    test_positive += test_rows[i][4] == "1";
  }
  for (size_t i = 1; i < train_rows.size(); ++i) ids.insert(train_rows[i][0]);
  CHECK(ids.size() == 200);       // each row in exactly one set
  CHECK(test_positive == 10);     // 50 positives * 0.2: the label's share is kept
  CHECK(std::stoi(train_rows[1][0]) < std::stoi(train_rows[2][0]));  // file order kept

  // The same seed splits the same way; another seed does not.
  CHECK(d.run("split", {{"data", dsl::Value("customers.csv")}, {"stratify", dsl::Value("label")}}).ok);
  CHECK(read_file(d.root / "work/test.csv") == test);
  CHECK(d.run("split", {{"data", dsl::Value("customers.csv")}, {"stratify", dsl::Value("label")},
                        {"seed", dsl::Value(int64_t{7})}})
            .ok);
  CHECK(read_file(d.root / "work/test.csv") != test);

  // Mistakes fail the step with a message naming them.
  CHECK(d.run("split", {{"data", dsl::Value("customers.csv")}, {"stratify", dsl::Value("lable")}}).error ==
        "dataset.split: stratify column 'lable' is not in customers.csv");
  CHECK(d.run("split", {{"data", dsl::Value("customers.csv")}, {"test_fraction", dsl::Value(1.5)}}).error ==
        "dataset.split: test_fraction must be between 0 and 1, not 1.5");
  d.call.outputs.erase("test");
  CHECK(d.run("split", {{"data", dsl::Value("customers.csv")}}).error ==
        "dataset.split: declare the outputs 'train' and 'test' in the step, e.g. outputs = { train = \"train.csv\", "
        "test = \"test.csv\" }");
}

TEST_CASE("sample plugin dataset: check passes a good file and lists every failed check of a bad one") {
  Dataset d;
  write_file(d.root / "work/customers.csv", customers_csv());
  const dsl::ValueTable columns = {{"id", dsl::Value("integer")}, {"age", dsl::Value("number")}, {"label", dsl::Value("integer")}};
  ActionResult ok = d.run("check", {{"data", dsl::Value("customers.csv")},
                                    {"columns", dsl::Value(columns)},
                                    {"unique", dsl::Value(dsl::ValueArray{dsl::Value("id")})},
                                    {"max_null_rate", dsl::Value(0.1)},
                                    {"min_rows", dsl::Value(int64_t{100})}});
  INFO(ok.error);
  CHECK(ok.ok);
  CHECK(ok.values == std::map<std::string, std::string>{{"rows", "200"}, {"ok", "true"}});

  ActionResult bad = d.run(
      "check", {{"data", dsl::Value("customers.csv")},
                {"columns", dsl::Value(dsl::ValueTable{{"churn", dsl::Value("integer")}})},
                {"range", dsl::Value(dsl::ValueTable{{"age", dsl::Value(dsl::ValueArray{dsl::Value(int64_t{18}), dsl::Value(int64_t{70})})}})},
                {"allowed", dsl::Value(dsl::ValueTable{{"segment", dsl::Value(dsl::ValueArray{dsl::Value("a"), dsl::Value("b")})}})},
                {"max_null_rate", dsl::Value(dsl::ValueTable{{"age", dsl::Value(0.05)}})},
                {"min_rows", dsl::Value(int64_t{500})}});
  CHECK_FALSE(bad.ok);
  CHECK(bad.error ==
        "dataset/init.lua:73: check.csv: customers.csv: 5 checks failed: missing column 'churn'; "
        "column 'age': 23 values outside [18, 70] (first: '74' in row 8); column 'age': null rate 0.1 (20 of 200 rows) is above 0.05; "
        "column 'segment': 67 values not allowed (first: 'c' in row 2); allowed: 'a', 'b'; 200 rows, fewer than min_rows = 500");
}
