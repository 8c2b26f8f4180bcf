// The trainer plugin through its ABI: XGBoost training (quality, determinism,
// early stopping, cancellation), agreement with python's xgboost and
// scikit-learn on the data of tests/plugins/make_reference.py, and errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "plugins/plugin_harness.h"

namespace sluice::test {

namespace {

using nlohmann::json;

const LoadedPlugin& trainer() { return LoadedPlugin::get("trainer"); }

json reference() { return json::parse(slurp(data_file("reference.json"))); }

// Park-Miller uniforms in [0, 1): the same sequence on every machine.
struct Lcg {
  uint64_t s;
  double next() {
    s = s * 16807 % 2147483647;
    return static_cast<double>(s) / 2147483647.0;
  }
};

// Rows with a known signal: label = [x1 + 0.5 x2 + 0.2 noise > 0]; x3, x4 are noise.
void write_separable(const std::string& path, int rows, uint64_t seed) {
  Lcg g{seed};
  std::ostringstream out;
  out << "id,x1,x2,x3,x4,label\n";
  for (int i = 0; i < rows; ++i) {
    const double x1 = 2 * g.next() - 1, x2 = 2 * g.next() - 1, x3 = 2 * g.next() - 1, x4 = 2 * g.next() - 1;
    const double noise = 2 * g.next() - 1;
    out << i << "," << x1 << "," << x2 << "," << x3 << "," << x4 << "," << (x1 + 0.5 * x2 + 0.2 * noise > 0 ? 1 : 0) << "\n";
  }
  write_text(path, out.str());
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(slurp(path));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream ls(line);
    std::string f;
    while (std::getline(ls, f, ',')) fields.push_back(f);
    if (!line.empty() && line.back() == ',') fields.emplace_back();
    rows.push_back(fields);
  }
  return rows;
}

json python_params() {
  return {{"eta", 0.3}, {"max_depth", 3}, {"subsample", 0.8}, {"tree_method", "hist"}, {"objective", "binary:logistic"}};
}

}  // namespace

TEST_CASE("trainer.xgboost: reaches the AUC the signal allows and gives the same model bytes for the same seed") {
  ScratchDir dir;
  write_separable(dir / "train.csv", 800, 11);
  write_separable(dir / "valid.csv", 400, 12);
  auto train = [&](int seed, const std::string& out) {
    PluginHost host(dir.path);
    host.outputs["model"] = dir / out;
    const json args = {{"train", dir / "train.csv"}, {"valid", dir / "valid.csv"}, {"exclude", {"id"}},
                       {"params", {{"eta", 0.2}, {"max_depth", 4}, {"subsample", 0.7}, {"colsample_bytree", 0.8}}},
                       {"rounds", 30}, {"seed", seed}};
    const Outcome o = trainer().invoke("xgboost", args, host);
    REQUIRE(o.error == "");
    REQUIRE(o.status == SLUICE_OK);
    // One valid_auc metric per round, in order.
    const auto per_round = host.metrics_named("valid_auc");
    REQUIRE(per_round.size() == 30);
    for (size_t i = 0; i < per_round.size(); ++i) CHECK(per_round[i].step == static_cast<int64_t>(i));
    CHECK(host.metrics_named("train_logloss").size() == 30);
    CHECK(o.values["valid_auc"].get<double>() == per_round.back().value);
    return o.values;
  };
  const json a = train(3, "a.json"), b = train(3, "b.json"), c = train(4, "c.json");
  CHECK(a["valid_auc"].get<double>() > 0.9);
  CHECK(a["train_auc"].get<double>() > 0.9);
  CHECK(a["n_train"] == 800);
  CHECK(a["n_valid"] == 400);
  CHECK(a["n_features"] == 4);
  CHECK(a["features"] == "x1,x2,x3,x4");
  CHECK(a["best_iteration"] == 29);
  CHECK(a["rounds"] == 30);
  const std::string model_a = slurp(dir / "a.json");
  CHECK(json::parse(model_a)["learner"]["feature_names"] == json({"x1", "x2", "x3", "x4"}));
  CHECK(model_a == slurp(dir / "b.json"));
  CHECK(a == b);
  CHECK(model_a != slurp(dir / "c.json"));  // the seed matters: subsample and colsample draw from it
}

TEST_CASE("trainer.xgboost: trains what python's xgboost trains on the same data and params") {
  const json ref = reference();
  ScratchDir dir;
  PluginHost host(dir.path);
  host.inputs["train"] = data_file("train.csv");
  host.inputs["valid"] = data_file("valid.csv");
  host.outputs["model"] = dir / "model.json";
  const Outcome o = trainer().invoke(
      "xgboost",
      {{"train", "train"}, {"valid", "valid"}, {"features", {"age", "income", "visits"}}, {"params", python_params()},
       {"rounds", 20}, {"seed", 7}},
      host);
  REQUIRE(o.error == "");
  REQUIRE(o.status == SLUICE_OK);
  CHECK(o.values["train_auc"].get<double>() == Approx(ref["train"]["train_auc"].get<double>()).margin(1e-12));
  CHECK(o.values["valid_auc"].get<double>() == Approx(ref["train"]["valid_auc"].get<double>()).margin(1e-12));
  CHECK(o.values["valid_logloss"].get<double>() == Approx(ref["train"]["valid_logloss"].get<double>()).margin(1e-12));
  const auto per_round = host.metrics_named("valid_auc");
  REQUIRE(per_round.size() == ref["train"]["valid_auc_by_round"].size());
  for (size_t i = 0; i < per_round.size(); ++i)
    CHECK(per_round[i].value == Approx(ref["train"]["valid_auc_by_round"][i].get<double>()).margin(1e-12));

  // The model scores the batch as python's does.
  PluginHost p(dir.path);
  const Outcome scored = trainer().invoke(
      "predict", {{"model", dir / "model.json"}, {"data", data_file("batch.csv")}, {"output", "scored.csv"}}, p);
  REQUIRE(scored.error == "");
  const auto rows = read_csv(dir / "scored.csv");
  const json& want = ref["predict"]["scores"];
  REQUIRE(rows.size() == want.size() + 1);
  for (size_t i = 0; i < want.size(); ++i)
    CHECK(std::stod(rows[i + 1].back()) == Approx(want[i].get<double>()).margin(1e-6));
}

TEST_CASE("trainer.predict: scores a CSV with a model python's xgboost saved") {
  const json ref = reference();
  ScratchDir dir;
  PluginHost host(dir.path);
  host.inputs["model"] = data_file("model.json");
  host.outputs["predictions"] = dir / "out/predictions.csv";
  const Outcome o = trainer().invoke("predict", {{"model", "model"}, {"data", data_file("batch.csv")}, {"contributions", true}}, host);
  REQUIRE(o.error == "");
  REQUIRE(o.status == SLUICE_OK);
  const auto rows = read_csv(dir / "out/predictions.csv");
  CHECK(rows[0] == std::vector<std::string>{"id", "age", "income", "visits", "segment", "label", "score", "contrib_age",
                                            "contrib_income", "contrib_visits", "contrib_bias"});
  const json& want = ref["predict"]["scores"];
  REQUIRE(rows.size() == want.size() + 1);
  double sum = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    // Printed as the shortest text that reads back to the same float.
    CHECK(std::stof(rows[i + 1][6]) == static_cast<float>(want[i].get<double>()));
    sum += std::stod(rows[i + 1][6]);
  }
  // The input's cells pass through unchanged (an empty income stays empty).
  const auto batch = read_csv(data_file("batch.csv"));
  for (size_t i = 1; i < batch.size(); ++i)
    CHECK(std::vector<std::string>(rows[i].begin(), rows[i].begin() + 6) == batch[i]);
  for (size_t j = 0; j < 4; ++j)
    CHECK(std::stod(rows[1][7 + j]) == Approx(ref["predict"]["contrib_first_row"][j].get<double>()).margin(1e-6));
  // Contributions add up to the margin: logit(score).
  double margin = 0;
  for (size_t j = 7; j < 11; ++j) margin += std::stod(rows[1][j]);
  const double s = std::stod(rows[1][6]);
  CHECK(margin == Approx(std::log(s / (1 - s))).margin(1e-5));
  CHECK(o.values["rows"] == want.size());
  CHECK(o.values["mean_score"].get<double>() == Approx(sum / static_cast<double>(want.size())).margin(1e-9));
}

TEST_CASE("trainer.evaluate: AUC, log-loss, precision at k and calibration equal scikit-learn's") {
  const json want = reference()["evaluate"];
  ScratchDir dir;
  PluginHost host(dir.path);
  host.outputs["report"] = dir / "report.json";
  const Outcome o = trainer().invoke("evaluate", {{"scores", data_file("scored.csv")}, {"k", 30}}, host);
  REQUIRE(o.error == "");
  REQUIRE(o.status == SLUICE_OK);
  for (const char* k : {"auc", "logloss", "brier", "precision_at_k", "recall_at_k", "accuracy", "precision", "recall", "f1", "ece"}) {
    INFO(k);
    CHECK(o.values[k].get<double>() == Approx(want[k].get<double>()).margin(1e-12));
    const auto m = host.metrics_named(k);
    REQUIRE(m.size() == 1);
    CHECK(m[0].value == o.values[k].get<double>());
    CHECK(m[0].step == SLUICE_METRIC_NO_STEP);
  }
  CHECK(o.values["n"] == 300);
  CHECK(o.values["positives"] == want["positives"]);
  CHECK(o.values["k"] == 30);
  const json report = json::parse(slurp(dir / "report.json"));
  CHECK(report["auc"] == o.values["auc"]);
  REQUIRE(report["calibration"].size() == 10);
  size_t nonempty = 0;
  for (size_t b = 0; b < 10; ++b) {
    const json& bin = report["calibration"][b];
    CHECK(bin["lower"].get<double>() == Approx(0.1 * static_cast<double>(b)));
    CHECK(bin["count"] == want["calibration_counts"][b]);
    if (bin["count"] == 0) continue;
    CHECK(bin["fraction_positive"].get<double>() == Approx(want["calibration_fraction_positive"][nonempty].get<double>()).margin(1e-12));
    CHECK(bin["mean_score"].get<double>() == Approx(want["calibration_mean_score"][nonempty].get<double>()).margin(1e-12));
    ++nonempty;
  }
  CHECK(nonempty == want["calibration_fraction_positive"].size());

  // Ranked within each segment.
  PluginHost g(dir.path);
  const Outcome grouped = trainer().invoke(
      "evaluate", {{"scores", data_file("scored.csv")}, {"k", 3}, {"group_by", "segment"}, {"report", "grouped.json"}}, g);
  REQUIRE(grouped.error == "");
  CHECK(grouped.values["precision_at_k"].get<double>() == Approx(want["grouped_precision_at_3"].get<double>()).margin(1e-12));
  CHECK(grouped.values["recall_at_k"].get<double>() == Approx(want["grouped_recall_at_3"].get<double>()).margin(1e-12));
  CHECK(json::parse(slurp(dir / "grouped.json"))["groups"] == 3);
}

TEST_CASE("trainer.xgboost: early stopping keeps the best round's trees and reports its scores") {
  ScratchDir dir;
  PluginHost host(dir.path);
  const Outcome o = trainer().invoke("xgboost",
                                     {{"train", data_file("train.csv")}, {"valid", data_file("valid.csv")},
                                      {"exclude", {"id"}}, {"params", python_params()}, {"rounds", 500},
                                      {"early_stopping_rounds", 5}, {"seed", 7}, {"model", "m/model.json"}},
                                     host);
  REQUIRE(o.error == "");
  REQUIRE(o.status == SLUICE_OK);
  CHECK(host.log_text().find("not numeric, so not features: segment\n") != std::string::npos);
  CHECK(o.values["features"] == "age,income,visits");
  const auto per_round = host.metrics_named("valid_auc");
  const int64_t best = o.values["best_iteration"].get<int64_t>();
  // It ran exactly 5 rounds past the best one, which has the highest valid AUC seen (the first of equals).
  REQUIRE(per_round.size() == static_cast<size_t>(best + 6));
  for (size_t i = 0; i < per_round.size(); ++i) {
    if (static_cast<int64_t>(i) < best) CHECK(per_round[i].value < per_round[static_cast<size_t>(best)].value);
    if (static_cast<int64_t>(i) > best) CHECK(per_round[i].value <= per_round[static_cast<size_t>(best)].value);
  }
  CHECK(o.values["valid_auc"].get<double>() == per_round[static_cast<size_t>(best)].value);
  CHECK(o.values["rounds"] == best + 1);
  const json model = json::parse(slurp(dir / "m/model.json"));
  CHECK(model["learner"]["gradient_booster"]["model"]["gbtree_model_param"]["num_trees"] == std::to_string(best + 1));
  CHECK(model["learner"]["attributes"]["best_iteration"] == std::to_string(best));
  CHECK(host.log_text().find("early stopping: no better valid_auc for 5 rounds; best round " + std::to_string(best) + "\n") !=
        std::string::npos);
}

TEST_CASE("trainer.xgboost: writes feature importance and mean SHAP per feature") {
  ScratchDir dir;
  write_separable(dir / "train.csv", 600, 21);
  PluginHost host(dir.path);
  host.outputs["explain"] = dir / "explain.json";
  const Outcome o = trainer().invoke(
      "xgboost", {{"train", "train.csv"}, {"exclude", {"id"}}, {"rounds", 15}, {"explain", "explain"}, {"model", "model.json"}},
      host);
  REQUIRE(o.error == "");
  CHECK(o.values["top_feature"] == "x1");
  CHECK(o.values.contains("train_auc"));
  CHECK_FALSE(o.values.contains("valid_auc"));
  const json e = json::parse(slurp(dir / "explain.json"));
  REQUIRE(e["features"].size() == 4);
  CHECK(e["rows"] == 600);
  CHECK(e["features"][0]["name"] == "x1");
  CHECK(e["features"][1]["name"] == "x2");
  for (size_t i = 0; i + 1 < 4; ++i) CHECK(e["features"][i]["mean_abs_shap"] >= e["features"][i + 1]["mean_abs_shap"]);
  CHECK(e["features"][0]["total_gain"].get<double>() > e["features"][3]["total_gain"].get<double>());
  CHECK(e["features"][0]["weight"].get<double>() > 0);
}

TEST_CASE("trainer: a multi-class model predicts one score column per class") {
  ScratchDir dir;
  Lcg g{9};
  std::ostringstream csv;
  csv << "x1,x2,label\n";
  for (int i = 0; i < 300; ++i) {
    const double x1 = g.next(), x2 = g.next();
    csv << x1 << "," << x2 << "," << (x1 < 0.33 ? 0 : x1 < 0.66 ? 1 : 2) << "\n";
  }
  write_text(dir / "three.csv", csv.str());
  PluginHost host(dir.path);
  const Outcome t = trainer().invoke(
      "xgboost",
      {{"train", "three.csv"}, {"rounds", 10}, {"params", {{"objective", "multi:softprob"}, {"num_class", 3}}}, {"explain", "e.json"}},
      host);
  REQUIRE(t.error == "");
  CHECK(t.values.contains("train_mlogloss"));  // XGBoost's default metric for the objective
  CHECK(t.values["top_feature"] == "x1");
  PluginHost p(dir.path);
  const Outcome o = trainer().invoke("predict", {{"model", "model"}, {"data", "three.csv"}, {"column", "p"}}, p);
  REQUIRE(o.error == "");
  CHECK_FALSE(o.values.contains("mean_score"));
  const auto rows = read_csv(dir / "predictions");
  CHECK(rows[0] == std::vector<std::string>{"x1", "x2", "label", "p_0", "p_1", "p_2"});
  size_t right = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const double p0 = std::stod(rows[i][3]), p1 = std::stod(rows[i][4]), p2 = std::stod(rows[i][5]);
    CHECK(p0 + p1 + p2 == Approx(1).margin(1e-6));
    const int best = p0 >= p1 && p0 >= p2 ? 0 : p1 >= p2 ? 1 : 2;
    right += std::to_string(best) == rows[i][2];
  }
  CHECK(right > 280);
}

TEST_CASE("trainer.xgboost: XGBoost's warnings reach the step's log") {
  ScratchDir dir;
  write_separable(dir / "train.csv", 100, 3);
  PluginHost host(dir.path);
  const Outcome o = trainer().invoke("xgboost", {{"train", "train.csv"}, {"rounds", 2}, {"params", {{"colour", "red"}}}}, host);
  REQUIRE(o.error == "");
  // validate_parameters is on by default, so a misspelt parameter is reported.
  const std::pair<int, std::string> warning{SLUICE_LOG_WARN, "xgboost: Parameters: { \"colour\" } are not used."};
  CHECK(std::find(host.logs.begin(), host.logs.end(), warning) != host.logs.end());
}

TEST_CASE("trainer.xgboost: stops between rounds when the host cancels") {
  ScratchDir dir;
  write_separable(dir / "train.csv", 200, 5);
  PluginHost host(dir.path);
  host.cancel_on_call = 4;  // polled once before each round
  const Outcome o = trainer().invoke("xgboost", {{"train", "train.csv"}, {"rounds", 50}}, host);
  CHECK(o.status == SLUICE_CANCELLED);
  CHECK(o.error == "cancelled");
  CHECK(host.metrics_named("train_auc").size() == 3);
  CHECK_FALSE(std::filesystem::exists(dir / "model"));
}

TEST_CASE("trainer: arguments that do not fit are SLUICE_BAD_ARGS with the reason") {
  ScratchDir dir;
  write_separable(dir / "train.csv", 50, 1);
  auto bad = [&](const std::string& action, const json& args) {
    PluginHost host(dir.path);
    const Outcome o = trainer().invoke(action, args, host);
    CHECK(o.status == SLUICE_BAD_ARGS);
    CHECK(o.values.is_null());
    return o.error;
  };
  const json t = {{"train", "train.csv"}};
  CHECK(bad("xgboost", json::object()) == "train is required");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"round", 3}}) == "unknown argument 'round'; did you mean 'rounds'?");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"rounds", 0}}) == "rounds must be from 1 to 100000 (got 0)");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"rounds", 2.5}}) == "rounds must be a whole number (got 2.5)");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"rounds", "many"}}) == "rounds must be a whole number (got \"many\")");
  CHECK(bad("xgboost", {{"train", 3}}) == "train must be a string (got 3)");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"early_stopping_rounds", 5}}) ==
        "early_stopping_rounds needs valid (the data to watch)");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"params", {{"seed", 1}}}}) == "params.seed: set it with the seed argument");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"params", {{"eta", {{"a", 1}}}}}}) ==
        "params.eta must be a string, number, boolean or an array of them (got {\"a\":1})");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"params", "eta=1"}}) == "params must be a table (got \"eta=1\")");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"label", "y"}}) ==
        "label: column 'y' is not in train.csv (columns: id, x1, x2, x3, x4, label)");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"features", {"x1", "label"}}}) == "features: 'label' is the label column");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"features", {"x1", "x1"}}}) == "features: 'x1' is listed twice");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"features", {"x1"}}, {"exclude", {"id"}}}) == "give features or exclude, not both");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"model", "../model.json"}}) == "model: '../model.json' is refused: '..' is not allowed");
  CHECK(bad("xgboost", {{"train", "train.csv"}, {"model", "/tmp/model.json"}}) ==
        "model: '/tmp/model.json' is neither a declared output nor a path inside the work dir");
  CHECK(bad("predict", {{"model", "m.json"}}) == "data is required");
  CHECK(bad("predict", {{"model", "m.json"}, {"data", "d.csv"}, {"contributions", "yes"}}) ==
        "contributions must be true or false (got \"yes\")");
  CHECK(bad("evaluate", {{"scores", "s.csv"}, {"k", 0}}) == "k must be from 1 to 1000000000 (got 0)");
  CHECK(bad("evaluate", {{"scores", "s.csv"}, {"cutoff", 1.5}}) == "cutoff must be from 0 to 1 (got 1.5)");
  CHECK(bad("fit", t) == "unknown action 'fit' (the actions are: evaluate, predict, xgboost)");
  PluginHost host(dir.path);
  const Outcome o = trainer().invoke_raw("xgboost", "{\"train\": ", host);
  CHECK(o.status == SLUICE_BAD_ARGS);
  CHECK(o.error == "the arguments are not valid JSON");
}

TEST_CASE("trainer: bad data fails the step naming the file, line and column") {
  ScratchDir dir;
  write_text(dir / "text.csv", "x1,x2,label\n0.5,1,1\n0.25,high,0\n");
  write_text(dir / "labels.csv", "x1,label\n0.5,1\n0.25,2\n");
  write_text(dir / "ragged.csv", "x1,label\n0.5,1\n0.25\n");
  write_text(dir / "scores.csv", "label,score\n1,0.9\n0,1.5\n");
  write_text(dir / "ones.csv", "label,score\n1,0.9\n1,0.4\n");
  auto failed = [&](const std::string& action, const json& args) {
    PluginHost host(dir.path);
    const Outcome o = trainer().invoke(action, args, host);
    CHECK(o.status == SLUICE_FAILED);
    return o.error;
  };
  CHECK(failed("xgboost", {{"train", "text.csv"}, {"features", {"x1", "x2"}}}) == "text.csv:3: column 'x2': 'high' is not a number");
  CHECK(failed("xgboost", {{"train", "ragged.csv"}}) == "ragged.csv:3: the row has 1 fields, the header has 2");
  CHECK(failed("xgboost", {{"train", "missing.csv"}}) == "cannot read missing.csv: No such file or directory");
  CHECK(failed("xgboost", {{"train", "labels.csv"}}) ==
        "training failed in round 0: label must be in [0,1] for logistic regression");
  CHECK(failed("evaluate", {{"scores", "scores.csv"}}) == "scores.csv:3: column 'score': '1.5' is not a probability in [0, 1]");
  CHECK(failed("evaluate", {{"scores", "ones.csv"}}) == "ones.csv: column 'label' has only 1s: AUC needs both classes");
  CHECK(failed("predict", {{"model", "text.csv"}, {"data", "text.csv"}}).rfind("text.csv is not an XGBoost model: ", 0) == 0);
  // A declared input is named by the path the engine gave it.
  PluginHost host(dir.path);
  host.inputs["data"] = dir / "text.csv";
  const Outcome o = trainer().invoke("xgboost", {{"train", "data"}, {"features", {"x2"}}}, host);
  CHECK(o.status == SLUICE_FAILED);
  CHECK(o.error == dir / "text.csv:3: column 'x2': 'high' is not a number");
}

TEST_CASE("plugins: each library agrees with its plugin.toml and accepts every parameter it declares") {
  for (const std::string name : {"trainer", "monitor"}) {
    INFO(name);
    const LoadedPlugin& p = LoadedPlugin::get(name);
    CHECK(p.plugin().abi_major == SLUICE_PLUGIN_ABI_MAJOR);
    CHECK(std::string(p.plugin().name) == name);
    // A line-level reading of plugin.toml: enough for its own flat layout.
    std::istringstream toml(slurp(p.dir() + "/plugin.toml"));
    std::string line, version, action;
    std::vector<std::string> actions;
    std::map<std::string, std::vector<std::string>> params;
    while (std::getline(toml, line)) {
      if (line.rfind("version = \"", 0) == 0) version = line.substr(11, line.size() - 12);
      if (line.rfind("[actions.", 0) == 0) {
        const std::string path = line.substr(9, line.size() - 10);
        const size_t dot = path.find(".params.");
        if (dot == std::string::npos)
          actions.push_back(path);
        else
          params[path.substr(0, dot)].push_back(path.substr(dot + 8));
      }
    }
    CHECK(std::string(p.plugin().version) == version);
    std::vector<std::string> exported;
    for (const char* const* a = p.plugin().actions; *a; ++a) exported.push_back(*a);
    std::sort(actions.begin(), actions.end());
    CHECK(exported == actions);
    // Every declared param is known to the action: with all of them null
    // (absent), the complaint is about a required one, never an unknown one.
    for (const std::string& a : actions) {
      json args = json::object();
      for (const std::string& param : params[a]) args[param] = nullptr;
      ScratchDir dir;
      PluginHost host(dir.path);
      const Outcome o = p.invoke(a, args, host);
      INFO(a << ": " << o.error);
      CHECK(o.status == SLUICE_BAD_ARGS);
      CHECK(o.error.find(" is required") != std::string::npos);
    }
  }
}

}  // namespace sluice::test
