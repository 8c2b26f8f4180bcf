#pragma once
// Model-quality metrics over labels and scores, following scikit-learn's
// definitions (the tests check them against it): binary labels are 0/1,
// scores are probabilities of the positive class. Pure functions.
#include <cstddef>
#include <string>
#include <vector>

namespace sluice::mlkit {

// sklearn.metrics.roc_auc_score: the Mann-Whitney statistic with tied scores
// sharing their average rank. NaN when only one class is present.
double roc_auc(const std::vector<int>& labels, const std::vector<double>& scores);
// sklearn.metrics.log_loss (scores clipped to [eps, 1 - eps], eps the double
// machine epsilon as sklearn's "auto" for float64).
double log_loss(const std::vector<int>& labels, const std::vector<double>& scores);
// sklearn.metrics.brier_score_loss.
double brier(const std::vector<int>& labels, const std::vector<double>& scores);

// Counts at a cutoff: a row is predicted positive when score >= cutoff.
struct Confusion {
  size_t tp = 0, fp = 0, tn = 0, fn = 0;
  double accuracy() const;
  double precision() const;  // 0 when nothing is predicted positive (sklearn's zero_division)
  double recall() const;     // = TPR; NaN without positives
  double f1() const;         // 0 when precision + recall is 0
  double fpr() const;        // NaN without negatives
  double positive_rate() const;  // share predicted positive
};
Confusion confusion(const std::vector<int>& labels, const std::vector<double>& scores, double cutoff);

// The k highest scores (ties keep row order): precision = hits / k, recall =
// hits / positives (NaN without positives). With `groups` (one key per row;
// empty for none) both are computed within each group, k capped at the
// group's size, and averaged: precision over all groups, recall over the
// groups with a positive.
struct AtK {
  double precision = 0, recall = 0;
  size_t k = 0;       // the k used (capped at the row count without groups)
  size_t groups = 0;  // groups averaged for precision (0 without groups)
};
AtK at_k(const std::vector<int>& labels, const std::vector<double>& scores, size_t k, const std::vector<std::string>& groups);

// sklearn.calibration.calibration_curve(strategy="uniform") with the empty
// bins kept: `bins` equal-width bins over [0, 1]; a score on an inner edge
// belongs to the lower bin. ECE: the count-weighted mean |fraction_positive -
// mean_score| over non-empty bins.
struct CalibrationBin {
  double lower = 0, upper = 0;
  size_t count = 0;
  double mean_score = 0, fraction_positive = 0;  // 0 when empty
};
struct Calibration {
  std::vector<CalibrationBin> bins;
  double ece = 0;
};
Calibration calibration(const std::vector<int>& labels, const std::vector<double>& scores, size_t bins);

double rmse(const std::vector<double>& truth, const std::vector<double>& predicted);
double mae(const std::vector<double>& truth, const std::vector<double>& predicted);

}  // namespace sluice::mlkit
