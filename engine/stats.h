#pragma once
// Descriptive statistics, PSI, the two-sample Kolmogorov-Smirnov test and
// chi-square tests over plain vectors: the numeric core of `sluice.stats`
// (engine/lua_stats.cc) and of the monitor plugins. No Lua, no I/O; part of the
// sluice::data library. Conventions follow numpy/scipy defaults (docs/lua.md,
// "sluice.stats"). Callers check sizes and ranges; each function states what
// it needs.
#include <cstddef>
#include <vector>

namespace sluice::engine::stats {

// Neumaier's compensated sum.
double sum(const std::vector<double>& xs);
// Needs at least one value.
double mean(const std::vector<double>& xs);
// Sample variance (n - 1); needs at least two values.
double variance(const std::vector<double>& xs);

// numpy.quantile(method="linear") of sorted, non-empty data; q in [0, 1].
double quantile_sorted(const std::vector<double>& sorted, double q);

// numpy.linspace(lo, hi, bins + 1).
std::vector<double> linspace_edges(double lo, double hi, size_t bins);
// numpy.histogram counting: bins [e_i, e_i+1), the last one closed; values
// outside [e_0, e_n] are not counted. Needs at least two edges.
std::vector<double> count_bins(const std::vector<double>& xs, const std::vector<double>& edges);

// The population stability index of `actual` against `expected`. Bin edges are
// expected's quantiles at q = i/bins (duplicates merged); the outer bins are
// open, so every value falls in one; bins are [u_i, u_i+1) as numpy.digitize.
// Empty bins count as `epsilon`. Needs non-empty samples, bins >= 1.
struct Psi {
  double psi = 0;
  std::vector<double> edges;     // the interior edges that cut
  std::vector<double> expected;  // proportions per bin
  std::vector<double> actual;
};
Psi psi(std::vector<double> expected, const std::vector<double>& actual, size_t bins, double epsilon = 1e-4);
// The PSI term sum over matching proportions (zeros count as epsilon): the
// categorical form, one bin per category.
double psi_of_proportions(const std::vector<double>& expected, const std::vector<double>& actual, double epsilon = 1e-4);

// scipy.stats.ks_2samp(a, b) (two-sided, method "auto": exact when both
// samples have at most 10,000 values, else asymptotic). Non-empty samples.
struct Ks {
  double statistic = 0, pvalue = 1;
  bool exact = true;
};
Ks ks_2samp(std::vector<double> a, std::vector<double> b);

// The chi-square distribution's survival function (NaN for dof <= 0).
double chi2_sf(double statistic, double dof);

struct Chi2 {
  double statistic = 0, pvalue = 1, dof = 0;
};
// scipy.stats.chisquare(observed, expected): same sizes (>= 1), every expected
// count positive, equal totals.
Chi2 chisquare(const std::vector<double>& observed, const std::vector<double>& expected);

// scipy.stats.chi2_contingency(table, correction): Yates' correction when dof
// is 1 and `correction` is set. Rows of equal length, counts >= 0. `expected`
// is filled first; a zero in it (an all-zero row or column) makes the
// statistic meaningless, so callers check it.
struct Contingency {
  double statistic = 0, pvalue = 1, dof = 0;
  std::vector<std::vector<double>> expected;
};
Contingency chi2_contingency(const std::vector<std::vector<double>>& observed, bool correction = true);

}  // namespace sluice::engine::stats
