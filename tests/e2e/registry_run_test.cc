// End-to-end: the built-in registry actions inside `sluice run` — register a
// step's output, promote it behind a champion/challenger gate, read it back
// through ${models.NAME@ALIAS.path}.
#include <catch2/catch.hpp>

#include <map>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace sluice::test;

namespace {

const char* kRelease = R"(name = "release"
[params]
auc = 0.8
[steps.train]
run = "echo '{\"auc\": ${params.auc}}' > ${outputs.model}; echo valid_auc ${params.auc} >> $SLUICE_METRICS"
outputs = { model = "model.json" }
[steps.register]
uses = "registry.register"
with = { model = "reco", artifact = "${steps.train.outputs.model}", format = "xgboost-json" }
[steps.promote]
uses = "registry.promote"
with = { model = "reco", version = "${steps.register.values.version}", alias = "production", gate = "candidate.metrics.valid_auc >= (champion and champion.metrics.valid_auc or 0) + 0.01" }
[steps.serving]
run = "cat ${models.reco@production.path} > ${outputs.live}"
needs = ["promote"]
outputs = { live = "live.json" }
)";

std::map<std::string, nlohmann::json> last_run_steps(const TempDir& dir) {
  auto runs = run_sluice({"runs", "--json"}, dir.path());
  REQUIRE(runs.status == 0);
  const nlohmann::json list = nlohmann::json::parse(runs.out);
  auto show = run_sluice({"show", "--json", list["runs"][0]["id"].get<std::string>()}, dir.path());
  REQUIRE(show.status == 0);
  const nlohmann::json run = nlohmann::json::parse(show.out);
  std::map<std::string, nlohmann::json> out;
  for (const auto& s : run["steps"]) out[s["node"].get<std::string>()] = s;
  return out;
}

}  // namespace

TEST_CASE("registry actions in a run: the gate promotes a better model and keeps the champion otherwise") {
  TempDir dir;
  dir.write("release.toml", kRelease);
  auto first = run_sluice({"run", "release.toml"}, dir.path());
  INFO(first.out << first.err);
  REQUIRE(first.status == 0);
  auto steps = last_run_steps(dir);
  CHECK(steps["register"]["values"]["version"] == "1");
  CHECK(steps["promote"]["values"]["promoted"] == "true");

  // A challenger that is not better by 0.01: registered as version 2, not promoted.
  auto second = run_sluice({"run", "-p", "auc=0.805", "release.toml"}, dir.path());
  INFO(second.out << second.err);
  REQUIRE(second.status == 0);
  steps = last_run_steps(dir);
  CHECK(steps["register"]["values"]["version"] == "2");
  CHECK(steps["promote"]["values"]["promoted"] == "false");
  // The alias still names version 1.
  auto model = run_sluice({"models", "show", "reco@production", "--json"}, dir.path());
  REQUIRE(model.status == 0);
  CHECK(nlohmann::json::parse(model.out)["version"] == 1);

  // A better one is promoted; the history has both moves.
  auto third = run_sluice({"run", "-p", "auc=0.9", "release.toml"}, dir.path());
  REQUIRE(third.status == 0);
  auto history = run_sluice({"models", "history", "reco", "--json"}, dir.path());
  REQUIRE(history.status == 0);
  const nlohmann::json h = nlohmann::json::parse(history.out);
  INFO(h.dump(1));
  REQUIRE(h["history"].size() == 2);
  CHECK(h["history"][0]["version"] == 1);
  CHECK(h["history"][1]["version"] == 3);
  CHECK(h["history"][1]["previous_version"] == 1);
  CHECK(h["decisions"].size() == 3);
  // The serving step of the last run read the new champion through ${models.reco@production.path}.
  steps = last_run_steps(dir);
  std::string log = steps["serving"]["attempts"][0]["log_path"];
  CHECK(read_file(log.substr(0, log.rfind('/')) + "/live.json") == "{\"auc\": 0.9}\n");
}
