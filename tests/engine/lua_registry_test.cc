// sluice.registry in Lua steps, on a real store in a scratch home.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "engine/lua_host.h"
#include "registry/model_registry.h"
#include "registry/sqlite_store.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::engine;
namespace reg = sluice::registry;

namespace {

constexpr const char* kRun = "20261127-000000.000-00001234";

struct Fixture {
  LuaHost host;
  test::ScratchDir root;
  std::string home = root.path;
  LuaStepInput in;

  Fixture() {
    auto store = reg::open_sqlite_store(home + "/sluice.db");
    store->apply({reg::PutWorkflow{.name = "wf", .digest = "d", .source = "", .at = 1},
                  reg::CreateRun{.id = kRun, .workflow_name = "wf", .workflow_digest = "d",
                                 .params_json = R"({"depth":4})", .at = 1},
                  reg::SetStepStatus{.run_id = kRun, .node = "fit", .step = "fit", .status = reg::StepStatus::Running,
                                     .at = 2}});
    in.workdir = home + "/runs/" + kRun + "/fit";
    std::filesystem::create_directories(in.workdir);
    in.run = {kRun, "fit", 1};
    in.home = home;
    in.outputs = {{"model", in.workdir + "/model.txt"}};
  }

  LuaStepResult run(const std::string& code) {
    in.code = code;
    LuaStepResult r = host.run_step(in);
    return r;
  }
};

}  // namespace

TEST_CASE("lua registry: a step registers its own output and reads versions back") {
  Fixture f;
  LuaStepResult r = f.run(R"(
    sluice.fs.write("model.txt", "weights")
    sluice.metric("auc", 0.7)
    sluice.metric("auc", 0.75)
    local v = sluice.registry.register{model = "tiny", artifact = ctx.outputs.model, format = "text",
                                       tags = {owner = "lua"}}
    local got = sluice.registry.get("tiny", v.version)
    local missing, why = sluice.registry.get("tiny", "production")
    return {version = v.version, digest = v.digest, auc = got.metrics.auc, depth = got.params.depth,
            owner = got.tags.owner, path = got.path, text = got.format, missing = tostring(missing), why = why}
  )");
  INFO(r.error << "\n" << r.traceback);
  REQUIRE(r.ok);
  CHECK(r.values["version"] == "1");
  CHECK(r.values["digest"].rfind("sha256:", 0) == 0);
  CHECK(r.values["auc"] == "0.75");  // the last value the step reported
  CHECK(r.values["depth"] == "4");   // the run's params
  CHECK(r.values["owner"] == "lua");
  CHECK(r.values["text"] == "text");
  CHECK(r.values["path"] == f.home + "/models/tiny/1/model.txt");
  CHECK(r.values["missing"] == "nil");
  CHECK(r.values["why"] == "model 'tiny' has no alias 'production' (it has no aliases)");

  reg::ModelRegistry registry(f.home + "/sluice.db");
  auto v = registry.version("tiny", 1);
  REQUIRE(v);
  CHECK(v->lineage.run_id == kRun);
  CHECK(v->lineage.node == "fit");
  CHECK(v->lineage.registered_node == "fit");
}

TEST_CASE("lua registry: bad arguments fail the step at the script's line") {
  Fixture f;
  f.in.chunk_name = "reg.lua";
  LuaStepResult r = f.run("local x = 1\nsluice.registry.register{artifact = 'model.txt'}");
  CHECK_FALSE(r.ok);
  CHECK(r.error == "reg.lua:2: registry.register: 'model' is required");
  r = f.run("sluice.registry.register{model = 'm', artifact = '/etc/passwd'}");
  CHECK(r.error == "reg.lua:1: registry.register: '/etc/passwd' is refused: it is outside the work dir and the "
                   "declared inputs");
  r = f.run("sluice.fs.write('m.txt', 'x')\nsluice.registry.register{model = 'Bad', artifact = 'm.txt'}");
  CHECK(r.error == "reg.lua:2: registry.register: model name 'Bad' is invalid: use lowercase letters, digits, '_' and "
                   "'-', starting with a letter or digit");
  f.in.home.clear();
  r = f.run("sluice.registry.get('m')");
  CHECK(r.error == "reg.lua:1: registry.get: no store is available to this step");
}
