// The numeric core of sluice.stats and the monitor plugins (see stats.h).
#include "engine/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <utility>

namespace sluice::engine::stats {

namespace {

constexpr double kPi = 3.14159265358979323846;

// log Γ(x) without touching the global `signgam` (hosts run in many threads).
double log_gamma(double x) {
  int sign = 0;
  return ::lgamma_r(x, &sign);
}

// --- special functions ---

// The regularised upper incomplete gamma function Q(a, x): a series below
// x = a + 1, a continued fraction (modified Lentz) above.
double gamma_q(double a, double x) {
  if (x <= 0) return 1;
  const double log_front = -x + a * std::log(x) - log_gamma(a);
  if (x < a + 1) {
    double ap = a, del = 1 / a, sum = del;
    for (int i = 0; i < 100000; ++i) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (std::fabs(del) < std::fabs(sum) * 1e-17) break;
    }
    return 1 - sum * std::exp(log_front);
  }
  constexpr double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 100000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-17) break;
  }
  return std::exp(log_front) * h;
}



// --- Kolmogorov-Smirnov ---

// P(D_{n,n} >= h/n) for two samples of equal size n: the reflection formula
// 2 * sum_k (-1)^(k+1) C(2n, n - kh) / C(2n, n), evaluated as nested products
// (Horner-like) to avoid cancellation.
double ks_equal_sizes(int64_t n, int64_t h) {
  double p = 0;
  for (int64_t k = n / h; k >= 0; --k) {
    double term = 1;
    for (int64_t j = 0; j < h; ++j)
      term = static_cast<double>(n - k * h - j) * term / static_cast<double>(n + k * h + j + 1);
    p = term * (1 - p);
  }
  return 2 * p;
}

// P(D_{m,n} >= h / lcm(m, n)): one minus the share of lattice paths from (0,0)
// to (m,n) that stay strictly inside |x/m - y/n| < h/lcm, counted column by
// column in the form that yields 1 - p directly (Hodges 1958; Viehmann 2021,
// arXiv:2102.08037). Only the window of rows inside the band is kept.
double ks_unequal_sizes(int64_t m, int64_t n, int64_t g, int64_t h) {
  if (m < n) std::swap(m, n);
  const int64_t mg = m / g, ng = n / g;
  auto ceil_div = [](int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); };
  auto floor_div = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
  int64_t lo = 0, hi = std::min(ceil_div(h, mg), n + 1);
  int64_t len = hi - lo;
  std::vector<double> col(static_cast<size_t>(std::min(2 * hi + 2, n + 1)), 1.0);
  std::fill(col.begin() + lo, col.begin() + hi, 0.0);
  for (int64_t i = 1; i <= m; ++i) {
    const int64_t prev_lo = lo, prev_len = len;
    lo = std::min(std::max(floor_div(ng * i - h, mg) + 1, int64_t{0}), n);
    hi = std::min(ceil_div(ng * i + h, mg), n + 1);
    if (hi <= lo) return 1.0;
    double v = lo == 0 ? 0.0 : 1.0;
    for (int64_t jj = 0; jj < hi - lo; ++jj) {
      const int64_t j = jj + lo;
      v = (col[static_cast<size_t>(jj + lo - prev_lo)] * static_cast<double>(i) + v * static_cast<double>(j)) /
          static_cast<double>(i + j);
      col[static_cast<size_t>(jj)] = v;
    }
    len = hi - lo;
    if (prev_len > len)
      std::fill(col.begin() + len, col.begin() + std::min<int64_t>(prev_len, static_cast<int64_t>(col.size())), 1.0);
  }
  return col[static_cast<size_t>(hi - lo - 1)];
}

// One-sided Smirnov: P(D+_n >= x), by the Birnbaum-Tingey sum in logs.
double smirnov_sf(int64_t n, double x) {
  if (x <= 0) return 1;
  if (x >= 1) return 0;
  const double nd = static_cast<double>(n);
  const double lgn = log_gamma(nd + 1);
  const int64_t last = static_cast<int64_t>(std::floor(nd * (1 - x)));
  double sum = 0;
  for (int64_t j = 0; j <= last; ++j) {
    const double jd = static_cast<double>(j);
    const double t = x + jd / nd;
    const double rest = 1 - t;
    if (rest <= 0) continue;
    const double log_term = lgn - log_gamma(jd + 1) - log_gamma(nd - jd + 1) + (nd - jd) * std::log(rest) + (jd - 1) * std::log(t);
    sum += std::exp(log_term);
  }
  return std::min(1.0, x * sum);
}

// Kolmogorov's P(D_n <= d), exact, by the Durbin matrix (Marsaglia, Tsang and
// Wang 2003): (n!/n^n) * (H^n)[k][k] with scaling by powers of 2.
double kolmogorov_cdf_durbin(int64_t n, double d) {
  const double nd = static_cast<double>(n) * d;
  const int k = static_cast<int>(nd) + 1;
  const int m = 2 * k - 1;
  const double h = k - nd;
  auto at = [m](std::vector<double>& a, int i, int j) -> double& { return a[static_cast<size_t>(i * m + j)]; };
  std::vector<double> H(static_cast<size_t>(m) * m, 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j) at(H, i, j) = i - j + 1 < 0 ? 0 : 1;
  for (int i = 0; i < m; ++i) {
    at(H, i, 0) -= std::pow(h, i + 1);
    at(H, m - 1, i) -= std::pow(h, m - i);
  }
  if (2 * h - 1 > 0) at(H, m - 1, 0) += std::pow(2 * h - 1, m);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < m; ++j)
      if (i - j + 1 > 0)
        for (int g = 1; g <= i - j + 1; ++g) at(H, i, j) /= g;
  auto mul = [m, &at](std::vector<double>& a, std::vector<double>& b) {
    std::vector<double> c(static_cast<size_t>(m) * m, 0.0);
    for (int i = 0; i < m; ++i)
      for (int l = 0; l < m; ++l) {
        const double ail = at(a, i, l);
        if (ail == 0) continue;
        for (int j = 0; j < m; ++j) at(c, i, j) += ail * at(b, l, j);
      }
    return c;
  };
  // Q = H^n by squaring; each matrix carries a power-of-two exponent.
  std::vector<double> Q(static_cast<size_t>(m) * m, 0.0), P = H;
  for (int i = 0; i < m; ++i) at(Q, i, i) = 1;
  int64_t eq = 0, ep = 0;
  auto rescale = [&](std::vector<double>& a, int64_t& e) {
    double big = 0;
    for (double v : a) big = std::max(big, std::fabs(v));
    if (big > 0x1p256 || (big < 0x1p-256 && big > 0)) {
      int ex = 0;
      std::frexp(big, &ex);
      for (double& v : a) v = std::ldexp(v, -ex);
      e += ex;
    }
  };
  for (int64_t e = n; e > 0; e >>= 1) {
    if (e & 1) {
      Q = mul(Q, P);
      eq += ep;
      rescale(Q, eq);
    }
    if (e > 1) {
      P = mul(P, P);
      ep *= 2;
      rescale(P, ep);
    }
  }
  double s = at(Q, k - 1, k - 1);
  int64_t es = eq;
  for (int64_t i = 1; i <= n; ++i) {
    s = s * static_cast<double>(i) / static_cast<double>(n);
    if (s != 0 && std::fabs(s) < 0x1p-256) {
      s = std::ldexp(s, 256);
      es -= 256;
    }
  }
  return std::ldexp(s, static_cast<int>(std::clamp<int64_t>(es, -100000, 100000)));
}

// Pelz-Good (1976) approximation of P(D_n <= x): K0 + K1/sqrt(n) + K2/n +
// K3/n^1.5 with the terms written as theta-function sums that converge for
// small z = x sqrt(n).
double kolmogorov_cdf_pelz_good(int64_t n, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double pi2 = kPi * kPi, pi4 = pi2 * pi2, pi6 = pi4 * pi2;
  const double sqrt2pi = std::sqrt(2 * kPi);
  const double z = std::sqrt(static_cast<double>(n)) * x;
  const double z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2;
  const double qlog = -pi2 / 8 / z2;
  if (qlog < -708) return 0;
  double q = std::exp(qlog);
  const double k1a = -z2, k1b = pi2 / 4;
  const double k2a = 6 * z6 + 2 * z4, k2b = (2 * z4 - 5 * z2) * pi2 / 4, k2c = pi4 * (1 - 2 * z2) / 16;
  const double k3d = pi6 * (5 - 30 * z2) / 64, k3c = pi4 * (-60 * z2 + 212 * z4) / 16,
               k3b = pi2 * (135 * z4 - 96 * z6) / 4, k3a = -30 * z6 - 90 * z4 * z4;
  double K[4] = {0, 0, 0, 0};
  const int maxk = static_cast<int>(std::ceil(16 * z / kPi));
  for (int k = maxk; k > 0; --k) {  // sum over odd m = 2k - 1 of c(m) q^(m^2), Horner in q^8k
    const double mm = 2.0 * k - 1, m2 = mm * mm, m4 = m2 * m2, m6 = m4 * m2;
    const double qp = std::pow(q, 8.0 * k);
    const double c[4] = {1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4, k3a + k3b * m2 + k3c * m4 + k3d * m6};
    for (int i = 0; i < 4; ++i) K[i] = K[i] * qp + c[i];
  }
  const double div[4] = {z, 6 * z4, 72 * z6 * z, 6480 * z6 * z4};
  for (int i = 0; i < 4; ++i) K[i] = K[i] * q * sqrt2pi / div[i];
  q = std::exp(-pi2 / 2 / z2);
  double k2extra = 0, k3extra = 0;
  const double s3z = std::sqrt(3.0) * z;
  for (int k = maxk; k > 0; --k) {
    const double kd = k, ks = kd * kd, qp = std::pow(q, ks), kpi = kPi * kd;
    k2extra += ks * qp;
    k3extra += (s3z + kpi) * (s3z - kpi) * ks * qp;
  }
  K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3);
  K[3] += k3extra * pi2 * sqrt2pi / (216 * z6);
  double sum = 0;
  for (int i = 0; i < 4; ++i) sum += K[i] / std::pow(static_cast<double>(n), i / 2.0);
  return sum;
}

// P(D_n >= d) for the one-sample two-sided statistic, choosing the method by
// region as scipy.stats.kstwo.sf does (Simard and L'Ecuyer 2011); the Durbin
// matrix stands in for Pomeranz's algorithm (both exact).
double kolmogorov_sf(int64_t n, double d) {
  const double nd = static_cast<double>(n);
  if (d >= 1) return 0;
  if (d <= 0) return 1;
  const double t = nd * d;
  if (t <= 1) {
    if (t <= 0.5) return 1;
    const double cdf = std::exp(log_gamma(nd + 1) - nd * std::log(nd) + nd * std::log(2 * t - 1));
    return std::clamp(1 - cdf, 0.0, 1.0);
  }
  if (t >= nd - 1) return std::clamp(2 * std::pow(1 - d, nd), 0.0, 1.0);
  if (d >= 0.5) return std::clamp(2 * smirnov_sf(n, d), 0.0, 1.0);
  const double nx2 = t * d;
  if (n <= 140) {
    if (nx2 <= 4) return std::clamp(1 - kolmogorov_cdf_durbin(n, d), 0.0, 1.0);
    return std::clamp(2 * smirnov_sf(n, d), 0.0, 1.0);
  }
  if (nx2 >= 370) return 0;
  if (nx2 >= 2.2) return std::clamp(2 * smirnov_sf(n, d), 0.0, 1.0);
  double cdf;
  if (nx2 >= 18)
    cdf = 1;
  else if (n <= 100000 && nd * std::pow(d, 1.5) <= 1.4)
    cdf = kolmogorov_cdf_durbin(n, d);
  else
    cdf = kolmogorov_cdf_pelz_good(n, d);
  return std::clamp(1 - cdf, 0.0, 1.0);
}

}  // namespace

// --- descriptive ---

double sum(const std::vector<double>& xs) {
  double s = 0, c = 0;
  for (double x : xs) {
    const double t = s + x;
    c += std::fabs(s) >= std::fabs(x) ? (s - t) + x : (x - t) + s;
    s = t;
  }
  return s + c;
}

double mean(const std::vector<double>& xs) { return sum(xs) / static_cast<double>(xs.size()); }

double variance(const std::vector<double>& xs) {  // two passes
  const double m = mean(xs);
  std::vector<double> sq;
  sq.reserve(xs.size());
  for (double x : xs) sq.push_back((x - m) * (x - m));
  return sum(sq) / static_cast<double>(xs.size() - 1);
}

// numpy.quantile(method="linear") on sorted data: virtual index (n-1)q,
// computed and interpolated in the same order of operations as numpy 1.24.
double quantile_sorted(const std::vector<double>& s, double q) {
  const double n = static_cast<double>(s.size());
  const double virt = n * q + (1.0 + q * (1.0 - 1.0 - 1.0)) - 1.0;
  double prev = std::floor(virt);
  const double gamma = virt - prev;
  prev = std::clamp(prev, 0.0, n - 1);
  const double next = std::clamp(prev + 1, 0.0, n - 1);
  const double a = s[static_cast<size_t>(prev)], b = s[static_cast<size_t>(next)];
  const double diff = b - a;
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}

// numpy.linspace(lo, hi, n + 1)
std::vector<double> linspace_edges(double lo, double hi, size_t bins) {
  std::vector<double> e(bins + 1);
  const double step = (hi - lo) / static_cast<double>(bins);
  for (size_t i = 0; i <= bins; ++i) e[i] = static_cast<double>(i) * step + lo;
  e[bins] = hi;
  return e;
}

// numpy.histogram counting: [e_i, e_i+1) except the last bin, which is closed;
// values outside [e_0, e_n] are not counted.
std::vector<double> count_bins(const std::vector<double>& xs, const std::vector<double>& edges) {
  const size_t bins = edges.size() - 1;
  std::vector<double> counts(bins, 0);
  for (double x : xs) {
    if (x < edges.front() || x > edges.back()) continue;
    size_t i = static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin());
    i = i == 0 ? 0 : i - 1;
    if (i >= bins) i = bins - 1;
    counts[i] += 1;
  }
  return counts;
}

// --- PSI ---

Psi psi(std::vector<double> expected, const std::vector<double>& actual, size_t bins, double epsilon) {
  std::sort(expected.begin(), expected.end());
  // With unique quantile edges u_0 < ... < u_k, the interior ones u_1..u_(k-1) cut.
  Psi r;
  {
    std::vector<double> u;
    for (size_t i = 0; i <= bins; ++i) u.push_back(quantile_sorted(expected, static_cast<double>(i) / static_cast<double>(bins)));
    u.erase(std::unique(u.begin(), u.end()), u.end());
    if (u.size() > 2) r.edges.assign(u.begin() + 1, u.end() - 1);
  }
  const size_t k = r.edges.size() + 1;
  auto proportions = [&](const std::vector<double>& xs) {
    std::vector<double> p(k, 0);
    for (double x : xs) p[static_cast<size_t>(std::upper_bound(r.edges.begin(), r.edges.end(), x) - r.edges.begin())] += 1;
    for (double& v : p) v /= static_cast<double>(xs.size());
    return p;
  };
  r.expected = proportions(expected);
  r.actual = proportions(actual);
  r.psi = psi_of_proportions(r.expected, r.actual, epsilon);
  return r;
}

double psi_of_proportions(const std::vector<double>& expected, const std::vector<double>& actual, double epsilon) {
  double psi = 0;
  for (size_t i = 0; i < expected.size() && i < actual.size(); ++i) {
    const double e = expected[i] > 0 ? expected[i] : epsilon, a = actual[i] > 0 ? actual[i] : epsilon;
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

// --- Kolmogorov-Smirnov ---

// scipy.stats.ks_2samp(a, b) with alternative="two-sided", method="auto":
// exact when both samples have at most 10,000 values, else asymptotic.
Ks ks_2samp(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  const int64_t n1 = static_cast<int64_t>(a.size()), n2 = static_cast<int64_t>(b.size());
  // The largest |F1 - F2| over all observed values (right-continuous ECDFs).
  double d = 0;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    const double x = j == b.size() || (i < a.size() && a[i] <= b[j]) ? a[i] : b[j];
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    const double f1 = static_cast<double>(i) / static_cast<double>(n1), f2 = static_cast<double>(j) / static_cast<double>(n2);
    d = std::max(d, std::fabs(f1 - f2));
  }
  if (std::max(n1, n2) <= 10000) {
    const int64_t g = std::gcd(n1, n2);
    const int64_t lcm = (n1 / g) * n2;
    const int64_t h = static_cast<int64_t>(std::nearbyint(d * static_cast<double>(lcm)));
    const double dr = static_cast<double>(h) / static_cast<double>(lcm);
    if (h == 0) return {dr, 1.0, true};
    const double p = n1 == n2 ? ks_equal_sizes(n1, h) : ks_unequal_sizes(n1, n2, g, h);
    if (std::isfinite(p) && p >= 0 && p <= 1) return {dr, p, true};
  }
  const double m = static_cast<double>(std::max(n1, n2)), n = static_cast<double>(std::min(n1, n2));
  const double en = m * n / (m + n);
  return {d, kolmogorov_sf(static_cast<int64_t>(std::nearbyint(en)), d), false};
}

// --- chi-square ---

double chi2_sf(double statistic, double dof) {
  return dof <= 0 ? std::numeric_limits<double>::quiet_NaN() : gamma_q(dof / 2, statistic / 2);
}

Chi2 chisquare(const std::vector<double>& observed, const std::vector<double>& expected) {
  std::vector<double> terms;
  for (size_t i = 0; i < observed.size(); ++i) terms.push_back((observed[i] - expected[i]) * (observed[i] - expected[i]) / expected[i]);
  Chi2 r;
  r.statistic = sum(terms);
  r.dof = static_cast<double>(observed.size() - 1);
  r.pvalue = chi2_sf(r.statistic, r.dof);
  return r;
}

Contingency chi2_contingency(const std::vector<std::vector<double>>& observed, bool correction) {
  const size_t rows = observed.size(), cols = rows ? observed.front().size() : 0;
  std::vector<double> row(rows, 0), col(cols, 0);
  double total = 0;
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < cols; ++j) {
      row[i] += observed[i][j];
      col[j] += observed[i][j];
      total += observed[i][j];
    }
  Contingency r;
  r.expected.assign(rows, std::vector<double>(cols));
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < cols; ++j) r.expected[i][j] = row[i] * col[j] / total;
  r.dof = static_cast<double>(rows * cols) - static_cast<double>(rows) - static_cast<double>(cols) + 1;
  if (r.dof <= 0) return r;
  std::vector<double> terms;
  for (size_t i = 0; i < rows; ++i)
    for (size_t j = 0; j < cols; ++j) {
      const double e = r.expected[i][j];
      double o = observed[i][j];
      if (r.dof == 1 && correction) {  // Yates: move each count up to 0.5 toward its expectation
        const double diff = e - o;
        o += std::min(0.5, std::fabs(diff)) * (diff > 0 ? 1 : diff < 0 ? -1 : 0);
      }
      terms.push_back((o - e) * (o - e) / e);
    }
  r.statistic = sum(terms);
  r.pvalue = chi2_sf(r.statistic, r.dof);
  return r;
}

}  // namespace sluice::engine::stats
