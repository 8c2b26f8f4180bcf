#pragma once
// The quality numbers of a scored table that trainer.evaluate and
// monitor.performance both report, as JSON values.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::mlkit {

// n, positives, auc (absent when one class is missing), logloss, brier, and
// at `cutoff`: accuracy, precision, recall, f1.
nlohmann::json binary_summary(const std::vector<int>& labels, const std::vector<double>& scores, double cutoff);

// "<file>: column '<label>' has only 0s: <what> needs both classes"
std::string one_class_message(const std::string& file, const std::string& label, const std::vector<int>& labels,
                              const std::string& what);

}  // namespace sluice::mlkit
