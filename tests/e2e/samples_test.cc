// End-to-end: the shipped samples (samples/) validate and the scikit-learn
// sample's training script runs unchanged as a `run` step.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace sluice::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kSamples = SLUICE_SOURCE_DIR "/samples";

// Debian's interpreter, where scripts/setup installs python3-sklearn (a
// python3 earlier on PATH, e.g. from pyenv, may not have it).
const std::string kPython = "python=/usr/bin/python3";

json only_run(const TempDir& dir) {
  auto runs = run_sluice({"runs", "--json"}, dir.path());
  REQUIRE(runs.status == 0);
  auto list = json::parse(runs.out)["runs"];
  REQUIRE(list.size() == 1);
  auto r = run_sluice({"show", "--json", list[0]["id"].get<std::string>()}, dir.path());
  REQUIRE(r.status == 0);
  return json::parse(r.out);
}

}  // namespace

// Passes once the plugin catalog knows every plugin the samples use:
// storage, trainer, monitor, deploy, notify (native) and registry, workflow
// (built in); `sluice validate` then checks each `with` against them.
TEST_CASE("samples: every sample workflow validates") {
  TempDir dir;
  auto r = run_sluice({"validate", kSamples + "/quickstart/workflow.toml", kSamples + "/recommender/pipeline.toml",
                       kSamples + "/recommender/monitor.toml", kSamples + "/sklearn/workflow.toml"},
                      dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK(r.err == "");
  CHECK(r.out == kSamples + "/quickstart/workflow.toml: ok: workflow 'quickstart', 3 steps, 3 instances, 2 edges\n" +
                     kSamples + "/recommender/pipeline.toml: ok: workflow 'recommender', 20 steps, 23 instances, 45 edges\n" +
                     kSamples + "/recommender/monitor.toml: ok: workflow 'recommender-monitor', 7 steps, 7 instances, 7 edges\n" +
                     kSamples + "/sklearn/workflow.toml: ok: workflow 'sklearn', 3 steps, 3 instances, 2 edges\n");
}

TEST_CASE("samples: the scikit-learn script runs unchanged and reports its metrics") {
  TempDir dir;
  auto r = run_sluice({"run", kSamples + "/sklearn/workflow.toml", "--only", "train", "-p", kPython, "-p", "C=0.5"},
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  json run = only_run(dir);
  REQUIRE(run["steps"].size() == 1);
  json train = run["steps"][0];
  CHECK(train["status"] == "succeeded");
  std::map<std::string, double> metrics;
  for (const auto& m : train["metrics"]) metrics[m["name"].get<std::string>()] = m["value"].get<double>();
  CHECK(metrics.size() == 5);
  // Logistic regression separates this data well; a broken pipeline (no
  // scaling, labels shuffled) would not.
  CHECK(metrics["auc"] > 0.97);
  CHECK(metrics["cv_auc"] > 0.97);
  CHECK(metrics["accuracy"] > 0.9);
  CHECK(train["values"]["test_rows"] == "143");  // 25% of 569, stratified
  CHECK(std::stod(train["values"]["auc"].get<std::string>()) == metrics["auc"]);
  const std::string workdir = fs::path(train["attempts"][0]["log_path"].get<std::string>()).parent_path().string();
  json report = json::parse(read_file(workdir + "/report.json"));
  CHECK(report["params"] == json({{"C", 0.5}, {"seed", 0}}));
  CHECK(report["rows"] == 569);
  CHECK(report["metrics"]["auc"] == metrics["auc"]);
  CHECK(train["outputs"]["model"]["digest"].get<std::string>().rfind("sha256:", 0) == 0);
  CHECK(fs::file_size(workdir + "/model.pkl") > 0);
}

// Needs the registry's built-in actions (registry.register, registry.promote).
TEST_CASE("samples: the scikit-learn model is registered with its metrics and staged") {
  TempDir dir;
  auto r = run_sluice({"run", kSamples + "/sklearn/workflow.toml", "-p", kPython}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  json run = only_run(dir);
  json stage;
  for (const auto& s : run["steps"])
    if (s["node"] == "stage") stage = s;
  CHECK(stage["values"]["promoted"] == "true");
  auto m = run_sluice({"models", "show", "breast-cancer@staging", "--json"}, dir.path());
  INFO(m.out << m.err);
  REQUIRE(m.status == 0);
  json v = json::parse(m.out);
  CHECK(v["version"] == 1);
  CHECK(v["format"] == "sklearn-pickle");
  CHECK(v["metrics"]["auc"].get<double>() > 0.97);
}
