#include "dsl/value.h"

#include <charconv>

#include <nlohmann/json.hpp>

namespace sluice::dsl {

namespace {

nlohmann::json to_json_value(const Value& v) {
  switch (v.type()) {
    case ValueType::String: return v.as_string();
    case ValueType::Integer: return v.as_integer();
    case ValueType::Float: return v.as_float();
    case ValueType::Boolean: return v.as_bool();
    case ValueType::Array: {
      nlohmann::json a = nlohmann::json::array();
      for (const Value& e : v.as_array()) a.push_back(to_json_value(e));
      return a;
    }
    case ValueType::Table: {
      nlohmann::json t = nlohmann::json::object();
      for (const auto& [k, e] : v.as_table()) t[k] = to_json_value(e);
      return t;
    }
  }
  return nullptr;
}

}  // namespace

std::string Value::to_text() const {
  switch (type()) {
    case ValueType::String: return as_string();
    case ValueType::Integer: return std::to_string(as_integer());
    case ValueType::Float: {
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof buf, as_float());
      return std::string(buf, r.ptr);
    }
    case ValueType::Boolean: return as_bool() ? "true" : "false";
    case ValueType::Array:
    case ValueType::Table: return to_json();
  }
  return {};
}

std::string Value::to_json() const { return to_json_value(*this).dump(); }

const char* type_name(ValueType t) {
  switch (t) {
    case ValueType::String: return "string";
    case ValueType::Integer: return "integer";
    case ValueType::Float: return "float";
    case ValueType::Boolean: return "boolean";
    case ValueType::Array: return "array";
    case ValueType::Table: return "table";
  }
  return "value";
}

}  // namespace sluice::dsl
