#include "plugins/mlkit/args.h"

#include <cmath>
#include <limits>

#include "dsl/suggest.h"
#include "engine/csv.h"
#include "plugins/mlkit/action.h"

namespace sluice::mlkit {

namespace {

std::string got(const nlohmann::json& v) { return " (got " + v.dump() + ")"; }

std::string range_text(const std::string& key, double lo, double hi) {
  using engine::csv::format_number;
  const double inf = std::numeric_limits<double>::infinity();
  if (lo == -inf && hi == inf) return key + " must be a finite number";
  if (hi == inf) return key + " must be at least " + format_number(lo);
  if (lo == -inf) return key + " must be at most " + format_number(hi);
  return key + " must be from " + format_number(lo) + " to " + format_number(hi);
}

// A number, or a string holding one (from a template).
std::optional<double> as_number(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::nullopt;
  double d = 0;
  const std::string& s = v.get_ref<const std::string&>();
  if (engine::csv::parse_number(s, d) != engine::csv::Number::Ok) return std::nullopt;
  return d;
}

}  // namespace

Args::Args(nlohmann::json args) : args_(std::move(args)) {
  if (!args_.is_object()) throw BadArgs("the arguments must be a JSON object" + got(args_));
}

const nlohmann::json* Args::find(const std::string& key) const {
  auto it = args_.find(key);
  if (it == args_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool Args::has(const std::string& key) const { return find(key) != nullptr; }

std::string Args::string(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) throw BadArgs(key + " is required");
  if (!v->is_string()) throw BadArgs(key + " must be a string" + got(*v));
  if (v->get_ref<const std::string&>().empty()) throw BadArgs(key + " must not be empty");
  return v->get<std::string>();
}

std::string Args::string(const std::string& key, const std::string& fallback) const {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  if (!v->is_string()) throw BadArgs(key + " must be a string" + got(*v));
  return v->get<std::string>();
}

std::string Args::choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& choices) const {
  const std::string s = string(key, fallback);
  for (const std::string& c : choices)
    if (c == s) return s;
  std::string list;
  for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
  throw BadArgs(key + " must be one of " + list + got(s));
}

double Args::number(const std::string& key, double fallback, double lo, double hi) const {
  return optional_number(key, lo, hi).value_or(fallback);
}

std::optional<double> Args::optional_number(const std::string& key, double lo, double hi) const {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  const std::optional<double> d = as_number(*v);
  if (!d) throw BadArgs(key + " must be a number" + got(*v));
  if (!std::isfinite(*d) || *d < lo || *d > hi) throw BadArgs(range_text(key, lo, hi) + got(*v));
  return d;
}

int64_t Args::integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  const std::optional<double> d = as_number(*v);
  if (!d) throw BadArgs(key + " must be a whole number" + got(*v));
  if (!std::isfinite(*d) || *d != std::floor(*d)) throw BadArgs(key + " must be a whole number" + got(*v));
  if (*d < static_cast<double>(lo) || *d > static_cast<double>(hi))
    throw BadArgs(range_text(key, static_cast<double>(lo), static_cast<double>(hi)) + got(*v));
  return static_cast<int64_t>(*d);
}

bool Args::boolean(const std::string& key, bool fallback) const {
  const nlohmann::json* v = find(key);
  if (!v) return fallback;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_string() && (*v == "true" || *v == "false")) return *v == "true";
  throw BadArgs(key + " must be true or false" + got(*v));
}

std::vector<std::string> Args::strings(const std::string& key) const {
  const nlohmann::json* v = find(key);
  std::vector<std::string> out;
  if (!v) return out;
  if (v->is_string()) {  // "a, b, c"
    const std::string& s = v->get_ref<const std::string&>();
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(',', start);
      if (end == std::string::npos) end = s.size();
      size_t b = start, e = end;
      while (b < e && s[b] == ' ') ++b;
      while (e > b && s[e - 1] == ' ') --e;
      if (e > b) out.emplace_back(s, b, e - b);
      start = end + 1;
    }
    return out;
  }
  if (!v->is_array()) throw BadArgs(key + " must be an array of names" + got(*v));
  for (size_t i = 0; i < v->size(); ++i) {
    const nlohmann::json& item = (*v)[i];
    if (!item.is_string() || item.get_ref<const std::string&>().empty())
      throw BadArgs(key + "[" + std::to_string(i + 1) + "] must be a non-empty string" + got(item));
    out.push_back(item.get<std::string>());
  }
  return out;
}

nlohmann::json Args::table(const std::string& key) const {
  const nlohmann::json* v = find(key);
  if (!v) return nlohmann::json::object();
  if (!v->is_object()) throw BadArgs(key + " must be a table" + got(*v));
  return *v;
}

void Args::only(const std::vector<std::string>& known) const {
  for (auto it = args_.begin(); it != args_.end(); ++it) {
    bool ok = false;
    for (const std::string& k : known) ok = ok || k == it.key();
    if (!ok) throw BadArgs("unknown argument '" + it.key() + "'" + dsl::did_you_mean(it.key(), known));
  }
}

}  // namespace sluice::mlkit
