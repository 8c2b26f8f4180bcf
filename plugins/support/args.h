#pragma once
// Typed access to an action's args (the step's `with` as JSON, defaults from
// plugin.toml applied by the engine). Every accessor throws
// sluice::plugin::BadArgs naming the argument when it is missing or of the
// wrong type. A template (`${params.n}`) resolves to a string, so integers,
// booleans, durations and sizes are also accepted as their text.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace sluice::plugins {

class Args {
 public:
  explicit Args(std::string_view json_text);

  bool has(const std::string& name) const;  // present and not null
  std::string string(const std::string& name) const;
  std::optional<std::string> opt_string(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  bool boolean(const std::string& name) const;
  std::chrono::milliseconds duration(const std::string& name) const;  // "90s", "5m", "250ms"
  uint64_t size(const std::string& name) const;                       // "512M", "4G", or a number of bytes
  // A table of strings (e.g. HTTP headers); empty when absent.
  std::map<std::string, std::string> string_table(const std::string& name) const;
  // A table of anything (e.g. a JSON payload); nullopt when absent.
  std::optional<nlohmann::json> table(const std::string& name) const;

 private:
  const nlohmann::json& get(const std::string& name) const;  // throws when absent
  nlohmann::json j_;
};

}  // namespace sluice::plugins
