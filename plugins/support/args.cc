#include "plugins/support/args.h"

#include <charconv>

#include "dsl/units.h"
#include "sluice/plugin.hpp"

namespace sluice::plugins {

using sluice::plugin::BadArgs;

namespace {

std::string quoted(const std::string& name) { return "'" + name + "'"; }

}  // namespace

Args::Args(std::string_view json_text) {
  j_ = nlohmann::json::parse(json_text, nullptr, false);
  if (j_.is_discarded() || !j_.is_object()) throw BadArgs("the arguments are not a JSON object");
}

bool Args::has(const std::string& name) const { return j_.contains(name) && !j_[name].is_null(); }

const nlohmann::json& Args::get(const std::string& name) const {
  if (!has(name)) throw BadArgs(quoted(name) + " is required");
  return j_[name];
}

std::string Args::string(const std::string& name) const {
  const auto& v = get(name);
  if (!v.is_string()) throw BadArgs(quoted(name) + " must be a string, not " + v.type_name());
  return v.get<std::string>();
}

std::optional<std::string> Args::opt_string(const std::string& name) const {
  if (!has(name)) return std::nullopt;
  return string(name);
}

int64_t Args::integer(const std::string& name) const {
  const auto& v = get(name);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return n;
  }
  throw BadArgs(quoted(name) + " must be an integer, not " + (v.is_string() ? "'" + v.get<std::string>() + "'" : v.type_name()));
}

bool Args::boolean(const std::string& name) const {
  const auto& v = get(name);
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string() && (v == "true" || v == "false")) return v == "true";
  throw BadArgs(quoted(name) + " must be true or false");
}

std::chrono::milliseconds Args::duration(const std::string& name) const {
  const std::string text = string(name);
  dsl::Duration d;
  std::string error;
  if (!dsl::parse_duration(text, d, error)) throw BadArgs(quoted(name) + ": " + error);
  return d;
}

uint64_t Args::size(const std::string& name) const {
  const auto& v = get(name);
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0)) return v.get<uint64_t>();
  const std::string text = string(name);
  uint64_t bytes = 0;
  std::string error;
  if (!dsl::parse_size(text, bytes, error)) throw BadArgs(quoted(name) + ": " + error);
  return bytes;
}

std::map<std::string, std::string> Args::string_table(const std::string& name) const {
  std::map<std::string, std::string> out;
  if (!has(name)) return out;
  const auto& v = j_[name];
  if (!v.is_object()) throw BadArgs(quoted(name) + " must be a table of strings");
  for (const auto& [k, e] : v.items()) {
    if (!e.is_string()) throw BadArgs(quoted(name + "." + k) + " must be a string");
    out[k] = e.get<std::string>();
  }
  return out;
}

std::optional<nlohmann::json> Args::table(const std::string& name) const {
  if (!has(name)) return std::nullopt;
  const auto& v = j_[name];
  if (!v.is_object()) throw BadArgs(quoted(name) + " must be a table");
  return v;
}

}  // namespace sluice::plugins
