#include "dsl/units.h"

#include <cctype>
#include <limits>

namespace sluice::dsl {

namespace {

bool read_number(std::string_view text, size_t& i, uint64_t& n) {
  size_t start = i;
  n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - digit) / 10) return false;
    n = n * 10 + digit;
    ++i;
  }
  return i > start;
}

}  // namespace

bool parse_duration(std::string_view text, Duration& out, std::string& error) {
  const std::string bad = "invalid duration '" + std::string(text) +
                          "': expected a number and a unit (ms, s, m, h, d), as in \"90s\", \"5m\" or \"1h30m\"";
  if (text.empty()) {
    error = bad;
    return false;
  }
  size_t i = 0;
  uint64_t total = 0;
  while (i < text.size()) {
    uint64_t n = 0;
    if (!read_number(text, i, n)) {
      error = bad;
      return false;
    }
    uint64_t unit = 0;
    if (text.substr(i, 2) == "ms") {
      unit = 1;
      i += 2;
    } else if (i < text.size()) {
      switch (text[i]) {
        case 's': unit = 1000; break;
        case 'm': unit = 60'000; break;
        case 'h': unit = 3'600'000; break;
        case 'd': unit = 86'400'000; break;
        default: break;
      }
      if (unit) ++i;
    }
    if (unit == 0) {
      error = bad;
      return false;
    }
    if (n > (std::numeric_limits<int64_t>::max() - total) / unit) {
      error = "duration '" + std::string(text) + "' is too large";
      return false;
    }
    total += n * unit;
  }
  out = Duration(static_cast<int64_t>(total));
  return true;
}

bool parse_size(std::string_view text, uint64_t& bytes, std::string& error) {
  const std::string bad = "invalid size '" + std::string(text) +
                          "': expected a number of bytes with an optional unit K, M, G or T, as in \"512M\" or \"4G\"";
  size_t i = 0;
  uint64_t n = 0;
  if (!read_number(text, i, n)) {
    error = bad;
    return false;
  }
  uint64_t unit = 1;
  if (i < text.size()) {
    switch (text[i]) {
      case 'K': unit = 1ull << 10; break;
      case 'M': unit = 1ull << 20; break;
      case 'G': unit = 1ull << 30; break;
      case 'T': unit = 1ull << 40; break;
      default: error = bad; return false;
    }
    ++i;
  }
  if (i != text.size()) {
    error = bad;
    return false;
  }
  if (n > std::numeric_limits<uint64_t>::max() / unit) {
    error = "size '" + std::string(text) + "' is too large";
    return false;
  }
  bytes = n * unit;
  return true;
}

std::string format_duration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  struct Unit { int64_t size; const char* name; };
  static constexpr Unit units[] = {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const Unit& u : units) {
    if (ms >= u.size) {
      out += std::to_string(ms / u.size) + u.name;
      ms %= u.size;
    }
  }
  return out;
}

std::string format_size(uint64_t bytes) {
  static constexpr const char* names[] = {"T", "G", "M", "K"};
  static constexpr int shifts[] = {40, 30, 20, 10};
  for (int k = 0; k < 4; ++k) {
    uint64_t unit = 1ull << shifts[k];
    if (bytes >= unit && bytes % unit == 0) return std::to_string(bytes / unit) + names[k];
  }
  return std::to_string(bytes);
}

}  // namespace sluice::dsl
