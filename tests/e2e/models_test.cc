// End-to-end: `sluice models ...` and ${models.*} references, with the built
// binary on a real store.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <set>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace sluice::test;
using nlohmann::json;

namespace {

// A workflow whose `train` step writes model.json for a learning rate and
// reports `auc` and `loss` as metrics.
constexpr const char* kTrain = R"(name = "trainer"
[params]
lr = 0.1
auc = 0.8
[steps.prep]
run = "echo 'x,y' > ${outputs.data}"
outputs = { data = "data.csv" }
[steps.train]
run = "echo '{\"lr\": ${params.lr}}' > ${outputs.model}; echo auc ${params.auc} >> $SLUICE_METRICS; echo loss 0.5 >> $SLUICE_METRICS"
inputs = { data = "${steps.prep.outputs.data}" }
outputs = { model = "model.json" }
)";

struct Registry {
  TempDir dir;
  std::vector<std::string> env{"SLUICE_ACTOR=ci-bot"};

  Registry() { dir.write("train.toml", kTrain); }

  RunResult sluice(const std::vector<std::string>& args) { return run_sluice(args, dir.path(), env); }

  json sluice_json(std::vector<std::string> args) {
    args.push_back("--json");
    RunResult r = sluice(args);
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    return json::parse(r.out);
  }

  // Trains with `lr` and `auc` and registers the result; returns the version.
  int64_t train_and_register(const std::string& lr, const std::string& auc) {
    RunResult r = sluice({"run", "train.toml", "-p", "lr=" + lr, "-p", "auc=" + auc});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    std::string run = sluice_json({"runs", "--limit", "1"})["runs"][0]["id"];
    json v = sluice_json({"models", "register", "recommender", ".sluice/runs/" + run + "/train/model.json", "--format",
                          "json-lr"});
    return v["version"];
  }
};

}  // namespace

TEST_CASE("models: register, list, show and versions with lineage from the producing step") {
  Registry r;
  CHECK(r.train_and_register("0.1", "0.81") == 1);
  CHECK(r.train_and_register("0.3", "0.84") == 2);

  json list = r.sluice_json({"models", "list"})["models"];
  REQUIRE(list.size() == 1);
  CHECK(list[0]["name"] == "recommender");
  CHECK(list[0]["versions"] == 2);
  CHECK(list[0]["latest"] == 2);

  json v1 = r.sluice_json({"models", "show", "recommender@1"});
  CHECK(v1["version"] == 1);
  CHECK(v1["format"] == "json-lr");
  CHECK(v1["filename"] == "model.json");
  CHECK(v1["metrics"]["auc"] == 0.81);
  CHECK(v1["metrics"]["loss"] == 0.5);
  CHECK(v1["params"]["lr"] == 0.1);
  CHECK(v1["actor"] == "ci-bot");
  CHECK(v1["lineage"]["step"] == "train");
  CHECK(v1["lineage"]["workflow"] == "trainer");
  CHECK(v1["lineage"]["inputs"].contains("data"));
  // The input digest is the upstream output's, as `sluice show` recorded it.
  json run = r.sluice_json({"show", v1["lineage"]["run"]});
  for (const json& s : run["steps"])
    if (s["node"] == "prep") CHECK(v1["lineage"]["inputs"]["data"] == s["outputs"]["data"]["digest"]);

  json versions = r.sluice_json({"models", "versions", "recommender"})["versions"];
  REQUIRE(versions.size() == 2);
  CHECK(versions[1]["params"]["lr"] == 0.3);

  RunResult text = r.sluice({"models", "versions", "recommender"});
  REQUIRE(text.status == 0);
  CHECK(text.out.rfind("VERSION  DIGEST                 FORMAT   CREATED", 0) == 0);
}

TEST_CASE("models: promote, history, rollback and archive from the CLI") {
  Registry r;
  r.train_and_register("0.1", "0.81");
  r.train_and_register("0.2", "0.83");
  r.train_and_register("0.3", "0.85");

  RunResult p = r.sluice({"models", "promote", "recommender", "1", "--alias", "production", "--reason", "first"});
  REQUIRE(p.status == 0);
  CHECK(p.out == "recommender: alias 'production' set to version 1\n");
  p = r.sluice({"models", "promote", "recommender", "3", "--alias", "production"});
  CHECK(p.out == "recommender: alias 'production' moved from version 1 to version 3\n");
  p = r.sluice({"models", "promote", "recommender", "3", "--alias", "production"});
  CHECK(p.out == "recommender: version 3 already holds alias 'production'; nothing changed\n");
  CHECK(r.sluice_json({"models", "promote", "recommender", "latest", "--alias", "staging"})["version"] == 3);

  json back = r.sluice_json({"models", "rollback", "recommender", "--alias", "production", "--reason", "p99 latency"});
  CHECK(back["from"] == 3);
  CHECK(back["to"] == 1);
  CHECK(r.sluice_json({"models", "show", "recommender@production"})["version"] == 1);

  json history = r.sluice_json({"models", "history", "recommender", "--alias", "production"})["history"];
  REQUIRE(history.size() == 3);
  CHECK(history[0]["version"] == 1);
  CHECK(history[0]["reason"] == "first");
  CHECK(history[0]["actor"] == "ci-bot");
  CHECK(history[0]["until"] == history[1]["from"]);
  CHECK(history[1]["version"] == 3);
  CHECK(history[2]["action"] == "rollback");
  CHECK(history[2]["reason"] == "p99 latency");
  CHECK(history[2]["until"].is_null());

  RunResult bad = r.sluice({"models", "rollback", "recommender", "--alias", "production"});
  CHECK(bad.status == 2);
  CHECK(bad.err ==
        "sluice models rollback: error: alias 'production' of model 'recommender' has no earlier holder to roll back "
        "to (version 1 was its first)\n");

  bad = r.sluice({"models", "archive", "recommender", "1"});
  CHECK(bad.status == 2);
  CHECK(bad.err == "sluice models archive: error: version 1 of model 'recommender' holds alias 'production': move it "
                   "to another version before archiving\n");
  CHECK(r.sluice_json({"models", "archive", "recommender", "2"})["archived"] == true);
  bad = r.sluice({"models", "promote", "recommender", "2", "--alias", "production"});
  CHECK(bad.status == 2);
  CHECK(bad.err == "sluice models promote: error: version 2 of model 'recommender' is archived: an alias cannot point "
                   "to an archived version\n");

  bad = r.sluice({"models", "show", "recomender@1"});
  CHECK(bad.status == 2);
  CHECK(bad.err == "sluice models show: error: no model 'recomender'; did you mean 'recommender'?\n");
  bad = r.sluice({"models", "promote", "recommender", "1"});
  CHECK(bad.status == 2);
  CHECK(bad.err == "sluice models promote: error: --alias ALIAS is required\n");
  bad = r.sluice({"models", "promte"});
  CHECK(bad.status == 2);
  CHECK(bad.err.rfind("sluice models: error: unknown models command 'promte'; did you mean 'promote'?\n", 0) == 0);
}

TEST_CASE("models: diff compares metrics, params and lineage") {
  Registry r;
  r.train_and_register("0.1", "0.81");
  r.train_and_register("0.3", "0.84");
  REQUIRE(r.sluice({"models", "promote", "recommender", "1", "--alias", "production"}).status == 0);
  json d = r.sluice_json({"models", "diff", "recommender", "production", "2"});
  CHECK(d["a"] == 1);
  CHECK(d["b"] == 2);
  REQUIRE(d["metrics"].size() == 2);
  CHECK(d["metrics"][0]["name"] == "auc");
  CHECK(d["metrics"][0]["a"] == "0.81");
  CHECK(d["metrics"][0]["b"] == "0.84");
  CHECK(d["metrics"][0]["delta"].get<double>() == Approx(0.03));
  CHECK(d["metrics"][1]["name"] == "loss");
  CHECK(d["metrics"][1]["changed"] == false);
  REQUIRE(d["params"].size() == 2);
  CHECK(d["params"][1]["name"] == "lr");
  CHECK(d["params"][1]["a"] == "0.1");
  CHECK(d["params"][1]["b"] == "0.3");
  std::map<std::string, json> lineage;
  for (const json& row : d["lineage"]) lineage[row["name"]] = row;
  CHECK(lineage["artifact"]["changed"] == true);
  CHECK(lineage["run"]["changed"] == true);
  CHECK(lineage["step"]["changed"] == false);
  CHECK(lineage["workflow_digest"]["changed"] == false);
  CHECK(lineage["input:data"]["changed"] == false);  // same data, other params

  RunResult text = r.sluice({"models", "diff", "recommender", "1", "2"});
  REQUIRE(text.status == 0);
  CHECK(text.out.find("metrics (A, B, B - A):\n  ~  auc   0.81  0.84  +0.03") != std::string::npos);
  CHECK(text.out.find("  =  loss  0.5   0.5   +0\n") != std::string::npos);
  CHECK(text.out.find("params:\n  ~  auc  0.81  0.84\n  ~  lr   0.1   0.3\n") != std::string::npos);
}

TEST_CASE("models: download and card give the artifact and its markdown card") {
  Registry r;
  r.train_and_register("0.1", "0.81");
  REQUIRE(r.sluice({"models", "promote", "recommender", "1", "--alias", "production"}).status == 0);
  RunResult dl = r.sluice({"models", "download", "recommender@production", "-o", "got.json"});
  INFO(dl.err);
  REQUIRE(dl.status == 0);
  CHECK(r.dir.read("got.json") == "{\"lr\": 0.1}\n");
  dl = r.sluice({"models", "download", "recommender@production", "-o", "got.json"});
  CHECK(dl.status == 2);
  CHECK(dl.err == "sluice models download: error: 'got.json' already exists\n");

  RunResult card = r.sluice({"models", "card", "recommender@1"});
  REQUIRE(card.status == 0);
  CHECK(card.out.rfind("# recommender version 1\n", 0) == 0);
  for (const char* part : {"| Aliases | production |", "## Metrics\n\n| Metric | Value |\n|---|---|\n| auc | 0.81 |\n",
                           "| lr | 0.1 |", "## Data lineage\n\n- Produced by `train` in run ",
                           "No fairness results recorded.", "| production | **1** |"})
    CHECK(card.out.find(part) != std::string::npos);
  REQUIRE(r.sluice({"models", "card", "recommender@production", "-o", "card.md"}).status == 0);
  CHECK(r.dir.read("card.md") == card.out);
}

TEST_CASE("models: workflows reference versions by alias and number, and a missing alias fails the step") {
  Registry r;
  r.train_and_register("0.1", "0.81");
  r.train_and_register("0.3", "0.84");
  REQUIRE(r.sluice({"models", "promote", "recommender", "2", "--alias", "production"}).status == 0);
  r.dir.write("serve.toml", R"(name = "serve"
[steps.deploy]
run = "cp ${models.recommender@production.path} ${outputs.live}; echo v=${models.recommender@production.version} >> $SLUICE_VALUES; cat ${models.recommender@1.path} > ${outputs.old}"
outputs = { live = "live.json", old = "old.json" }
)");
  RunResult run = r.sluice({"run", "serve.toml"});
  INFO(run.out << run.err);
  REQUIRE(run.status == 0);
  std::string id = r.sluice_json({"runs", "--limit", "1"})["runs"][0]["id"];
  CHECK(r.dir.read(".sluice/runs/" + id + "/deploy/live.json") == "{\"lr\": 0.3}\n");
  CHECK(r.dir.read(".sluice/runs/" + id + "/deploy/old.json") == "{\"lr\": 0.1}\n");
  json show = r.sluice_json({"show", id});
  CHECK(show["steps"][0]["values"]["v"] == "2");
  // The path is the version's file under its registered name, read-only.
  struct stat st {};
  REQUIRE(::stat((r.dir / ".sluice/models/recommender/2/model.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0222) == 0);

  r.dir.write("canary.toml", R"(name = "canary"
[steps.deploy]
run = "cat ${models.recommender@canary.path}"
[steps.other]
run = "cat ${models.ranker@1.path}"
)");
  run = r.sluice({"run", "canary.toml", "--keep-going"});
  CHECK(run.status == 1);
  json failed = r.sluice_json({"show", r.sluice_json({"runs", "--limit", "1"})["runs"][0]["id"]});
  std::map<std::string, std::string> errors;
  for (const json& s : failed["steps"]) errors[s["node"]] = s["error"];
  CHECK(errors["deploy"] ==
        "${models.recommender@canary.path}: model 'recommender' has no alias 'canary' (aliases: production)");
  CHECK(errors["other"] == "${models.ranker@1.path}: no model 'ranker'");
}

TEST_CASE("models: promotions from several sluice processes at once keep one holder and every history row") {
  Registry r;
  for (int i = 1; i <= 4; ++i) r.train_and_register("0." + std::to_string(i), "0.8");
  constexpr int kProcs = 8;
  std::vector<int> pids;
  for (int p = 0; p < kProcs; ++p) {
    std::string version = std::to_string(1 + p % 4);
    pids.push_back(spawn_sluice({"models", "promote", "recommender", version, "--alias", "production", "--reason",
                                 "proc " + std::to_string(p)},
                                r.dir.path(), r.dir / ("out-" + std::to_string(p)), r.dir / ("err-" + std::to_string(p)),
                                {"SLUICE_ACTOR=proc" + std::to_string(p)}));
  }
  int moved = 0;
  for (int p = 0; p < kProcs; ++p) {
    INFO(read_file(r.dir / ("err-" + std::to_string(p))));
    REQUIRE(wait_sluice(pids[static_cast<size_t>(p)]) == 0);
    std::string out = read_file(r.dir / ("out-" + std::to_string(p)));
    if (out.find("nothing changed") == std::string::npos) ++moved;
  }
  json history = r.sluice_json({"models", "history", "recommender"})["history"];
  CHECK(static_cast<int>(history.size()) == moved);
  std::set<std::string> actors;
  for (size_t i = 0; i < history.size(); ++i) {
    actors.insert(history[i]["actor"]);
    if (i + 1 < history.size()) {
      CHECK(history[i]["until"] == history[i + 1]["from"]);
      CHECK(history[i + 1]["previous_version"] == history[i]["version"]);
    }
  }
  CHECK(history.back()["until"].is_null());
  CHECK(static_cast<int>(actors.size()) == moved);
  json holder = r.sluice_json({"models", "show", "recommender@production"});
  CHECK(holder["version"] == history.back()["version"]);
  CHECK(holder["aliases"] == json::array({"production"}));
}
