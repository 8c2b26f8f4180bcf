#pragma once
// A TOML value as written in a workflow: the types params, matrix entries and
// plugin arguments (`with`) may hold. Immutable once parsed.
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace sluice::dsl {

class Value;
using ValueArray = std::vector<Value>;
using ValueTable = std::map<std::string, Value>;

enum class ValueType { String, Integer, Float, Boolean, Array, Table };

class Value {
 public:
  Value() : v_(std::string()) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(bool b) : v_(b) {}
  Value(ValueArray a) : v_(std::move(a)) {}
  Value(ValueTable t) : v_(std::move(t)) {}

  ValueType type() const { return static_cast<ValueType>(v_.index()); }
  bool is_string() const { return type() == ValueType::String; }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  int64_t as_integer() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  bool as_bool() const { return std::get<bool>(v_); }
  const ValueArray& as_array() const { return std::get<ValueArray>(v_); }
  const ValueTable& as_table() const { return std::get<ValueTable>(v_); }

  // The text substituted for `${...}`: strings as-is, numbers in their
  // shortest round-trip form, booleans as true/false, arrays and tables as JSON.
  std::string to_text() const;
  // A JSON rendering (strings quoted).
  std::string to_json() const;

  friend bool operator==(const Value&, const Value&) = default;

 private:
  std::variant<std::string, int64_t, double, bool, ValueArray, ValueTable> v_;
};

const char* type_name(ValueType t);

}  // namespace sluice::dsl
