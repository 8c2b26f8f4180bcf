// trainer.evaluate: the quality of a scored CSV (labels and probabilities):
// AUC, log-loss, Brier score, precision and recall at k (overall or within
// groups), threshold metrics and a calibration table, as values and a JSON report.
#include "plugins/mlkit/metrics.h"
#include "plugins/mlkit/summary.h"
#include "plugins/mlkit/table.h"
#include "plugins/trainer/actions.h"

namespace sluice::trainer {

nlohmann::json evaluate(mlkit::Args& args, mlkit::Host& host) {
  args.only({"scores", "label", "score", "k", "group_by", "bins", "cutoff", "report"});
  const std::string scores_arg = args.string("scores");
  const std::string label = args.string("label", "label");
  const std::string score = args.string("score", "score");
  const int64_t k = args.integer("k", 10, 1, 1000000000);
  const std::string group_by = args.string("group_by", "");
  const int64_t bins = args.integer("bins", 10, 1, 1000);
  const double cutoff = args.number("cutoff", 0.5, 0, 1);
  const std::string report_arg = args.string("report", "report");
  const std::string report_path = host.output("report", report_arg);

  const mlkit::Table t = mlkit::Table::read(host.input(scores_arg));
  const size_t label_col = t.require("label", label), score_col = t.require("score", score);
  const std::vector<std::string> groups = group_by.empty() ? std::vector<std::string>{} : t.column(t.require("group_by", group_by));
  const std::vector<int> labels = t.binary_labels(label_col);
  const std::vector<double> scores = t.probabilities(score_col);
  nlohmann::json values = mlkit::binary_summary(labels, scores, cutoff);
  if (!values.contains("auc")) throw mlkit::Failed(mlkit::one_class_message(t.shown(), label, labels, "AUC"));

  const mlkit::AtK at = mlkit::at_k(labels, scores, static_cast<size_t>(k), groups);
  values["k"] = at.k;
  values["precision_at_k"] = at.precision;
  values["recall_at_k"] = at.recall;
  const mlkit::Calibration cal = mlkit::calibration(labels, scores, static_cast<size_t>(bins));
  values["ece"] = cal.ece;
  for (auto it = values.begin(); it != values.end(); ++it)
    if (it.value().is_number_float()) host.metric(it.key(), it.value().get<double>());

  nlohmann::json report = values;
  report["cutoff"] = cutoff;
  if (!group_by.empty()) {
    report["group_by"] = group_by;
    report["groups"] = at.groups;
  }
  nlohmann::json table = nlohmann::json::array();
  for (const mlkit::CalibrationBin& b : cal.bins) {
    nlohmann::json row = {{"lower", b.lower}, {"upper", b.upper}, {"count", b.count}};
    if (b.count) {
      row["mean_score"] = b.mean_score;
      row["fraction_positive"] = b.fraction_positive;
    }
    table.push_back(row);
  }
  report["calibration"] = table;
  mlkit::write_file(report_path, report.dump(2) + "\n", report_arg);
  host.info("auc " + values["auc"].dump() + ", precision@" + std::to_string(at.k) + " " + values["precision_at_k"].dump());
  return values;
}

}  // namespace sluice::trainer
