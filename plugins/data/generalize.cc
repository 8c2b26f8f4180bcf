#include "plugins/data/generalize.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace sluice::plugins::data {

namespace {

bool positive_int(const std::string& s, long long& n) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty() && n > 0;
}

// A decimal number as CSV files write it ("42", "-3.5", "1e3"); not "nan", not " 4".
bool number(const std::string& s, double& v) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  char* end = nullptr;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(v);
}

bool digits(const std::string& s, size_t from, size_t count) {
  if (s.size() < from + count) return false;
  for (size_t i = from; i < from + count; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// The leading "YYYY", "YYYY-MM" or "YYYY-MM-DD" of an ISO 8601 date or date-time.
std::optional<std::string> date_part(const std::string& v, size_t len) {
  const bool date = digits(v, 0, 4) && v.size() >= 7 && v[4] == '-' && digits(v, 5, 2);
  const bool full = date && v.size() >= 10 && v[7] == '-' && digits(v, 8, 2) && (v.size() == 10 || v[10] == 'T' || v[10] == ' ');
  if (!date || (!full && v.size() != 7)) return std::nullopt;
  const int month = (v[5] - '0') * 10 + (v[6] - '0');
  if (month < 1 || month > 12) return std::nullopt;
  if (full) {
    const int day = (v[8] - '0') * 10 + (v[9] - '0');
    if (day < 1 || day > 31) return std::nullopt;
  } else if (len == 10) {
    return std::nullopt;  // "day" needs a day
  }
  return v.substr(0, len);
}

}  // namespace

std::optional<Rule> parse_rule(const std::string& text, std::string& error) {
  Rule r;
  r.text = text;
  if (text == "year" || text == "month" || text == "day") {
    r.kind = text == "year" ? Rule::Kind::Year : text == "month" ? Rule::Kind::Month : Rule::Kind::Day;
    return r;
  }
  const size_t colon = text.find(':');
  const std::string name = text.substr(0, colon);
  if ((name == "bucket" || name == "prefix") && colon != std::string::npos) {
    r.kind = name == "bucket" ? Rule::Kind::Bucket : Rule::Kind::Prefix;
    if (positive_int(text.substr(colon + 1), r.n)) return r;
    error = "'" + text + "': " + name + " needs a whole number above 0 (" + name + ":10)";
    return std::nullopt;
  }
  error = "unknown rule '" + text + "' (use bucket:N, prefix:N, year, month or day)";
  return std::nullopt;
}

std::optional<std::string> apply(const Rule& rule, const std::string& value, std::string& error) {
  if (value.empty()) return value;
  switch (rule.kind) {
    case Rule::Kind::Bucket: {
      double v = 0;
      if (!number(value, v)) {
        error = "'" + value + "' is not a number";
        return std::nullopt;
      }
      const double lo = std::floor(v / static_cast<double>(rule.n)) * static_cast<double>(rule.n);
      if (std::fabs(lo) > 9e15) {
        error = "'" + value + "' is too large to bucket";
        return std::nullopt;
      }
      const long long low = static_cast<long long>(lo);
      return rule.n == 1 ? std::to_string(low) : std::to_string(low) + "-" + std::to_string(low + rule.n - 1);
    }
    case Rule::Kind::Prefix: {
      long long chars = 0;
      size_t i = 0;
      for (; i < value.size(); ++i) {
        const bool continuation = (static_cast<unsigned char>(value[i]) & 0xC0) == 0x80;
        if (!continuation && chars++ == rule.n) break;
      }
      return value.substr(0, i);
    }
    case Rule::Kind::Year:
    case Rule::Kind::Month:
    case Rule::Kind::Day: {
      const size_t len = rule.kind == Rule::Kind::Year ? 4 : rule.kind == Rule::Kind::Month ? 7 : 10;
      auto part = date_part(value, len);
      if (!part) error = "'" + value + "' is not an ISO date (2024-05-17)";
      return part;
    }
  }
  return std::nullopt;
}

}  // namespace sluice::plugins::data
