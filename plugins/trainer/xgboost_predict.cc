// trainer.predict: scores a CSV with an XGBoost model. The output is the input
// with a score column added (or replaced), and optionally one SHAP
// contribution column per feature.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "engine/stats.h"
#include "plugins/mlkit/table.h"
#include "plugins/trainer/actions.h"
#include "plugins/trainer/xgb.h"

namespace sluice::trainer {

namespace {

using mlkit::BadArgs;
using mlkit::Failed;
using mlkit::Table;

std::string read_bytes(const std::string& path, const std::string& shown) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Failed("cannot read " + shown + ": " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

nlohmann::json predict(mlkit::Args& args, mlkit::Host& host) {
  args.only({"model", "data", "output", "column", "contributions", "features", "nthread"});
  const std::string model_arg = args.string("model");
  const std::string data_arg = args.string("data");
  const std::string output_arg = args.string("output", "predictions");
  const std::string column = args.string("column", "score");
  const bool contributions = args.boolean("contributions", false);
  std::vector<std::string> features = args.strings("features");
  const int64_t nthread = args.integer("nthread", 1, 1, 1024);
  if (column.empty()) throw BadArgs("column must not be empty");
  const std::string output_path = host.output("output", output_arg);

  LogTo xgb_log(host);
  Booster booster;
  const mlkit::Host::File model = host.input(model_arg);
  booster.load(read_bytes(model.path, model.shown), model.shown);
  booster.set_param("nthread", std::to_string(nthread));
  const std::vector<std::string> named = booster.feature_names();
  if (features.empty()) features = named;
  if (features.empty())
    throw Failed(model.shown + " names no features: give features = [...] in the order the model was trained on");
  if (features.size() != booster.num_features())
    throw BadArgs("features: the model has " + std::to_string(booster.num_features()) + " features, " +
                  std::to_string(features.size()) + " are named");

  const Table data = Table::read(host.input(data_arg));
  std::vector<size_t> cols;
  for (const std::string& f : features) cols.push_back(data.require("data", f));
  const DMatrix matrix(data, cols, features);
  host.check_cancelled();
  std::vector<uint64_t> shape;
  const std::vector<float> scores = booster.predict(matrix, 0, shape);
  const size_t n = data.rows();
  const size_t per_row = n ? scores.size() / n : 1;  // one score, or one per class
  std::vector<std::string> score_names;
  for (size_t k = 0; k < per_row; ++k) score_names.push_back(per_row == 1 ? column : column + "_" + std::to_string(k));
  std::vector<float> contrib;
  size_t contrib_width = 0;
  std::vector<std::string> contrib_names;
  if (contributions) {
    if (per_row != 1) throw BadArgs("contributions: only for models with one output (this one has " + std::to_string(per_row) + ")");
    contrib = booster.predict(matrix, 2, shape);
    contrib_width = features.size() + 1;
    for (const std::string& f : features) contrib_names.push_back("contrib_" + f);
    contrib_names.push_back("contrib_bias");
  }

  // The input's columns, with a column of the same name replaced in place.
  std::vector<std::string> header = data.columns();
  std::vector<std::optional<size_t>> replaced(header.size());  // input column -> score index
  std::vector<std::string> appended;
  std::vector<size_t> appended_scores;
  for (size_t k = 0; k < score_names.size(); ++k) {
    if (auto c = data.find(score_names[k])) {
      replaced[*c] = k;
      host.info("replacing the column '" + score_names[k] + "' of " + data.shown());
    } else {
      appended.push_back(score_names[k]);
      appended_scores.push_back(k);
    }
  }
  for (const std::string& a : appended) header.push_back(a);
  for (const std::string& c : contrib_names) {
    if (data.find(c)) throw BadArgs("contributions: " + data.shown() + " already has a column '" + c + "'");
    header.push_back(c);
  }

  mlkit::CsvWriter out(output_path, output_arg);
  {
    std::vector<std::string_view> fields(header.begin(), header.end());
    out.row(fields);
  }
  std::vector<std::string> texts;
  std::vector<std::string_view> fields;
  std::vector<double> firsts;
  for (size_t r = 0; r < n; ++r) {
    if ((r & 4095) == 0) host.check_cancelled();
    texts.clear();
    for (size_t k = 0; k < per_row; ++k) texts.push_back(format_float(scores[r * per_row + k]));
    for (size_t j = 0; j < contrib_width; ++j) texts.push_back(format_float(contrib[r * contrib_width + j]));
    fields.clear();
    for (size_t c = 0; c < data.columns().size(); ++c)
      fields.push_back(replaced[c] ? std::string_view(texts[*replaced[c]]) : std::string_view(data.cell(c, r)));
    for (size_t k : appended_scores) fields.push_back(texts[k]);
    for (size_t j = 0; j < contrib_width; ++j) fields.push_back(texts[per_row + j]);
    out.row(fields);
    firsts.push_back(static_cast<double>(scores[r * per_row]));
  }
  out.finish();
  nlohmann::json values = {{"rows", n}, {"column", column}};
  if (per_row == 1 && n > 0) values["mean_score"] = engine::stats::mean(firsts);
  return values;
}

}  // namespace sluice::trainer
