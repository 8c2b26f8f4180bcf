// Registering step outputs as model versions against a real store and CAS,
// and resolving ${models.NAME@REF.FIELD} to files.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "registry/artifact_store.h"
#include "registry/model_refs.h"
#include "registry/registration.h"
#include "registry/sqlite_store.h"
#include "support/temp_dir.h"

using namespace sluice::registry;
using sluice::test::ScratchDir;
namespace fs = std::filesystem;

namespace {

constexpr const char* kRun = "20261127-040253.000-00000001";
constexpr const char* kTrain = "train[lr=0.2]";

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A home with one run whose step `train[lr=0.2]` read data.csv and wrote
// model.json, recorded the way the run recorder records it. `finished`
// false leaves the step running (its outputs not yet recorded).
struct Home {
  ScratchDir dir;
  std::string home = dir.path;
  std::string model_path = home + "/runs/" + kRun + "/" + kTrain + "/model.json";
  std::string model_digest, data_digest;

  explicit Home(bool finished = true) {
    write(model_path, "{\"trees\": 3}\n");
    write(home + "/data.csv", "x,y\n1,0\n");
    auto cas = ArtifactStore::open(home);
    REQUIRE(cas);
    model_digest = cas->put_file(model_path)->str();
    data_digest = cas->put_file(home + "/data.csv")->str();
    auto store = open_sqlite_store(home + "/sluice.db");
    store->apply({PutWorkflow{.name = "wf", .digest = "wfdigest", .source = "name = \"wf\"", .at = 1},
                  CreateRun{.id = kRun, .workflow_name = "wf", .workflow_digest = "wfdigest",
                            .params_json = R"({"lr":0.1,"rounds":10})", .at = 1, .git_commit = "abc123"},
                  SetStepStatus{.run_id = kRun, .node = kTrain, .step = "train", .matrix_json = R"({"lr":0.2})",
                                .status = StepStatus::Running, .at = 2},
                  PutArtifact{.digest = data_digest, .size = 8, .at = 2},
                  AddInput{.run_id = kRun, .node = kTrain, .name = "data", .digest = data_digest}});
    if (finished) finish();
  }

  void finish() {
    auto store = open_sqlite_store(home + "/sluice.db");
    store->apply({AddMetric{.run_id = kRun, .node = kTrain, .name = "auc", .value = 0.7, .at = 3, .seq = 1},
                  AddMetric{.run_id = kRun, .node = kTrain, .name = "auc", .value = 0.8, .at = 3, .seq = 2},
                  AddMetric{.run_id = kRun, .node = kTrain, .name = "loss", .value = 0.3, .at = 3, .seq = 3},
                  PutArtifact{.digest = model_digest, .size = 13, .at = 3},
                  AddOutput{.run_id = kRun, .node = kTrain, .name = "model", .digest = model_digest, .path = "model.json"},
                  SetStepStatus{.run_id = kRun, .node = kTrain, .status = StepStatus::Succeeded, .at = 4}});
  }

  Registration reg(const std::string& artifact) const {
    Registration r;
    r.home = home;
    r.model = "recommender";
    r.artifact = artifact;
    r.format = "xgboost-json";
    r.run_id = kRun;
    r.node = "register";
    r.actor = "tester";
    return r;
  }
};

}  // namespace

TEST_CASE("registration: an upstream output brings its digest, metrics, params and lineage from the store") {
  Home h;
  auto v = register_artifact(h.reg(h.model_path));
  REQUIRE(v);
  CHECK(v->version == 1);
  CHECK(v->digest == h.model_digest);
  CHECK(v->filename == "model.json");
  CHECK(v->format == "xgboost-json");
  REQUIRE(v->metrics.size() == 2);
  CHECK(v->metric("auc") == 0.8);  // the last value reported
  CHECK(v->metric("loss") == 0.3);
  CHECK(v->params_json == R"({"lr":0.2,"rounds":10})");  // the run's params under the instance's matrix values
  CHECK(v->lineage.run_id == kRun);
  CHECK(v->lineage.node == kTrain);
  CHECK(v->lineage.step == "train");
  CHECK(v->lineage.workflow_name == "wf");
  CHECK(v->lineage.workflow_digest == "wfdigest");
  CHECK(v->lineage.git_commit == "abc123");
  REQUIRE(v->lineage.inputs.size() == 1);
  CHECK(v->lineage.inputs[0].name == "data");
  CHECK(v->lineage.inputs[0].digest == h.data_digest);
  CHECK(v->lineage.registered_run == kRun);
  CHECK(v->lineage.registered_node == "register");
  // Registering again from the same step returns the same version (a retry).
  CHECK(register_artifact(h.reg(h.model_path))->version == 1);
}

TEST_CASE("registration: metrics, params and tags given explicitly win over the producer's") {
  Home h;
  Registration r = h.reg(h.model_path);
  r.metrics = std::vector<MetricValue>{{"valid_auc", 0.91}};
  r.params_json = R"({"eta":0.3})";
  r.tags = {{"owner", "search"}};
  r.description = "nightly";
  auto v = register_artifact(r);
  REQUIRE(v);
  REQUIRE(v->metrics.size() == 1);
  CHECK(v->metric("valid_auc") == 0.91);
  CHECK(v->params_json == R"({"eta":0.3})");
  CHECK(v->tags == std::vector<std::pair<std::string, std::string>>{{"owner", "search"}});
  CHECK(v->description == "nightly");
  CHECK(v->lineage.node == kTrain);  // lineage still comes from the producer
  r.params_json = "[1]";
  CHECK(register_artifact(r).error() == "params must be a JSON object");
}

TEST_CASE("registration: a file elsewhere is hashed into the CAS and traced to the step that made the same bytes") {
  Home h;
  write(h.home + "/copy/model.json", "{\"trees\": 3}\n");
  auto copy = register_artifact(h.reg(h.home + "/copy/model.json"));
  REQUIRE(copy);
  CHECK(copy->digest == h.model_digest);
  CHECK(copy->lineage.node == kTrain);
  CHECK(copy->metric("auc") == 0.8);

  write(h.home + "/elsewhere/new.bin", "never produced by a step");
  auto fresh = register_artifact(h.reg(h.home + "/elsewhere/new.bin"));
  REQUIRE(fresh);
  CHECK(fresh->version == 2);
  CHECK(fresh->lineage.run_id.empty());
  CHECK(fresh->metrics.empty());
  CHECK(fresh->params_json == "{}");
  auto cas = ArtifactStore::open(h.home);
  CHECK(cas->exists(*Digest::parse(fresh->digest)));
  CHECK(open_sqlite_store(h.home + "/sluice.db")->artifact(fresh->digest)->size == 24);

  CHECK(register_artifact(h.reg(h.home + "/missing.json")).error() ==
        "artifact: '" + h.home + "/missing.json' does not exist");
}

TEST_CASE("registration: an output whose step is not recorded yet is waited for") {
  Home h(false);
  Registration r = h.reg(h.model_path);
  r.wait = std::chrono::milliseconds(50);
  CHECK(register_artifact(r).error() == std::string("artifact: step '") + kTrain + "' of run " + kRun + " produced '" +
                                            h.model_path +
                                            "' but is not recorded as finished in the store (waited 50 ms)");
  // The recorder commits while registration waits: it then takes the record.
  r.wait = std::chrono::seconds(60);
  std::thread recorder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    h.finish();
  });
  auto v = register_artifact(r);
  recorder.join();
  REQUIRE(v);
  CHECK(v->metric("auc") == 0.8);
  CHECK(v->lineage.inputs.size() == 1);
}

TEST_CASE("registration: a step registering its own output uses what it reported so far") {
  Home h;
  auto store = open_sqlite_store(h.home + "/sluice.db");
  store->apply({SetStepStatus{.run_id = kRun, .node = "fit", .step = "fit", .status = StepStatus::Running, .at = 5}});
  const std::string own = h.home + "/runs/" + kRun + "/fit/out/model.txt";
  write(own, "made by fit");
  Registration r = h.reg(own);
  r.node = "fit";
  r.step_metrics = {{"f1", 0.66}};
  r.step_inputs = {{"train", h.model_path}};
  auto v = register_artifact(r);
  REQUIRE(v);
  CHECK(v->lineage.node == "fit");
  CHECK(v->metric("f1") == 0.66);
  REQUIRE(v->lineage.inputs.size() == 1);
  CHECK(v->lineage.inputs[0].digest == h.model_digest);
  CHECK(v->params_json == R"({"lr":0.1,"rounds":10})");
}

TEST_CASE("model refs: path, version and digest of a version, and clear errors for missing ones") {
  Home h;
  REQUIRE(register_artifact(h.reg(h.model_path)));
  {
    ModelRegistry reg(h.home + "/sluice.db");
    PromoteRequest p;
    p.model = "recommender";
    p.version = 1;
    p.alias = "production";
    p.actor = "t";
    REQUIRE(reg.promote(p));
  }
  auto path = resolve_model_ref(h.home, "recommender", "production", "path");
  REQUIRE(path);
  CHECK(*path == h.home + "/models/recommender/1/model.json");
  CHECK(slurp(*path) == "{\"trees\": 3}\n");
  struct stat st {};
  REQUIRE(::stat(path->c_str(), &st) == 0);
  CHECK((st.st_mode & 0222) == 0);  // read-only: the CAS object itself
  // The second resolution reuses the materialised file.
  CHECK(*resolve_model_ref(h.home, "recommender", "1", "path") == *path);
  CHECK(*resolve_model_ref(h.home, "recommender", "production", "version") == "1");
  CHECK(*resolve_model_ref(h.home, "recommender", "latest", "digest") == h.model_digest);
  CHECK(resolve_model_ref(h.home, "recommender", "staging", "path").error() ==
        "model 'recommender' has no alias 'staging' (aliases: production)");
  CHECK(resolve_model_ref(h.home, "recommender", "4", "path").error() ==
        "model 'recommender' has no version 4 (it has version 1)");
  CHECK(resolve_model_ref(h.home, "ranker", "production", "path").error() == "no model 'ranker'");
}

TEST_CASE("model refs: a folder version is materialised as a folder") {
  Home h;
  write(h.home + "/bundle/model/weights.bin", "w");
  write(h.home + "/bundle/model/config.json", "{}");
  Registration r = h.reg(h.home + "/bundle/model");
  r.model = "bundle";
  auto v = register_artifact(r);
  REQUIRE(v);
  CHECK(v->kind == ArtifactKind::Tree);
  CHECK(v->filename == "model");
  auto path = resolve_model_ref(h.home, "bundle", "1", "path");
  REQUIRE(path);
  CHECK(*path == h.home + "/models/bundle/1/model");
  CHECK(slurp(*path + "/weights.bin") == "w");
  CHECK(slurp(*path + "/config.json") == "{}");
}
