// The model card against a golden file: a real registry whose every time,
// run and actor is fixed, so the card's bytes are too.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "engine/model_card.h"
#include "registry/db.h"
#include "registry/model_registry.h"
#include "registry/sqlite_store.h"
#include "support/temp_dir.h"

using namespace sluice;
namespace reg = sluice::registry;

namespace {

constexpr int64_t T0 = 1795000000000;  // 2026-11-18T11:06:40Z
constexpr const char* kRun = "20261118-090640.000-0000c0de";
const std::string kGolden = std::string(SLUICE_TEST_DATA) + "/engine/golden/model_card.md";

std::string digest_of(char c) { return "sha256:" + std::string(64, c); }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("model card: metrics, params, data lineage, fairness and alias history match the golden file") {
  test::ScratchDir dir;
  const std::string db = dir / "sluice.db";
  {
    auto store = reg::open_sqlite_store(db);
    store->apply({reg::PutWorkflow{.name = "recommender", .digest = "sha256:" + std::string(64, 'w'), .source = "",
                                   .at = T0},
                  reg::CreateRun{.id = kRun, .workflow_name = "recommender",
                                 .workflow_digest = "sha256:" + std::string(64, 'w'), .at = T0,
                                 .git_commit = "0123456789abcdef0123456789abcdef01234567"},
                  reg::SetStepStatus{.run_id = kRun, .node = "train[lr=0.1]", .step = "train",
                                     .status = reg::StepStatus::Running, .at = T0},
                  reg::PutArtifact{.digest = digest_of('d'), .size = 2048, .at = T0},
                  reg::PutArtifact{.digest = digest_of('e'), .size = 512, .at = T0}});
  }
  reg::ModelRegistry registry(db);
  auto add = [&](char digest, int64_t at, std::vector<reg::MetricValue> metrics) {
    reg::NewVersion v;
    v.model = "recommender";
    v.digest = digest_of(digest);
    v.size = 1234;
    v.filename = "model.json";
    v.format = "xgboost-json";
    v.metrics = std::move(metrics);
    v.actor = "ann";
    v.at = at;
    return v;
  };
  REQUIRE(registry.register_version(add('1', T0 + 1000, {{"valid_auc", 0.81}})));
  reg::NewVersion v2 = add('2', T0 + 60000,
                           {{"valid_auc", 0.842}, {"logloss", 0.4125}, {"fairness_min_ratio", 0.91},
                            {"fairness.tpr.segment_b", 0.77}});
  v2.description = "Gradient-boosted trees on the November interactions; weekly retrain.";
  v2.params_json = R"({"eta":0.1,"max_depth":6,"objective":"binary:logistic"})";
  v2.tags = {{"team", "discovery"}, {"fairness_worst_group", "segment_b"}, {"note", "a|b"}};
  v2.lineage.run_id = kRun;
  v2.lineage.node = "train[lr=0.1]";
  v2.lineage.workflow_digest = "sha256:" + std::string(64, 'w');
  v2.lineage.git_commit = "0123456789abcdef0123456789abcdef01234567";
  v2.lineage.inputs = {{"train", digest_of('d')}, {"valid", digest_of('e')}};
  v2.lineage.registered_run = kRun;
  v2.lineage.registered_node = "register";
  REQUIRE(registry.register_version(v2));

  reg::PromoteRequest p;
  p.model = "recommender";
  p.version = 1;
  p.alias = "production";
  p.actor = "ann";
  p.reason = "first release";
  p.at = T0 + 120000;
  REQUIRE(registry.promote(p));
  p.version = 2;
  p.alias = "staging";
  p.reason = "";
  p.at = T0 + 180000;
  REQUIRE(registry.promote(p));
  const std::string gate = "candidate.metrics.valid_auc >= (champion and champion.metrics.valid_auc or 0) + 0.05";
  REQUIRE(registry.record_rejection("recommender", 2, "production", 1,
                                    reg::DecisionInput{gate, "{}", "gate did not hold: " + gate, T0 + 240000},
                                    "ci-bot", kRun, "promote"));
  p.alias = "production";
  p.actor = "bob";
  p.reason = "approved by review";
  p.at = T0 + 300000;
  const std::string gate2 = "candidate.metrics.valid_auc >= (champion and champion.metrics.valid_auc or 0) + 0.01";
  p.decision = reg::DecisionInput{gate2, "{}", "gate held: " + gate2};
  REQUIRE(registry.promote(p));

  auto v = registry.version("recommender", 2);
  REQUIRE(v);
  std::string card = engine::render_model_card(*v, *registry.history("recommender"), *registry.decisions("recommender"));
  if (std::getenv("SLUICE_UPDATE_GOLDEN")) std::ofstream(kGolden, std::ios::binary) << card;
  CHECK(card == slurp(kGolden));
}
