// sluice.stats: descriptive statistics, histograms, PSI, the two-sample
// Kolmogorov-Smirnov test and chi-square tests over Lua arrays. The numbers
// come from engine/stats.h; this file checks arguments and converts values.
// Conventions follow numpy/scipy defaults (see docs/lua.md, "sluice.stats").
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/lua_stdlib.h"
#include "engine/stats.h"

namespace sluice::engine::lua {

namespace {

using stats::count_bins;
using stats::linspace_edges;
using stats::mean;
using stats::quantile_sorted;
using stats::sum;
using stats::variance;


std::vector<double> numbers(lua_State* L, int index, const char* fn, const char* what, size_t at_least) {
  std::vector<double> xs = check_numbers(L, index, fn, what);
  if (xs.size() < at_least)
    raise(L, fn, std::string(what) + " needs at least " + std::to_string(at_least) + " value" + (at_least == 1 ? "" : "s") +
                     ", has " + std::to_string(xs.size()));
  return xs;
}

void push_array(lua_State* L, const std::vector<double>& xs) {
  lua_createtable(L, static_cast<int>(xs.size()), 0);
  for (size_t i = 0; i < xs.size(); ++i) {
    lua_pushnumber(L, xs[i]);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
}

int l_sum(lua_State* L) {
  lua_pushnumber(L, sum(numbers(L, 1, "stats.sum", "xs", 0)));
  return 1;
}
int l_mean(lua_State* L) {
  lua_pushnumber(L, mean(numbers(L, 1, "stats.mean", "xs", 1)));
  return 1;
}
int l_variance(lua_State* L) {
  lua_pushnumber(L, variance(numbers(L, 1, "stats.variance", "xs", 2)));
  return 1;
}
int l_stddev(lua_State* L) {
  lua_pushnumber(L, std::sqrt(variance(numbers(L, 1, "stats.stddev", "xs", 2))));
  return 1;
}
int l_min(lua_State* L) {
  const auto xs = numbers(L, 1, "stats.min", "xs", 1);
  lua_pushnumber(L, *std::min_element(xs.begin(), xs.end()));
  return 1;
}
int l_max(lua_State* L) {
  const auto xs = numbers(L, 1, "stats.max", "xs", 1);
  lua_pushnumber(L, *std::max_element(xs.begin(), xs.end()));
  return 1;
}

double check_q(lua_State* L, const char* fn, double q) {
  if (!(q >= 0 && q <= 1)) raise(L, fn, "q = " + format_number(q) + " is not in [0, 1]");
  return q;
}

// quantile(xs, q) with q a number or an array of numbers.
int l_quantile(lua_State* L) {
  auto xs = numbers(L, 1, "stats.quantile", "xs", 1);
  std::sort(xs.begin(), xs.end());
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_pushnumber(L, quantile_sorted(xs, check_q(L, "stats.quantile", lua_tonumber(L, 2))));
    return 1;
  }
  const auto qs = check_numbers(L, 2, "stats.quantile", "q");
  std::vector<double> out;
  for (double q : qs) out.push_back(quantile_sorted(xs, check_q(L, "stats.quantile", q)));
  push_array(L, out);
  return 1;
}

int l_median(lua_State* L) {
  auto xs = numbers(L, 1, "stats.median", "xs", 1);
  std::sort(xs.begin(), xs.end());
  lua_pushnumber(L, quantile_sorted(xs, 0.5));
  return 1;
}

// histogram(xs [, bins]) -> counts, edges. bins: a count (default 10; equal
// widths over [min, max]) or an array of increasing edges.
int l_histogram(lua_State* L) {
  const auto xs = numbers(L, 1, "stats.histogram", "xs", 0);
  std::vector<double> edges;
  if (lua_istable(L, 2)) {
    edges = check_numbers(L, 2, "stats.histogram", "bins");
    if (edges.size() < 2) raise(L, "stats.histogram", "bins needs at least 2 edges");
    for (size_t i = 1; i < edges.size(); ++i)
      if (!(edges[i] >= edges[i - 1])) raise(L, "stats.histogram", "bins must increase monotonically");
  } else {
    const double bins = luaL_optnumber(L, 2, 10);
    if (!(bins >= 1 && bins <= 1e7) || bins != std::floor(bins))
      raise(L, "stats.histogram", "bins must be a whole number >= 1 or an array of edges");
    double lo = 0, hi = 1;
    if (!xs.empty()) {
      lo = *std::min_element(xs.begin(), xs.end());
      hi = *std::max_element(xs.begin(), xs.end());
    }
    if (!std::isfinite(lo) || !std::isfinite(hi)) raise(L, "stats.histogram", "xs contains an infinite value");
    if (lo == hi) {
      lo -= 0.5;
      hi += 0.5;
    }
    edges = linspace_edges(lo, hi, static_cast<size_t>(bins));
  }
  push_array(L, count_bins(xs, edges));
  push_array(L, edges);
  return 2;
}

// psi(expected, actual [, bins | {bins = 10, epsilon = 1e-4}]) -> psi, details
int l_psi(lua_State* L) {
  auto expected = numbers(L, 1, "stats.psi", "expected", 1);
  const auto actual = numbers(L, 2, "stats.psi", "actual", 1);
  double bins = 10, eps = 1e-4;
  if (lua_type(L, 3) == LUA_TNUMBER) {
    bins = lua_tonumber(L, 3);
  } else if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "bins");
    if (!lua_isnil(L, -1)) bins = luaL_checknumber(L, -1);
    lua_getfield(L, 3, "epsilon");
    if (!lua_isnil(L, -1)) eps = luaL_checknumber(L, -1);
    lua_pop(L, 2);
  } else if (!lua_isnoneornil(L, 3)) {
    raise(L, "stats.psi", "the third argument is a bin count or {bins = n, epsilon = e}");
  }
  if (!(bins >= 1 && bins <= 1e6) || bins != std::floor(bins)) raise(L, "stats.psi", "bins must be a whole number >= 1");
  if (!(eps > 0 && eps < 1)) raise(L, "stats.psi", "epsilon must be in (0, 1)");
  const stats::Psi r = stats::psi(std::move(expected), actual, static_cast<size_t>(bins), eps);
  lua_pushnumber(L, r.psi);
  lua_createtable(L, 0, 3);
  push_array(L, r.edges);
  lua_setfield(L, -2, "edges");
  push_array(L, r.expected);
  lua_setfield(L, -2, "expected");
  push_array(L, r.actual);
  lua_setfield(L, -2, "actual");
  return 2;
}

// ks_2samp(a, b) -> statistic, pvalue, method ("exact" | "asymptotic")
int l_ks_2samp(lua_State* L) {
  auto a = numbers(L, 1, "stats.ks_2samp", "a", 1);
  auto b = numbers(L, 2, "stats.ks_2samp", "b", 1);
  const stats::Ks r = stats::ks_2samp(std::move(a), std::move(b));
  lua_pushnumber(L, r.statistic);
  lua_pushnumber(L, r.pvalue);
  lua_pushstring(L, r.exact ? "exact" : "asymptotic");
  return 3;
}

// chi2(observed [, expected]) -> statistic, pvalue, dof (scipy.stats.chisquare;
// expected defaults to uniform and must have observed's total).
int l_chi2(lua_State* L) {
  const auto obs = numbers(L, 1, "stats.chi2", "observed", 1);
  std::vector<double> exp;
  if (lua_isnoneornil(L, 2)) {
    exp.assign(obs.size(), mean(obs));
  } else {
    exp = numbers(L, 2, "stats.chi2", "expected", 1);
    if (exp.size() != obs.size())
      raise(L, "stats.chi2", "observed has " + std::to_string(obs.size()) + " values, expected " + std::to_string(exp.size()));
    const double so = sum(obs), se = sum(exp);
    if (std::fabs(so - se) / std::min(so, se) > 1e-8)
      raise(L, "stats.chi2", "observed and expected totals differ (" + format_number(so) + " and " + format_number(se) +
                                 "); scale expected to the same total");
  }
  for (size_t i = 0; i < obs.size(); ++i)
    if (!(exp[i] > 0)) raise(L, "stats.chi2", "expected[" + std::to_string(i + 1) + "] is not positive");
  const stats::Chi2 r = stats::chisquare(obs, exp);
  lua_pushnumber(L, r.statistic);
  lua_pushnumber(L, r.pvalue);
  lua_pushnumber(L, r.dof);
  return 3;
}

// chi2_contingency(table [, {correction = true}]) -> statistic, pvalue, dof,
// expected (scipy.stats.chi2_contingency: Yates' correction when dof is 1).
int l_chi2_contingency(lua_State* L) {
  const char* fn = "stats.chi2_contingency";
  if (!lua_istable(L, 1)) raise(L, fn, "table must be an array of rows");
  bool correction = true;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "correction");
    if (!lua_isnil(L, -1)) correction = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  const size_t r = lua_objlen(L, 1);
  if (r == 0) raise(L, fn, "table has no rows");
  std::vector<std::vector<double>> obs;
  for (size_t i = 1; i <= r; ++i) {
    lua_rawgeti(L, 1, static_cast<int>(i));
    const std::string what = "table[" + std::to_string(i) + "]";
    obs.push_back(numbers(L, lua_gettop(L), fn, what.c_str(), 1));
    lua_pop(L, 1);
    if (obs.back().size() != obs.front().size()) raise(L, fn, "rows have different lengths");
    for (double v : obs.back())
      if (v < 0) raise(L, fn, "observed counts must not be negative");
  }
  const stats::Contingency t = stats::chi2_contingency(obs, correction);
  for (size_t i = 0; i < r; ++i)
    for (size_t j = 0; j < t.expected[i].size(); ++j)
      if (!(t.expected[i][j] > 0))
        raise(L, fn, "the expected frequency at [" + std::to_string(i + 1) + "][" + std::to_string(j + 1) + "] is zero");
  lua_pushnumber(L, t.statistic);
  lua_pushnumber(L, t.pvalue);
  lua_pushnumber(L, t.dof);
  lua_createtable(L, static_cast<int>(r), 0);
  for (size_t i = 0; i < r; ++i) {
    push_array(L, t.expected[i]);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 4;
}

}  // namespace

void add_stats(lua_State* L) {
  lua_newtable(L);
  const struct {
    const char* name;
    lua_CFunction fn;
  } fns[] = {{"sum", l_sum},           {"mean", l_mean},         {"variance", l_variance}, {"stddev", l_stddev},
             {"min", l_min},           {"max", l_max},           {"quantile", l_quantile}, {"median", l_median},
             {"histogram", l_histogram}, {"psi", l_psi},         {"ks_2samp", l_ks_2samp}, {"chi2", l_chi2},
             {"chi2_contingency", l_chi2_contingency}};
  for (const auto& f : fns) {
    lua_pushcfunction(L, f.fn);
    lua_setfield(L, -2, f.name);
  }
  lua_setfield(L, -2, "stats");
}

}  // namespace sluice::engine::lua
