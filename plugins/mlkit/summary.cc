#include "plugins/mlkit/summary.h"

#include <cmath>

#include "plugins/mlkit/metrics.h"

namespace sluice::mlkit {

nlohmann::json binary_summary(const std::vector<int>& labels, const std::vector<double>& scores, double cutoff) {
  size_t positives = 0;
  for (int l : labels) positives += static_cast<size_t>(l);
  nlohmann::json v = {{"n", labels.size()}, {"positives", positives}};
  if (labels.empty()) return v;
  const double auc = roc_auc(labels, scores);
  if (!std::isnan(auc)) v["auc"] = auc;
  v["logloss"] = log_loss(labels, scores);
  v["brier"] = brier(labels, scores);
  const Confusion c = confusion(labels, scores, cutoff);
  v["accuracy"] = c.accuracy();
  v["precision"] = c.precision();
  if (positives) v["recall"] = c.recall();
  v["f1"] = c.f1();
  return v;
}

std::string one_class_message(const std::string& file, const std::string& label, const std::vector<int>& labels,
                              const std::string& what) {
  if (labels.empty()) return file + " has no rows: " + what + " needs both classes";
  return file + ": column '" + label + "' has only " + (labels.front() == 1 ? "1s" : "0s") + ": " + what + " needs both classes";
}

}  // namespace sluice::mlkit
