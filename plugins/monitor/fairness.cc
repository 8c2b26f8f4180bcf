// monitor.fairness: per-group outcome rates of a scored, labelled batch and
// how far apart they are. For each criterion (positive_rate, tpr, fpr,
// accuracy) the disparity ratio is min / max over the groups with at least
// min_count rows and a defined rate; the batch is fair when every chosen
// criterion's ratio is at least the threshold (0.8: the four-fifths rule).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "plugins/mlkit/metrics.h"
#include "plugins/mlkit/table.h"
#include "plugins/monitor/actions.h"

namespace sluice::monitor {

namespace {

struct Group {
  std::string name;
  size_t count = 0, positives = 0;
  mlkit::Confusion c;
  double auc = std::numeric_limits<double>::quiet_NaN();
  double rate(const std::string& criterion) const {
    if (criterion == "positive_rate") return c.positive_rate();
    if (criterion == "tpr") return c.recall();
    if (criterion == "fpr") return c.fpr();
    return c.accuracy();
  }
};

nlohmann::json number_or_null(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

struct Disparity {
  bool defined = false;
  double ratio = 1, lo = 0, hi = 0;
  std::string worst;  // the group with the lowest rate (the highest for fpr)
};

Disparity disparity(const std::vector<Group>& groups, const std::string& criterion, size_t min_count) {
  Disparity d;
  for (const Group& g : groups) {
    const double v = g.rate(criterion);
    if (g.count < min_count || std::isnan(v)) continue;
    const bool worse = criterion == "fpr" ? v > d.hi : v < d.lo;
    if (!d.defined || worse) d.worst = g.name;
    if (!d.defined) {
      d.lo = d.hi = v;
      d.defined = true;
    }
    d.lo = std::min(d.lo, v);
    d.hi = std::max(d.hi, v);
  }
  d.ratio = d.hi > 0 ? d.lo / d.hi : 1.0;
  return d;
}

}  // namespace

nlohmann::json fairness(mlkit::Args& args, mlkit::Host& host) {
  args.only({"data", "group", "label", "score", "cutoff", "threshold", "criteria", "min_count", "report"});
  const std::string data_arg = args.string("data");
  const std::string group = args.string("group");
  const std::string label = args.string("label", "label");
  const std::string score = args.string("score", "score");
  const double cutoff = args.number("cutoff", 0.5, 0, 1);
  const double threshold = args.number("threshold", 0.8, 0, 1);
  std::vector<std::string> criteria = args.strings("criteria");
  if (criteria.empty()) criteria = {"positive_rate", "tpr"};
  for (const std::string& c : criteria)
    if (c != "positive_rate" && c != "tpr" && c != "fpr" && c != "accuracy")
      throw mlkit::BadArgs("criteria: '" + c + "' is not one of positive_rate, tpr, fpr, accuracy");
  const size_t min_count = static_cast<size_t>(args.integer("min_count", 1, 1, 1000000000));
  const std::string report_arg = args.string("report", "report");
  const std::string report_path = host.output("report", report_arg);

  const mlkit::Table t = mlkit::Table::read(host.input(data_arg));
  const size_t group_col = t.require("group", group), label_col = t.require("label", label), score_col = t.require("score", score);
  if (t.rows() == 0) throw mlkit::Failed(t.shown() + " has no rows");
  const std::vector<int> labels = t.binary_labels(label_col);
  const std::vector<double> scores = t.probabilities(score_col);
  std::map<std::string, std::vector<size_t>> rows_of;
  for (size_t r = 0; r < t.rows(); ++r) rows_of[t.cell(group_col, r)].push_back(r);
  std::vector<Group> groups;
  for (const auto& [name, rows] : rows_of) {
    Group g;
    g.name = name;
    g.count = rows.size();
    std::vector<int> l;
    std::vector<double> s;
    for (size_t r : rows) {
      l.push_back(labels[r]);
      s.push_back(scores[r]);
      g.positives += static_cast<size_t>(labels[r]);
    }
    g.c = mlkit::confusion(l, s, cutoff);
    g.auc = mlkit::roc_auc(l, s);
    groups.push_back(g);
  }
  size_t eligible = 0;
  for (const Group& g : groups) eligible += g.count >= min_count;
  if (eligible == 0) throw mlkit::Failed("no group of '" + group + "' has min_count = " + std::to_string(min_count) + " rows");
  if (eligible == 1) host.warn("only one group of '" + group + "' has min_count rows: nothing to compare");

  nlohmann::json ratios = nlohmann::json::object();
  double min_ratio = 1;
  std::string worst_group, worst_criterion;
  for (const std::string& c : criteria) {
    const Disparity d = disparity(groups, c, min_count);
    if (!d.defined) {
      host.warn(c + " is not defined for any group with min_count rows");
      continue;
    }
    ratios[c] = {{"ratio", d.ratio}, {"min", d.lo}, {"max", d.hi}, {"worst_group", d.worst}};
    host.metric("ratio_" + c, d.ratio);
    if (worst_criterion.empty() || d.ratio < min_ratio) {
      min_ratio = d.ratio;
      worst_group = d.worst;
      worst_criterion = c;
    }
  }
  if (worst_criterion.empty()) throw mlkit::Failed("none of the criteria is defined for the groups of '" + group + "'");
  const Disparity pr = disparity(groups, "positive_rate", min_count), tpr = disparity(groups, "tpr", min_count),
                  fpr = disparity(groups, "fpr", min_count);
  const bool fair = min_ratio >= threshold;

  nlohmann::json values = {{"fair", fair},
                           {"min_ratio", min_ratio},
                           {"worst_group", worst_group},
                           {"worst_criterion", worst_criterion},
                           {"groups", eligible},
                           {"disparate_impact_ratio", pr.ratio},
                           {"demographic_parity_difference", pr.hi - pr.lo}};
  if (tpr.defined) values["equal_opportunity_difference"] = tpr.hi - tpr.lo;
  if (tpr.defined && fpr.defined) values["equalized_odds_difference"] = std::max(tpr.hi - tpr.lo, fpr.hi - fpr.lo);
  host.metric("min_ratio", min_ratio);
  host.info(std::string(fair ? "fair" : "not fair") + ": lowest ratio " + nlohmann::json(min_ratio).dump() + " (" + worst_criterion +
            ", group " + worst_group + ") against the threshold " + nlohmann::json(threshold).dump());

  nlohmann::json per_group = nlohmann::json::array();
  for (const Group& g : groups)
    per_group.push_back({{"group", g.name},
                         {"count", g.count},
                         {"positives", g.positives},
                         {"base_rate", static_cast<double>(g.positives) / static_cast<double>(g.count)},
                         {"positive_rate", number_or_null(g.c.positive_rate())},
                         {"tpr", number_or_null(g.c.recall())},
                         {"fpr", number_or_null(g.c.fpr())},
                         {"accuracy", number_or_null(g.c.accuracy())},
                         {"auc", number_or_null(g.auc)},
                         {"compared", g.count >= min_count}});
  nlohmann::json report = values;
  report["data"] = t.shown();
  report["group_column"] = group;
  report["cutoff"] = cutoff;
  report["threshold"] = threshold;
  report["min_count"] = min_count;
  report["criteria"] = criteria;
  report["ratios"] = ratios;
  report["per_group"] = per_group;
  mlkit::write_file(report_path, report.dump(2) + "\n", report_arg);
  return values;
}

}  // namespace sluice::monitor
