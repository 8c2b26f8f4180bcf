#include "plugins/mlkit/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "engine/stats.h"

namespace sluice::mlkit {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double ratio(size_t a, size_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : kNaN; }

// Rows ordered by score, highest first; ties keep row order.
std::vector<size_t> by_score(const std::vector<double>& scores, const std::vector<size_t>& rows) {
  std::vector<size_t> order = rows;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

}  // namespace

double roc_auc(const std::vector<int>& labels, const std::vector<double>& scores) {
  const size_t n = labels.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0;  // of the positives, ranks from 1, ties averaged
  size_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double avg = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t t = i; t < j; ++t)
      if (labels[order[t]]) {
        rank_sum += avg;
        ++positives;
      }
    i = j;
  }
  const size_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  const double p = static_cast<double>(positives);
  return (rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

double log_loss(const std::vector<int>& labels, const std::vector<double>& scores) {
  const double eps = std::numeric_limits<double>::epsilon();
  std::vector<double> terms(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    const double p = std::clamp(scores[i], eps, 1 - eps);
    terms[i] = -(labels[i] ? std::log(p) : std::log(1 - p));
  }
  return engine::stats::mean(terms);
}

double brier(const std::vector<int>& labels, const std::vector<double>& scores) {
  std::vector<double> terms(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) terms[i] = (scores[i] - labels[i]) * (scores[i] - labels[i]);
  return engine::stats::mean(terms);
}

double Confusion::accuracy() const { return ratio(tp + tn, tp + tn + fp + fn); }
double Confusion::precision() const { return tp + fp ? ratio(tp, tp + fp) : 0.0; }
double Confusion::recall() const { return ratio(tp, tp + fn); }
double Confusion::f1() const {
  const double p = precision(), r = recall();
  return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}
double Confusion::fpr() const { return ratio(fp, fp + tn); }
double Confusion::positive_rate() const { return ratio(tp + fp, tp + tn + fp + fn); }

Confusion confusion(const std::vector<int>& labels, const std::vector<double>& scores, double cutoff) {
  Confusion c;
  for (size_t i = 0; i < labels.size(); ++i) {
    const bool predicted = scores[i] >= cutoff;
    if (labels[i])
      ++(predicted ? c.tp : c.fn);
    else
      ++(predicted ? c.fp : c.tn);
  }
  return c;
}

AtK at_k(const std::vector<int>& labels, const std::vector<double>& scores, size_t k, const std::vector<std::string>& groups) {
  AtK r;
  auto one = [&](const std::vector<size_t>& rows, size_t& hits, size_t& positives, size_t& used) {
    const std::vector<size_t> order = by_score(scores, rows);
    used = std::min(k, order.size());
    hits = 0;
    for (size_t i = 0; i < used; ++i) hits += static_cast<size_t>(labels[order[i]]);
    positives = 0;
    for (size_t row : rows) positives += static_cast<size_t>(labels[row]);
  };
  if (groups.empty()) {
    std::vector<size_t> rows(labels.size());
    std::iota(rows.begin(), rows.end(), 0);
    size_t hits = 0, positives = 0;
    one(rows, hits, positives, r.k);
    r.precision = ratio(hits, r.k);
    r.recall = ratio(hits, positives);
    return r;
  }
  std::map<std::string, std::vector<size_t>> by_group;
  for (size_t i = 0; i < groups.size(); ++i) by_group[groups[i]].push_back(i);
  std::vector<double> precisions, recalls;
  for (const auto& [key, rows] : by_group) {
    size_t hits = 0, positives = 0, used = 0;
    one(rows, hits, positives, used);
    precisions.push_back(ratio(hits, used));
    if (positives) recalls.push_back(ratio(hits, positives));
  }
  r.k = k;
  r.groups = by_group.size();
  r.precision = precisions.empty() ? kNaN : engine::stats::mean(precisions);
  r.recall = recalls.empty() ? kNaN : engine::stats::mean(recalls);
  return r;
}

Calibration calibration(const std::vector<int>& labels, const std::vector<double>& scores, size_t bins) {
  const std::vector<double> edges = engine::stats::linspace_edges(0, 1, bins);
  const std::vector<double> inner(edges.begin() + 1, edges.end() - 1);
  Calibration c;
  c.bins.resize(bins);
  std::vector<std::vector<double>> sums(bins), hits(bins);
  for (size_t i = 0; i < scores.size(); ++i) {
    const size_t b = static_cast<size_t>(std::lower_bound(inner.begin(), inner.end(), scores[i]) - inner.begin());
    sums[b].push_back(scores[i]);
    hits[b].push_back(labels[i]);
  }
  std::vector<double> gaps;
  for (size_t b = 0; b < bins; ++b) {
    CalibrationBin& bin = c.bins[b];
    bin.lower = edges[b];
    bin.upper = edges[b + 1];
    bin.count = sums[b].size();
    if (!bin.count) continue;
    bin.mean_score = engine::stats::mean(sums[b]);
    bin.fraction_positive = engine::stats::mean(hits[b]);
    gaps.push_back(static_cast<double>(bin.count) * std::fabs(bin.fraction_positive - bin.mean_score));
  }
  c.ece = scores.empty() ? 0.0 : engine::stats::sum(gaps) / static_cast<double>(scores.size());
  return c;
}

double rmse(const std::vector<double>& truth, const std::vector<double>& predicted) {
  std::vector<double> sq(truth.size());
  for (size_t i = 0; i < truth.size(); ++i) sq[i] = (truth[i] - predicted[i]) * (truth[i] - predicted[i]);
  return std::sqrt(engine::stats::mean(sq));
}

double mae(const std::vector<double>& truth, const std::vector<double>& predicted) {
  std::vector<double> ab(truth.size());
  for (size_t i = 0; i < truth.size(); ++i) ab[i] = std::fabs(truth[i] - predicted[i]);
  return engine::stats::mean(ab);
}

}  // namespace sluice::mlkit
