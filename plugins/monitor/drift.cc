// monitor.drift: compares each feature of a current batch with the reference
// it was trained on. Numeric features: PSI over the reference's quantile bins
// and the two-sample Kolmogorov-Smirnov test; categorical ones: PSI over the
// categories and the chi-square test of the 2 x k contingency table. A
// feature drifts when its PSI exceeds psi_threshold or its test's p-value is
// below p_value.
#include <algorithm>
#include <cmath>
#include <map>

#include "engine/stats.h"
#include "plugins/mlkit/table.h"
#include "plugins/monitor/actions.h"

namespace sluice::monitor {

namespace {

using mlkit::BadArgs;
using mlkit::Failed;
using mlkit::Table;

struct Options {
  size_t bins;
  double psi_threshold, p_value;
};

double null_rate(const Table& t, size_t c) {
  if (t.rows() == 0) return 0;
  size_t empty = 0;
  for (const std::string& s : t.column(c)) empty += s.find_first_not_of(" \t") == std::string::npos;
  return static_cast<double>(empty) / static_cast<double>(t.rows());
}

std::vector<double> present(const std::vector<double>& xs) {
  std::vector<double> out;
  for (double x : xs)
    if (!std::isnan(x)) out.push_back(x);
  return out;
}

// Fills psi / statistic / p_value / drifted of a numeric feature's report row.
void numeric(const Table& ref, size_t rc, const Table& cur, size_t cc, const Options& o, nlohmann::json& row) {
  const std::vector<double> a = present(ref.numbers(rc)), b = present(cur.numbers(cc));
  row["type"] = "numeric";
  if (a.empty() || b.empty()) {
    row["drifted"] = !a.empty();  // values that vanished are drift; none to begin with is nothing to compare
    row["note"] = a.empty() ? "no values in the reference" : "no values in the current batch";
    return;
  }
  const engine::stats::Psi p = engine::stats::psi(a, b, o.bins);
  const engine::stats::Ks ks = engine::stats::ks_2samp(a, b);
  row["psi"] = p.psi;
  row["test"] = "ks";
  row["statistic"] = ks.statistic;
  row["p_value"] = ks.pvalue;
  row["mean_reference"] = engine::stats::mean(a);
  row["mean_current"] = engine::stats::mean(b);
  row["bin_edges"] = p.edges;
  row["reference_share"] = p.expected;
  row["current_share"] = p.actual;
  row["drifted"] = p.psi > o.psi_threshold || ks.pvalue < o.p_value;
}

void categorical(const Table& ref, size_t rc, const Table& cur, size_t cc, const Options& o, nlohmann::json& row) {
  row["type"] = "categorical";
  std::map<std::string, std::pair<double, double>> counts;  // category -> (reference, current)
  double na = 0, nb = 0;
  for (const std::string& s : ref.column(rc))
    if (s.find_first_not_of(" \t") != std::string::npos) counts[s].first += 1, na += 1;
  for (const std::string& s : cur.column(cc))
    if (s.find_first_not_of(" \t") != std::string::npos) counts[s].second += 1, nb += 1;
  if (na == 0 || nb == 0) {
    row["drifted"] = na > 0;
    row["note"] = na == 0 ? "no values in the reference" : "no values in the current batch";
    return;
  }
  std::vector<double> pa, pb;
  std::vector<std::vector<double>> table(2);
  nlohmann::json cats = nlohmann::json::array(), unseen = nlohmann::json::array();
  for (const auto& [name, c] : counts) {
    pa.push_back(c.first / na);
    pb.push_back(c.second / nb);
    table[0].push_back(c.first);
    table[1].push_back(c.second);
    cats.push_back({{"category", name}, {"reference_share", pa.back()}, {"current_share", pb.back()}});
    if (c.first == 0) unseen.push_back(name);
  }
  const double psi = engine::stats::psi_of_proportions(pa, pb);
  const engine::stats::Contingency chi = engine::stats::chi2_contingency(table);
  row["psi"] = psi;
  row["test"] = "chi2";
  row["statistic"] = chi.statistic;
  row["p_value"] = chi.pvalue;
  row["categories"] = cats;
  row["new_categories"] = unseen;
  row["drifted"] = psi > o.psi_threshold || chi.pvalue < o.p_value;
}

}  // namespace

nlohmann::json drift(mlkit::Args& args, mlkit::Host& host) {
  args.only({"reference", "current", "features", "exclude", "categorical", "bins", "psi_threshold", "p_value", "report"});
  const std::string ref_arg = args.string("reference"), cur_arg = args.string("current");
  const std::vector<std::string> listed = args.strings("features"), exclude = args.strings("exclude");
  const std::vector<std::string> forced = args.strings("categorical");
  Options o;
  o.bins = static_cast<size_t>(args.integer("bins", 10, 2, 1000));
  o.psi_threshold = args.number("psi_threshold", 0.2, 0, 1e9);
  o.p_value = args.number("p_value", 0.01, 0, 1);
  const std::string report_arg = args.string("report", "report");
  if (!listed.empty() && !exclude.empty()) throw BadArgs("give features or exclude, not both");
  const std::string report_path = host.output("report", report_arg);

  const Table ref = Table::read(host.input(ref_arg));
  const Table cur = Table::read(host.input(cur_arg));
  if (ref.rows() == 0) throw Failed(ref.shown() + " has no rows");
  if (cur.rows() == 0) throw Failed(cur.shown() + " has no rows");
  std::vector<std::string> features;
  if (!listed.empty()) {
    for (const std::string& f : listed) {
      ref.require("features", f);
      cur.require("features", f);
      if (std::find(features.begin(), features.end(), f) != features.end()) throw BadArgs("features: '" + f + "' is listed twice");
      features.push_back(f);
    }
  } else {
    for (const std::string& e : exclude) ref.require("exclude", e);
    std::string missing;
    for (const std::string& c : ref.columns()) {
      if (std::find(exclude.begin(), exclude.end(), c) != exclude.end()) continue;
      if (cur.find(c))
        features.push_back(c);
      else
        missing += (missing.empty() ? "" : ", ") + c;
    }
    if (!missing.empty()) host.warn("not in " + cur.shown() + ", so not compared: " + missing);
    if (features.empty()) throw Failed(ref.shown() + " and " + cur.shown() + " have no column in common");
  }
  for (const std::string& f : forced)
    if (std::find(features.begin(), features.end(), f) == features.end())
      throw BadArgs("categorical: '" + f + "' is not one of the compared features");

  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::string> drifted;
  double max_psi = 0;
  std::string worst;
  for (const std::string& f : features) {
    host.check_cancelled();
    const size_t rc = *ref.find(f), cc = *cur.find(f);
    nlohmann::json row = {{"feature", f}, {"null_rate_reference", null_rate(ref, rc)}, {"null_rate_current", null_rate(cur, cc)}};
    const bool as_category = std::find(forced.begin(), forced.end(), f) != forced.end();
    if (!as_category && ref.is_numeric(rc) && cur.is_numeric(cc))
      numeric(ref, rc, cur, cc, o, row);
    else
      categorical(ref, rc, cur, cc, o, row);
    if (row.contains("psi")) {
      const double psi = row["psi"].get<double>();
      host.metric("psi_" + mlkit::key_of(f), psi);
      if (worst.empty() || psi > max_psi) {
        max_psi = psi;
        worst = f;
      }
    }
    if (row["drifted"].get<bool>()) drifted.push_back(f);
    host.info(f + ": " + (row.contains("psi") ? "psi " + row["psi"].dump() + ", p " + row["p_value"].dump() : row["note"].get<std::string>()) +
              (row["drifted"].get<bool>() ? " -> drifted" : ""));
    rows.push_back(std::move(row));
  }

  std::string list;
  for (const std::string& d : drifted) list += (list.empty() ? "" : ",") + d;
  nlohmann::json report = {{"reference", ref.shown()}, {"current", cur.shown()},       {"n_reference", ref.rows()},
                           {"n_current", cur.rows()},  {"bins", o.bins},           {"psi_threshold", o.psi_threshold},
                           {"p_value", o.p_value},     {"drift", !drifted.empty()}, {"drifted", drifted},
                           {"max_psi", max_psi},       {"features", rows}};
  if (!worst.empty()) report["worst_feature"] = worst;
  mlkit::write_file(report_path, report.dump(2) + "\n", report_arg);
  nlohmann::json values = {{"drift", !drifted.empty()}, {"drifted", list},         {"max_psi", max_psi},
                           {"n_features", features.size()}, {"n_reference", ref.rows()}, {"n_current", cur.rows()}};
  if (!worst.empty()) values["worst_feature"] = worst;
  return values;
}

}  // namespace sluice::monitor
