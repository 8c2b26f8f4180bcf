#include "dsl/names.h"

#include <cctype>
#include <fstream>
#include <sstream>

namespace sluice::dsl {

namespace {
bool lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
}  // namespace

bool is_valid_name(std::string_view s) {
  if (s.empty() || !lower_or_digit(s[0])) return false;
  for (char c : s)
    if (!lower_or_digit(c) && c != '_' && c != '-') return false;
  return true;
}

bool is_identifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

bool is_env_name(std::string_view s) { return is_identifier(s); }

bool is_plugin_name(std::string_view s) {
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    if (!is_valid_name(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

const std::vector<std::string>& timezone_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out{"UTC"};
    std::ifstream in("/usr/share/zoneinfo/tzdata.zi");
    std::string line;
    while (std::getline(in, line)) {
      // "Z Europe/Berlin 0:53:28 - LMT 1893 Ap" and "L Europe/Berlin Arctic/Longyearbyen"
      std::istringstream ls(line);
      std::string kind, a, b;
      ls >> kind >> a >> b;
      if (kind == "Z") out.push_back(a);
      else if (kind == "L") out.push_back(b);
    }
    return out;
  }();
  return names;
}

}  // namespace sluice::dsl
