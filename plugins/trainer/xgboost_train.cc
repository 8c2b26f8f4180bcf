// trainer.xgboost: trains a gradient-boosted model on a CSV with libxgboost,
// round by round, so that every round's metrics reach the host, cancellation
// is honoured between rounds and early stopping keeps the best round.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "engine/csv.h"
#include "plugins/mlkit/table.h"
#include "plugins/trainer/actions.h"
#include "plugins/trainer/xgb.h"

namespace sluice::trainer {

namespace {

using mlkit::BadArgs;
using mlkit::Failed;
using mlkit::Table;

// One evaluation: "<set>_<metric>" -> value, in XGBoost's order.
using Scores = std::vector<std::pair<std::string, double>>;

// A metric or value name from XGBoost's "<set>-<metric>" ("valid-error@0.7"
// -> "valid_error_0_7").
std::string key_of(const std::string& set, const std::string& metric) { return mlkit::key_of(set + "_" + metric); }

// "[3]\ttrain-logloss:0.41\tvalid-auc:0.93" -> {train_logloss: 0.41, valid_auc: 0.93}
Scores parse_eval(const std::string& line, std::string& last_metric) {
  Scores out;
  size_t start = line.find('\t');
  while (start != std::string::npos) {
    const size_t end = line.find('\t', start + 1);
    const std::string item = line.substr(start + 1, end == std::string::npos ? std::string::npos : end - start - 1);
    const size_t dash = item.find('-'), colon = item.rfind(':');
    if (dash != std::string::npos && colon != std::string::npos && colon > dash) {
      double v = 0;
      if (engine::csv::parse_number(item.substr(colon + 1), v) == engine::csv::Number::Ok) {
        last_metric = item.substr(dash + 1, colon - dash - 1);
        out.emplace_back(key_of(item.substr(0, dash), last_metric), v);
      }
    }
    start = end;
  }
  return out;
}

// XGBoost's rule (python's early stopping callback): these improve upwards.
bool maximized(const std::string& metric) {
  for (const char* m : {"auc", "aucpr", "map", "ndcg", "pre"}) {
    const std::string s = m;
    if (metric == s || metric.rfind(s + "@", 0) == 0) return true;
  }
  return false;
}

// A params value as XGBoosterSetParam takes it.
std::vector<std::string> param_values(const std::string& key, const nlohmann::json& v) {
  auto one = [&](const nlohmann::json& x) -> std::string {
    if (x.is_string()) return x.get<std::string>();
    if (x.is_boolean()) return x.get<bool>() ? "1" : "0";
    if (x.is_number()) return engine::csv::format_number(x.get<double>());
    throw BadArgs("params." + key + " must be a string, number, boolean or an array of them (got " + x.dump() + ")");
  };
  if (!v.is_array()) return {one(v)};
  std::vector<std::string> out;
  for (const nlohmann::json& x : v) out.push_back(one(x));
  return out;
}

struct Features {
  std::vector<std::string> names;
  std::vector<size_t> train_columns;
};

Features pick_features(const Table& train, size_t label_col, const std::vector<std::string>& listed,
                       const std::vector<std::string>& exclude, mlkit::Host& host) {
  Features f;
  if (!listed.empty()) {
    for (const std::string& name : listed) {
      const size_t c = train.require("features", name);
      if (c == label_col) throw BadArgs("features: '" + name + "' is the label column");
      if (std::find(f.names.begin(), f.names.end(), name) != f.names.end()) throw BadArgs("features: '" + name + "' is listed twice");
      f.names.push_back(name);
      f.train_columns.push_back(c);
    }
    return f;
  }
  std::set<size_t> excluded;
  for (const std::string& name : exclude) excluded.insert(train.require("exclude", name));
  std::string skipped;
  for (size_t c = 0; c < train.columns().size(); ++c) {
    if (c == label_col || excluded.count(c)) continue;
    if (!train.is_numeric(c)) {
      skipped += (skipped.empty() ? "" : ", ") + train.columns()[c];
      continue;
    }
    f.names.push_back(train.columns()[c]);
    f.train_columns.push_back(c);
  }
  if (!skipped.empty()) host.info("not numeric, so not features: " + skipped);
  if (f.names.empty()) throw Failed(train.shown() + " has no numeric column to use as a feature");
  return f;
}

std::string join(const std::vector<std::string>& xs) {
  std::string s;
  for (const std::string& x : xs) s += (s.empty() ? "" : ",") + x;
  return s;
}

// Feature importance (XGBoost's gain, total gain, weight, cover) and the mean
// absolute SHAP value of each feature over `data`.
nlohmann::json explain(const Booster& booster, const DMatrix& data, const std::vector<std::string>& names) {
  std::map<std::string, nlohmann::json> rows;
  for (const std::string& n : names)
    rows[n] = {{"name", n}, {"mean_abs_shap", 0.0}, {"gain", 0.0}, {"total_gain", 0.0}, {"weight", 0.0}, {"cover", 0.0}};
  for (const char* type : {"gain", "total_gain", "weight", "cover"}) {
    const std::string config = std::string(R"({"importance_type": ")") + type + "\"}";
    bst_ulong n = 0, dim = 0;
    const char** feats = nullptr;
    const bst_ulong* shape = nullptr;
    const float* scores = nullptr;
    check(XGBoosterFeatureScore(booster.get(), config.c_str(), &n, &feats, &dim, &shape, &scores), "feature importance");
    const size_t per = dim == 2 ? shape[1] : 1;  // a score per class for linear multi-class models
    for (bst_ulong i = 0; i < n; ++i) {
      double v = 0;
      for (size_t k = 0; k < per; ++k) v += static_cast<double>(scores[i * per + k]);
      if (rows.count(feats[i])) rows[feats[i]][type] = v;
    }
  }
  std::vector<uint64_t> shape;
  const std::vector<float> contrib = booster.predict(data, 2, shape);
  // (rows, features + 1) or (rows, classes, features + 1); the last column is the bias.
  const size_t width = names.size() + 1;
  const size_t groups = shape.empty() ? 0 : contrib.size() / width;
  std::vector<double> abs_sum(names.size(), 0.0);
  double bias = 0;
  for (size_t g = 0; g < groups; ++g) {
    for (size_t j = 0; j < names.size(); ++j) abs_sum[j] += std::fabs(static_cast<double>(contrib[g * width + j]));
    bias += static_cast<double>(contrib[g * width + names.size()]);
  }
  std::vector<nlohmann::json> features;
  for (size_t j = 0; j < names.size(); ++j) {
    nlohmann::json r = rows[names[j]];
    r["mean_abs_shap"] = groups ? abs_sum[j] / static_cast<double>(groups) : 0.0;
    features.push_back(r);
  }
  std::stable_sort(features.begin(), features.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a["mean_abs_shap"].get<double>() > b["mean_abs_shap"].get<double>();
  });
  return {{"rows", data.rows()}, {"bias", groups ? bias / static_cast<double>(groups) : 0.0}, {"features", features}};
}

}  // namespace

nlohmann::json xgboost(mlkit::Args& args, mlkit::Host& host) {
  args.only({"train", "valid", "label", "features", "exclude", "params", "rounds", "early_stopping_rounds", "seed",
             "nthread", "model", "explain"});
  const std::string train_arg = args.string("train");
  const std::string valid_arg = args.string("valid", "");
  const std::string label = args.string("label", "label");
  const std::vector<std::string> listed = args.strings("features"), exclude = args.strings("exclude");
  const nlohmann::json params = args.table("params");
  const int64_t rounds = args.integer("rounds", 100, 1, 100000);
  const int64_t patience = args.integer("early_stopping_rounds", 0, 0, 100000);
  const int64_t seed = args.integer("seed", 0, 0, 2147483647);
  const int64_t nthread = args.integer("nthread", 1, 1, 1024);
  const std::string model_arg = args.string("model", "model");
  const std::string explain_arg = args.string("explain", "");
  if (!listed.empty() && !exclude.empty()) throw BadArgs("give features or exclude, not both");
  if (patience > 0 && valid_arg.empty()) throw BadArgs("early_stopping_rounds needs valid (the data to watch)");
  for (const auto& [own, arg] : {std::pair{"seed", "seed"}, {"random_state", "seed"}, {"nthread", "nthread"}, {"n_jobs", "nthread"}})
    if (params.contains(own)) throw BadArgs(std::string("params.") + own + ": set it with the " + arg + " argument");
  std::vector<std::pair<std::string, std::string>> settings;
  for (auto it = params.begin(); it != params.end(); ++it)
    for (const std::string& v : param_values(it.key(), it.value())) settings.emplace_back(it.key(), v);
  const std::string model_path = host.output("model", model_arg);
  const std::string explain_path = explain_arg.empty() ? "" : host.output("explain", explain_arg);

  LogTo xgb_log(host);
  const Table train = Table::read(host.input(train_arg));
  const size_t label_col = train.require("label", label);
  if (train.rows() == 0) throw Failed(train.shown() + " has no rows");
  const Features features = pick_features(train, label_col, listed, exclude, host);
  DMatrix dtrain(train, features.train_columns, features.names);
  dtrain.set_labels(train.required_numbers(label_col));
  std::optional<Table> valid;
  std::optional<DMatrix> dvalid;
  if (!valid_arg.empty()) {
    valid.emplace(Table::read(host.input(valid_arg)));
    const size_t valid_label = valid->require("valid", label);
    std::vector<size_t> cols;
    for (const std::string& name : features.names) cols.push_back(valid->require("valid", name));
    if (valid->rows() == 0) throw Failed(valid->shown() + " has no rows");
    dvalid.emplace(*valid, cols, features.names);
    dvalid->set_labels(valid->required_numbers(valid_label));
  }
  host.info("training on " + std::to_string(dtrain.rows()) + " rows" +
            (dvalid ? ", validating on " + std::to_string(dvalid->rows()) : "") + "; features: " + join(features.names));

  std::vector<DMatrixHandle> sets{dtrain.get()};
  std::vector<const char*> set_names{"train"};
  if (dvalid) {
    sets.push_back(dvalid->get());
    set_names.push_back("valid");
  }
  Booster booster(sets);
  std::set<std::string> given;
  for (const auto& [k, v] : settings) given.insert(k);
  if (!given.count("objective")) settings.emplace_back("objective", "binary:logistic");
  if (!given.count("tree_method")) settings.emplace_back("tree_method", "hist");
  if (!given.count("validate_parameters")) settings.emplace_back("validate_parameters", "1");  // warn about unused params
  std::string objective;
  for (const auto& [k, v] : settings)
    if (k == "objective") objective = v;
  if (!given.count("eval_metric") && objective.rfind("binary:", 0) == 0) {
    settings.emplace_back("eval_metric", "logloss");
    settings.emplace_back("eval_metric", "auc");
  }
  settings.emplace_back("seed", std::to_string(seed));
  settings.emplace_back("nthread", std::to_string(nthread));
  for (const auto& [k, v] : settings) booster.set_param(k, v);
  booster.set_feature_names(features.names);

  std::vector<Scores> history;
  std::string watched;  // the metric early stopping watches: the last one on the last set
  int64_t best = 0;
  for (int64_t round = 0; round < rounds; ++round) {
    host.check_cancelled();
    const int it = static_cast<int>(round);
    check(XGBoosterUpdateOneIter(booster.get(), it, dtrain.get()), "training failed in round " + std::to_string(round));
    const char* out = nullptr;
    check(XGBoosterEvalOneIter(booster.get(), it, sets.data(), set_names.data(), sets.size(), &out), "evaluation failed");
    host.info(out);
    history.push_back(parse_eval(out, watched));
    for (const auto& [name, value] : history.back()) host.metric(name, value, round);
    if (patience == 0 || history.back().empty()) {
      best = round;
      continue;
    }
    const double now = history.back().back().second, then = history[static_cast<size_t>(best)].back().second;
    if (round == 0 || (maximized(watched) ? now > then : now < then)) best = round;
    if (round - best >= patience) {
      host.info("early stopping: no better " + history.back().back().first + " for " + std::to_string(patience) +
                " rounds; best round " + std::to_string(best));
      break;
    }
  }

  const int64_t done = static_cast<int64_t>(history.size());
  std::optional<Booster> sliced;
  if (best + 1 < done) {
    BoosterHandle h = nullptr;
    check(XGBoosterSlice(booster.get(), 0, static_cast<int>(best + 1), 1, &h), "cannot keep the best rounds");
    sliced.emplace(h);
    sliced->set_feature_names(features.names);
  }
  Booster& model = sliced ? *sliced : booster;
  if (patience > 0 && !history[static_cast<size_t>(best)].empty()) {
    model.set_attr("best_iteration", std::to_string(best));
    model.set_attr("best_score", engine::csv::format_number(history[static_cast<size_t>(best)].back().second));
  }
  mlkit::write_file(model_path, model.save_json(), model_arg);

  nlohmann::json values = {{"best_iteration", best},
                           {"rounds", best + 1},
                           {"n_train", dtrain.rows()},
                           {"n_features", features.names.size()},
                           {"features", join(features.names)}};
  if (dvalid) values["n_valid"] = dvalid->rows();
  for (const auto& [name, value] : history[static_cast<size_t>(best)]) values[name] = value;
  if (!explain_path.empty()) {
    const nlohmann::json e = explain(model, dtrain, features.names);
    mlkit::write_file(explain_path, e.dump(2) + "\n", explain_arg);
    if (!e["features"].empty()) values["top_feature"] = e["features"][0]["name"];
  }
  return values;
}

}  // namespace sluice::trainer
