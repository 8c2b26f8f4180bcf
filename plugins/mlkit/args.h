#pragma once
// An action's arguments (the step's `with`, as JSON) read with checks whose
// failures are BadArgs messages naming the argument. A value that came from a
// template arrives as a string, so numbers and booleans are also accepted in
// their string forms ("0.1", "true"). JSON null counts as absent.
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::mlkit {

class Args {
 public:
  // Throws BadArgs unless `args` is a JSON object.
  explicit Args(nlohmann::json args);

  bool has(const std::string& key) const;

  std::string string(const std::string& key) const;  // required
  std::string string(const std::string& key, const std::string& fallback) const;
  // One of `choices` (else BadArgs listing them).
  std::string choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& choices) const;
  double number(const std::string& key, double fallback, double lo, double hi) const;
  std::optional<double> optional_number(const std::string& key, double lo, double hi) const;
  int64_t integer(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const;
  bool boolean(const std::string& key, bool fallback) const;
  // An array of strings, or one string of comma-separated names; empty when absent.
  std::vector<std::string> strings(const std::string& key) const;
  // A JSON object (a TOML table); an empty object when absent.
  nlohmann::json table(const std::string& key) const;

  // Throws BadArgs for any key outside `known` ("unknown argument 'x'; did
  // you mean 'y'?"). Call it before doing any work.
  void only(const std::vector<std::string>& known) const;

 private:
  const nlohmann::json* find(const std::string& key) const;
  nlohmann::json args_;
};

}  // namespace sluice::mlkit
