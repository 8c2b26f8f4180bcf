// monitor.performance: one quality metric of a scored, labelled batch held
// against a threshold — the decay check of a model in production.
#include <limits>
#include <optional>

#include "plugins/mlkit/metrics.h"
#include "plugins/mlkit/summary.h"
#include "plugins/mlkit/table.h"
#include "plugins/monitor/actions.h"

namespace sluice::monitor {

nlohmann::json performance(mlkit::Args& args, mlkit::Host& host) {
  args.only({"data", "label", "score", "metric", "threshold", "cutoff", "report"});
  const std::string data_arg = args.string("data");
  const std::string label = args.string("label", "label");
  const std::string score = args.string("score", "score");
  const std::string metric =
      args.choice("metric", "auc", {"auc", "accuracy", "precision", "recall", "f1", "logloss", "brier", "rmse", "mae"});
  const double inf = std::numeric_limits<double>::infinity();
  const std::optional<double> threshold_arg = args.optional_number("threshold", -inf, inf);
  if (!threshold_arg) throw mlkit::BadArgs("threshold is required");
  const double threshold = *threshold_arg;
  const double cutoff = args.number("cutoff", 0.5, 0, 1);
  const std::string report_arg = args.string("report", "report");
  const std::string report_path = host.output("report", report_arg);

  const mlkit::Table t = mlkit::Table::read(host.input(data_arg));
  const size_t label_col = t.require("label", label), score_col = t.require("score", score);
  if (t.rows() == 0) throw mlkit::Failed(t.shown() + " has no rows");
  nlohmann::json values;
  if (metric == "rmse" || metric == "mae") {
    const std::vector<double> truth = t.required_numbers(label_col), predicted = t.required_numbers(score_col);
    values = {{"n", t.rows()}, {"rmse", mlkit::rmse(truth, predicted)}, {"mae", mlkit::mae(truth, predicted)}};
  } else {
    const std::vector<int> labels = t.binary_labels(label_col);
    values = mlkit::binary_summary(labels, t.probabilities(score_col), cutoff);
    if (!values.contains(metric)) throw mlkit::Failed(mlkit::one_class_message(t.shown(), label, labels, metric));
  }
  for (auto it = values.begin(); it != values.end(); ++it)
    if (it.value().is_number_float()) host.metric(it.key(), it.value().get<double>());

  const double value = values[metric].get<double>();
  const bool higher_is_better = metric == "auc" || metric == "accuracy" || metric == "precision" || metric == "recall" || metric == "f1";
  const bool degraded = higher_is_better ? value < threshold : value > threshold;
  values["metric"] = metric;
  values["value"] = value;
  values["threshold"] = threshold;
  values["degraded"] = degraded;
  host.info(metric + " " + nlohmann::json(value).dump() + (degraded ? (higher_is_better ? " is below" : " is above") : " is within") +
            " the threshold " + nlohmann::json(threshold).dump() + (degraded ? ": degraded" : ""));
  nlohmann::json report = values;
  report["data"] = t.shown();
  if (metric != "rmse" && metric != "mae") report["cutoff"] = cutoff;
  mlkit::write_file(report_path, report.dump(2) + "\n", report_arg);
  return values;
}

}  // namespace sluice::monitor
