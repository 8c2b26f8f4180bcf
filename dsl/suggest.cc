#include "dsl/suggest.h"

#include <algorithm>

namespace sluice::dsl {

size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<size_t> prev2(m + 1), prev(m + 1), cur(m + 1);
  for (size_t j = 0; j <= m; ++j) prev[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
    }
    prev2.swap(prev);
    prev.swap(cur);
  }
  return prev[m];
}

std::string closest(std::string_view word, const std::vector<std::string>& candidates) {
  // Short words need near-exact matches: 'zz' is not a typo of 'a'.
  const size_t limit = std::max<size_t>(1, (word.size() + 2) / 4);
  size_t best = limit + 1;
  std::string out;
  for (const std::string& c : candidates) {
    // Cheap bound first: lengths alone decide most mismatches.
    size_t diff = c.size() > word.size() ? c.size() - word.size() : word.size() - c.size();
    if (diff >= best) continue;
    size_t d = edit_distance(word, c);
    if (d < best && d < std::min(word.size(), c.size())) {
      best = d;
      out = c;
    }
  }
  return out;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string c = closest(word, candidates);
  return c.empty() ? std::string() : "; did you mean '" + c + "'?";
}

}  // namespace sluice::dsl
