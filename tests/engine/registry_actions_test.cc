// The built-in registry actions, called the way the executor calls a handler:
// a real store and CAS in a scratch home, a real LuaHost for gates.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/registry_actions.h"
#include "registry/artifact_store.h"
#include "registry/model_registry.h"
#include "registry/sqlite_store.h"
#include "sluice/version.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::engine;
namespace reg = sluice::registry;
using nlohmann::json;

namespace {

constexpr const char* kRun = "20261127-040253.000-0000abcd";

class TestContext final : public ActionContext {
 public:
  void log(std::string_view line) override { lines.emplace_back(line); }
  void metric(const std::string&, double, std::optional<int64_t>) override {}
  bool cancelled() const override { return false; }
  std::optional<std::chrono::milliseconds> time_left() const override { return std::nullopt; }
  LuaHost& lua() override { return host; }

  std::vector<std::string> lines;
  LuaHost host;
};

// A run in which step `train` produced model.json with metric `auc`.
struct Fixture {
  test::ScratchDir dir;
  std::string home = dir.path;
  std::shared_ptr<ActionHandler> handler = make_registry_handler();
  TestContext ctx;
  int trained = 0;

  Fixture() {
    auto store = reg::open_sqlite_store(home + "/sluice.db");
    store->apply({reg::PutWorkflow{.name = "wf", .digest = "wfd", .source = "", .at = 1},
                  reg::CreateRun{.id = kRun, .workflow_name = "wf", .workflow_digest = "wfd", .at = 1}});
  }

  // Another training step `train<N>` whose model.json scores `auc`; returns its path.
  std::string train(double auc) {
    const std::string node = "train" + std::to_string(++trained);
    const std::string path = home + "/runs/" + kRun + "/" + node + "/model.json";
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << "{\"auc\": " << auc << "}\n";
    auto cas = reg::ArtifactStore::open(home);
    std::string digest = cas->put_file(path)->str();
    auto store = reg::open_sqlite_store(home + "/sluice.db");
    store->apply({reg::SetStepStatus{.run_id = kRun, .node = node, .status = reg::StepStatus::Running, .at = 2},
                  reg::AddMetric{.run_id = kRun, .node = node, .name = "auc", .value = auc, .at = 2, .seq = 1},
                  reg::PutArtifact{.digest = digest, .size = 10, .at = 2},
                  reg::AddOutput{.run_id = kRun, .node = node, .name = "model", .digest = digest, .path = "model.json"},
                  reg::SetStepStatus{.run_id = kRun, .node = node, .status = reg::StepStatus::Succeeded, .at = 3}});
    return path;
  }

  ActionResult call(const std::string& action, json args, const std::string& node = "step") {
    ActionCall c;
    c.run_id = kRun;
    c.node = node;
    c.step = node;
    c.home = home;
    c.plugin = "registry";
    c.action = action;
    c.args = std::move(args);
    c.workdir = home + "/runs/" + kRun + "/" + node;
    std::filesystem::create_directories(c.workdir);
    return handler->invoke(c, ctx);
  }

  // Registers a model trained to `auc`; returns its version.
  std::string registered(double auc) {
    ActionResult r = call("register", {{"model", "churn"}, {"artifact", train(auc)}, {"format", "xgboost-json"}},
                          "register" + std::to_string(trained + 1));
    INFO(r.error);
    REQUIRE(r.ok);
    return r.values.at("version");
  }
};

const std::string kGate = "candidate.metrics.auc >= (champion and champion.metrics.auc or 0) + 0.01";

}  // namespace

TEST_CASE("registry actions: the manifest declares register, promote and archive") {
  dsl::PluginManifest m = registry_plugin_manifest();
  CHECK(m.name == "registry");
  CHECK(m.kind == dsl::PluginKind::Builtin);
  CHECK(m.version == SLUICE_VERSION);
  REQUIRE(m.actions.size() == 3);
  CHECK(m.actions[0].name == "archive");
  CHECK(m.actions[1].name == "promote");
  CHECK(m.actions[2].name == "register");
  const dsl::PluginAction& promote = m.actions[1];
  std::vector<std::string> names;
  for (const dsl::ActionParam& p : promote.params) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"alias", "gate", "model", "reason", "version"});
  CHECK(promote.params[4].default_value == dsl::Value("latest"));
  CHECK(promote.params[0].required);
  CHECK_FALSE(promote.params[1].required);
}

TEST_CASE("registry actions: register records a version with the producing step's metrics") {
  Fixture f;
  const std::string path = f.train(0.81);
  ActionResult r = f.call("register", {{"model", "churn"}, {"artifact", path}, {"format", "xgboost-json"},
                                       {"tags", {{"team", "growth"}}}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values.at("model") == "churn");
  CHECK(r.values.at("version") == "1");
  CHECK(r.values.at("digest").rfind("sha256:", 0) == 0);
  reg::ModelRegistry registry(f.home + "/sluice.db");
  auto v = registry.version("churn", 1);
  REQUIRE(v);
  CHECK(v->metric("auc") == 0.81);
  CHECK(v->lineage.node == "train1");
  CHECK(v->lineage.registered_node == "step");
  CHECK(v->tags == std::vector<std::pair<std::string, std::string>>{{"team", "growth"}});
  CHECK(f.ctx.lines.back() == "registered churn version 1 (" + r.values.at("digest") + ")");

  // Explicit metrics: numbers or the text a template produced.
  r = f.call("register", {{"model", "churn"}, {"artifact", path}, {"metrics", {{"auc", "0.9"}, {"n", 3}}}}, "again");
  REQUIRE(r.ok);
  CHECK(registry.version("churn", 2)->metric("auc") == 0.9);
  r = f.call("register", {{"model", "churn"}, {"artifact", path}, {"metrics", {{"auc", "high"}}}}, "bad");
  CHECK_FALSE(r.ok);
  CHECK(r.error == "registry.register: metric 'auc' must be a number, not \"high\"");
}

TEST_CASE("registry actions: a gate that holds promotes, one that does not records why") {
  Fixture f;
  CHECK(f.registered(0.80) == "1");
  // No champion yet: `champion` is nil and the gate compares with 0.
  ActionResult r = f.call("promote", {{"model", "churn"}, {"version", "1"}, {"alias", "production"}, {"gate", kGate}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values.at("promoted") == "true");
  CHECK(r.values.at("reason") == "gate held: " + kGate);
  CHECK(r.values.at("version") == "1");
  CHECK(r.values.at("previous") == "");

  // A challenger only 0.005 better: the gate wants 0.01.
  CHECK(f.registered(0.805) == "2");
  r = f.call("promote", {{"model", "churn"}, {"version", "2"}, {"alias", "production"}, {"gate", kGate}});
  REQUIRE(r.ok);
  CHECK(r.values.at("promoted") == "false");
  CHECK(r.values.at("reason") == "gate did not hold: " + kGate);
  CHECK(r.values.at("previous") == "1");
  CHECK(f.ctx.lines.back() == "gate did not hold: candidate version 2 vs champion version 1");

  // "latest" is the default candidate: version 3, clearly better.
  CHECK(f.registered(0.85) == "3");
  r = f.call("promote", {{"model", "churn"}, {"alias", "production"}, {"gate", kGate}, {"reason", "weekly retrain"}});
  REQUIRE(r.ok);
  CHECK(r.values.at("promoted") == "true");
  CHECK(r.values.at("version") == "3");
  CHECK(r.values.at("previous") == "1");

  reg::ModelRegistry registry(f.home + "/sluice.db");
  CHECK(registry.resolve("churn", "production")->version == 3);
  auto d = registry.decisions("churn");
  REQUIRE(d->size() == 3);
  CHECK(d->at(0).promoted);
  CHECK(d->at(0).champion == 0);
  CHECK_FALSE(d->at(1).promoted);
  CHECK(d->at(1).candidate == 2);
  CHECK(d->at(1).champion == 1);
  CHECK(d->at(1).gate == kGate);
  json seen = json::parse(d->at(1).inputs_json);
  CHECK(seen["candidate"]["metrics"]["auc"] == 0.805);
  CHECK(seen["champion"]["version"] == 1);
  CHECK(seen["champion"]["metrics"]["auc"] == 0.80);
  CHECK(d->at(2).promoted);
  auto h = registry.history("churn", "production");
  REQUIRE(h->size() == 2);
  CHECK(h->at(1).reason == "weekly retrain");
  CHECK(h->at(1).run_id == kRun);

  // Promoting the holder again moves nothing.
  r = f.call("promote", {{"model", "churn"}, {"version", 3}, {"alias", "production"}});
  REQUIRE(r.ok);
  CHECK(r.values.at("promoted") == "false");
  CHECK(r.values.at("reason") == "version 3 already holds alias 'production'");
}

TEST_CASE("registry actions: a broken gate or a missing version fails the step") {
  Fixture f;
  f.registered(0.8);
  ActionResult r = f.call("promote", {{"model", "churn"}, {"alias", "production"}, {"gate", "candidate.metrics.auc.x.y"}});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "gate: attempt to index field 'auc' (a number value)");
  r = f.call("promote", {{"model", "churn"}, {"alias", "production"}, {"version", "7"}});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "model 'churn' has no version 7 (it has version 1)");
  r = f.call("promote", {{"model", "churn"}, {"alias", "Production"}});
  CHECK(r.error == "registry.promote: alias 'Production' is invalid: use lowercase letters, digits, '_' and '-', "
                   "starting with a letter");
  r = f.call("register", {{"artifact", "x"}});
  CHECK(r.error == "registry.register: 'model' is required");
  r = f.call("deploy", json::object());
  CHECK(r.error == "registry has no action 'deploy' (it has register, promote and archive)");
  reg::ModelRegistry registry(f.home + "/sluice.db");
  CHECK(registry.decisions("churn")->empty());
}

TEST_CASE("registry actions: archive refuses a version holding an alias") {
  Fixture f;
  f.registered(0.8);
  f.registered(0.9);
  REQUIRE(f.call("promote", {{"model", "churn"}, {"version", 2}, {"alias", "production"}}).ok);
  ActionResult r = f.call("archive", {{"model", "churn"}, {"version", "production"}});
  CHECK_FALSE(r.ok);
  CHECK(r.error == "version 2 of model 'churn' holds alias 'production': move it to another version before archiving");
  r = f.call("archive", {{"model", "churn"}, {"version", 1}});
  REQUIRE(r.ok);
  CHECK(r.values.at("version") == "1");
  reg::ModelRegistry registry(f.home + "/sluice.db");
  CHECK(registry.version("churn", 1)->archived());
}
