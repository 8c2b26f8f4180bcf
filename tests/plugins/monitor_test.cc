// The monitor plugin through its ABI: drift against scipy's numbers on the
// data of tests/plugins/make_reference.py, fairness on a table checked by
// hand, performance against scikit-learn's numbers, and errors.
#include <catch2/catch.hpp>

#include <cmath>

#include "plugins/plugin_harness.h"

namespace sluice::test {

namespace {

using nlohmann::json;

const LoadedPlugin& monitor() { return LoadedPlugin::get("monitor"); }

json reference() { return json::parse(slurp(data_file("reference.json"))); }

// The report row of `feature`.
json row_of(const json& report, const std::string& feature) {
  for (const json& r : report["features"])
    if (r["feature"] == feature) return r;
  FAIL("no report row for " << feature);
  return nullptr;
}

}  // namespace

TEST_CASE("monitor.drift: a batch from the training distribution does not drift, PSI and p-values as scipy") {
  const json want = reference()["drift_same"];
  ScratchDir dir;
  PluginHost host(dir.path);
  host.inputs["reference"] = data_file("train.csv");
  host.outputs["report"] = dir / "drift.json";
  const Outcome o = monitor().invoke(
      "drift", {{"reference", "reference"}, {"current", data_file("current_same.csv")}, {"exclude", {"id", "label"}}}, host);
  REQUIRE(o.error == "");
  REQUIRE(o.status == SLUICE_OK);
  CHECK(o.values["drift"] == false);
  CHECK(o.values["drifted"] == "");
  CHECK(o.values["n_features"] == 4);
  CHECK(o.values["n_reference"] == 600);
  CHECK(o.values["n_current"] == 400);
  const json report = json::parse(slurp(dir / "drift.json"));
  double max_psi = 0;
  std::string worst;
  for (const char* f : {"age", "income", "visits", "segment"}) {
    INFO(f);
    const json r = row_of(report, f);
    CHECK(r["type"] == (std::string(f) == "segment" ? "categorical" : "numeric"));
    CHECK(r["test"] == (std::string(f) == "segment" ? "chi2" : "ks"));
    CHECK(r["psi"].get<double>() == Approx(want[f]["psi"].get<double>()).margin(1e-12));
    CHECK(r["statistic"].get<double>() == Approx(want[f]["statistic"].get<double>()).margin(1e-12));
    CHECK(r["p_value"].get<double>() == Approx(want[f]["p_value"].get<double>()).epsilon(1e-9));
    CHECK(r["drifted"] == false);
    const auto m = host.metrics_named(std::string("psi_") + f);
    REQUIRE(m.size() == 1);
    CHECK(m[0].value == r["psi"].get<double>());
    if (r["psi"].get<double>() > max_psi) {
      max_psi = r["psi"].get<double>();
      worst = f;
    }
  }
  CHECK(o.values["max_psi"].get<double>() == max_psi);
  CHECK(o.values["worst_feature"] == worst);
  // income is sometimes empty: its null rates are reported, its PSI uses the values present.
  CHECK(row_of(report, "income")["null_rate_reference"].get<double>() > 0);
  CHECK(row_of(report, "age")["null_rate_reference"] == 0.0);
}

TEST_CASE("monitor.drift: a shifted batch drifts in the features that moved") {
  const json want = reference()["drift_shifted"];
  ScratchDir dir;
  PluginHost host(dir.path);
  const Outcome o = monitor().invoke("drift",
                                     {{"reference", data_file("train.csv")}, {"current", data_file("current_shifted.csv")},
                                      {"features", {"age", "income", "visits", "segment"}}},
                                     host);
  REQUIRE(o.error == "");
  CHECK(o.values["drift"] == true);
  CHECK(o.values["drifted"] == "age,segment");
  CHECK(o.values["worst_feature"] == "age");
  CHECK(o.values["max_psi"].get<double>() == Approx(want["age"]["psi"].get<double>()).margin(1e-12));
  const json report = json::parse(slurp(dir / "report"));
  CHECK(report["drifted"] == json({"age", "segment"}));
  CHECK(row_of(report, "segment")["psi"].get<double>() == Approx(want["segment"]["psi"].get<double>()).margin(1e-12));
  CHECK(row_of(report, "segment")["statistic"].get<double>() == Approx(want["segment"]["statistic"].get<double>()).margin(1e-9));
  CHECK(row_of(report, "segment")["p_value"].get<double>() == Approx(want["segment"]["p_value"].get<double>()).epsilon(1e-9));
  CHECK(row_of(report, "age")["p_value"].get<double>() == Approx(want["age"]["p_value"].get<double>()).epsilon(1e-6));
  CHECK(host.log_text().find("age: psi ") != std::string::npos);
  CHECK(host.log_text().find(" -> drifted\n") != std::string::npos);

  // With the test switched off and a PSI threshold above segment's, only age drifts.
  PluginHost h2(dir.path);
  const Outcome psi_only = monitor().invoke("drift",
                                            {{"reference", data_file("train.csv")}, {"current", data_file("current_shifted.csv")},
                                             {"exclude", {"id", "label"}}, {"p_value", 0}, {"psi_threshold", 0.3},
                                             {"report", "psi_only.json"}},
                                            h2);
  REQUIRE(psi_only.error == "");
  CHECK(psi_only.values["drifted"] == "age");
}

TEST_CASE("monitor.drift: categories, new categories and numbers compared as categories") {
  ScratchDir dir;
  write_text(dir / "ref.csv", "plan,tier\nbasic,1\nbasic,1\nplus,2\nplus,2\n,3\n");
  write_text(dir / "cur.csv", "plan,tier\nbasic,1\nvip,3\nvip,3\nplus,2\n");
  PluginHost host(dir.path);
  const Outcome o = monitor().invoke("drift", {{"reference", "ref.csv"}, {"current", "cur.csv"}, {"categorical", {"tier"}}}, host);
  REQUIRE(o.error == "");
  const json report = json::parse(slurp(dir / "report"));
  const json plan = row_of(report, "plan");
  CHECK(plan["type"] == "categorical");
  CHECK(plan["null_rate_reference"] == 0.2);
  CHECK(plan["new_categories"] == json({"vip"}));
  // reference shares basic 1/2, plus 1/2, vip 0 (-> 1e-4); current 1/4, 1/4, 1/2.
  const double eps = 1e-4;
  const double psi = (0.25 - 0.5) * std::log(0.25 / 0.5) * 2 + (0.5 - eps) * std::log(0.5 / eps);
  CHECK(plan["psi"].get<double>() == Approx(psi).margin(1e-12));
  // 2 x 3 table {{2, 2, 0}, {1, 1, 2}}: expected {{1.5, 1.5, 1}, {1.5, 1.5, 1}}; chi2 = 4 * 0.25/1.5 + 2 * 1 = 2.6667, dof 2.
  CHECK(plan["statistic"].get<double>() == Approx(8.0 / 3).margin(1e-12));
  CHECK(plan["p_value"].get<double>() == Approx(std::exp(-4.0 / 3)).margin(1e-12));  // chi2 sf with 2 dof: exp(-x/2)
  CHECK(row_of(report, "tier")["type"] == "categorical");
  CHECK(o.values["drifted"] == "plan,tier");
}

TEST_CASE("monitor.fairness: group rates and disparity on a table checked by hand") {
  ScratchDir dir;
  // Group a: labels 1 1 1 0 0 0, scores .9 .8 .3 .6 .2 .1 -> predicted + + - + - -:
  //   positive rate 3/6, TPR 2/3, FPR 1/3, accuracy 4/6, AUC 8/9.
  // Group b: labels 1 0 0 0, scores .5 .3 .2 .1 -> + - - - (0.5 is at the cutoff):
  //   positive rate 1/4, TPR 1, FPR 0, accuracy 1, AUC 1.
  // Group c: one row, label 0, score .9: positive rate 1, TPR undefined, FPR 1.
  write_text(dir / "scored.csv",
             "segment,label,score\n"
             "a,1,0.9\na,1,0.8\na,1,0.3\na,0,0.6\na,0,0.2\na,0,0.1\n"
             "b,1,0.5\nb,0,0.3\nb,0,0.2\nb,0,0.1\n"
             "c,0,0.9\n");
  auto run = [&](json args) {
    args["data"] = "scored.csv";
    args["group"] = "segment";
    PluginHost host(dir.path);
    const Outcome o = monitor().invoke("fairness", args, host);
    REQUIRE(o.error == "");
    REQUIRE(o.status == SLUICE_OK);
    return o.values;
  };
  // c is below min_count: positive-rate ratio (1/4)/(1/2) = 0.5 (worst b), TPR ratio (2/3)/1 (worst a).
  json v = run({{"min_count", 2}, {"report", "fair.json"}});
  CHECK(v["fair"] == false);
  CHECK(v["min_ratio"] == 0.5);
  CHECK(v["worst_group"] == "b");
  CHECK(v["worst_criterion"] == "positive_rate");
  CHECK(v["groups"] == 2);
  CHECK(v["disparate_impact_ratio"] == 0.5);
  CHECK(v["demographic_parity_difference"] == 0.25);
  CHECK(v["equal_opportunity_difference"].get<double>() == Approx(1.0 / 3).margin(1e-15));
  CHECK(v["equalized_odds_difference"].get<double>() == Approx(1.0 / 3).margin(1e-15));
  const json report = json::parse(slurp(dir / "fair.json"));
  CHECK(report["ratios"]["tpr"]["ratio"].get<double>() == Approx(2.0 / 3).margin(1e-15));
  CHECK(report["ratios"]["tpr"]["worst_group"] == "a");
  const json& a = report["per_group"][0];
  CHECK(a["group"] == "a");
  CHECK(a["count"] == 6);
  CHECK(a["positives"] == 3);
  CHECK(a["positive_rate"] == 0.5);
  CHECK(a["tpr"].get<double>() == Approx(2.0 / 3).margin(1e-15));
  CHECK(a["fpr"].get<double>() == Approx(1.0 / 3).margin(1e-15));
  CHECK(a["accuracy"].get<double>() == Approx(4.0 / 6).margin(1e-15));
  CHECK(a["auc"].get<double>() == Approx(8.0 / 9).margin(1e-15));
  const json& c = report["per_group"][2];
  CHECK(c["tpr"].is_null());
  CHECK(c["auc"].is_null());
  CHECK(c["compared"] == false);

  // The threshold is inclusive.
  CHECK(run({{"min_count", 2}, {"threshold", 0.5}})["fair"] == true);
  // With c compared, its positive rate 1 sets the max: 0.25 / 1 (its TPR is undefined, so TPR stays 2/3).
  v = run(json::object());
  CHECK(v["min_ratio"] == 0.25);
  CHECK(v["worst_group"] == "b");
  CHECK(v["groups"] == 3);
  // FPR: a 1/3, b 0 -> ratio 0; the worst group has the highest FPR.
  v = run({{"min_count", 2}, {"criteria", {"fpr"}}});
  CHECK(v["min_ratio"] == 0.0);
  CHECK(v["worst_group"] == "a");
  CHECK(v["worst_criterion"] == "fpr");
}

TEST_CASE("monitor.performance: AUC and log-loss of a scored batch against a threshold") {
  const json want = reference()["evaluate"];
  ScratchDir dir;
  auto run = [&](json args) {
    args["data"] = data_file("scored.csv");
    PluginHost host(dir.path);
    const Outcome o = monitor().invoke("performance", args, host);
    REQUIRE(o.error == "");
    REQUIRE(o.status == SLUICE_OK);
    CHECK(host.metrics_named("auc").size() == 1);
    return std::make_pair(o.values, host.log_text());
  };
  auto [v, log] = run({{"threshold", 0.8}});
  CHECK(v["degraded"] == true);
  CHECK(v["metric"] == "auc");
  CHECK(v["value"].get<double>() == Approx(want["auc"].get<double>()).margin(1e-12));
  CHECK(v["f1"].get<double>() == Approx(want["f1"].get<double>()).margin(1e-12));
  CHECK(log.find(" is below the threshold 0.8: degraded\n") != std::string::npos);
  CHECK(run({{"threshold", 0.75}}).first["degraded"] == false);
  v = run({{"metric", "logloss"}, {"threshold", 0.5}}).first;
  CHECK(v["value"].get<double>() == Approx(want["logloss"].get<double>()).margin(1e-12));
  CHECK(v["degraded"] == true);  // 0.568 is above the highest acceptable log-loss
  CHECK(run({{"metric", "logloss"}, {"threshold", 0.6}}).first["degraded"] == false);
  CHECK(run({{"metric", "accuracy"}, {"threshold", 0.69}}).first["degraded"] == false);  // 0.69: not below

  // Regression metrics on any numbers: errors 1, -2, 0.5 -> RMSE sqrt(5.25/3), MAE 3.5/3.
  write_text(dir / "reg.csv", "label,score\n3,4\n5,3\n1,1.5\n");
  PluginHost host(dir.path);
  const Outcome r = monitor().invoke("performance", {{"data", "reg.csv"}, {"metric", "rmse"}, {"threshold", 1.5}}, host);
  REQUIRE(r.error == "");
  CHECK(r.values["rmse"].get<double>() == Approx(std::sqrt(5.25 / 3)).margin(1e-15));
  CHECK(r.values["mae"].get<double>() == Approx(3.5 / 3).margin(1e-15));
  CHECK(r.values["degraded"] == false);
}

TEST_CASE("monitor: arguments that do not fit are SLUICE_BAD_ARGS, bad data SLUICE_FAILED") {
  ScratchDir dir;
  write_text(dir / "a.csv", "x,label,score,g\n1,1,0.5,u\n2,0,0.25,v\n");
  write_text(dir / "empty.csv", "x,label,score,g\n");
  auto run = [&](const std::string& action, const json& args, int status) {
    PluginHost host(dir.path);
    const Outcome o = monitor().invoke(action, args, host);
    CHECK(o.status == status);
    return o.error;
  };
  const json ab = {{"reference", "a.csv"}, {"current", "a.csv"}};
  auto with = [&](json base, const json& more) {
    for (auto it = more.begin(); it != more.end(); ++it) base[it.key()] = it.value();
    return base;
  };
  CHECK(run("drift", {{"reference", "a.csv"}}, SLUICE_BAD_ARGS) == "current is required");
  CHECK(run("drift", with(ab, {{"bins", 1}}), SLUICE_BAD_ARGS) == "bins must be from 2 to 1000 (got 1)");
  CHECK(run("drift", with(ab, {{"p_value", 2}}), SLUICE_BAD_ARGS) == "p_value must be from 0 to 1 (got 2)");
  CHECK(run("drift", with(ab, {{"psi_threshold", -1}}), SLUICE_BAD_ARGS) == "psi_threshold must be from 0 to 1000000000 (got -1)");
  CHECK(run("drift", with(ab, {{"features", {"x", "y"}}}), SLUICE_BAD_ARGS) ==
        "features: column 'y' is not in a.csv (columns: x, label, score, g)");
  CHECK(run("drift", with(ab, {{"features", {"x"}}, {"categorical", {"g"}}}), SLUICE_BAD_ARGS) ==
        "categorical: 'g' is not one of the compared features");
  CHECK(run("drift", with(ab, {{"features", "x"}, {"exclude", "g"}}), SLUICE_BAD_ARGS) == "give features or exclude, not both");
  CHECK(run("drift", with(ab, {{"psi_treshold", 1}}), SLUICE_BAD_ARGS) == "unknown argument 'psi_treshold'; did you mean 'psi_threshold'?");
  CHECK(run("drift", with(ab, {{"current", "empty.csv"}}), SLUICE_FAILED) == "empty.csv has no rows");
  CHECK(run("fairness", {{"data", "a.csv"}}, SLUICE_BAD_ARGS) == "group is required");
  CHECK(run("fairness", {{"data", "a.csv"}, {"group", "g"}, {"criteria", {"ppv"}}}, SLUICE_BAD_ARGS) ==
        "criteria: 'ppv' is not one of positive_rate, tpr, fpr, accuracy");
  CHECK(run("fairness", {{"data", "a.csv"}, {"group", "g"}, {"threshold", 1.2}}, SLUICE_BAD_ARGS) ==
        "threshold must be from 0 to 1 (got 1.2)");
  CHECK(run("fairness", {{"data", "a.csv"}, {"group", "g"}, {"min_count", 5}}, SLUICE_FAILED) ==
        "no group of 'g' has min_count = 5 rows");
  CHECK(run("fairness", {{"data", "a.csv"}, {"group", "g"}, {"score", "x"}}, SLUICE_FAILED) ==
        "a.csv:3: column 'x': '2' is not a probability in [0, 1]");
  CHECK(run("performance", {{"data", "a.csv"}}, SLUICE_BAD_ARGS) == "threshold is required");
  CHECK(run("performance", {{"data", "a.csv"}, {"threshold", "high"}}, SLUICE_BAD_ARGS) == "threshold must be a number (got \"high\")");
  CHECK(run("performance", {{"data", "a.csv"}, {"threshold", 0.7}, {"metric", "auroc"}}, SLUICE_BAD_ARGS) ==
        "metric must be one of auc, accuracy, precision, recall, f1, logloss, brier, rmse, mae (got \"auroc\")");
  // A value from a template arrives as text.
  CHECK(run("performance", {{"data", "a.csv"}, {"threshold", "0.7"}}, SLUICE_OK) == "");
  CHECK(run("performance", {{"data", "a.csv"}, {"threshold", 0.7}, {"label", "x"}}, SLUICE_FAILED) ==
        "a.csv:3: column 'x': '2' is not 0 or 1");
}

}  // namespace sluice::test
