#include "dsl/params.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "dsl/suggest.h"

namespace sluice::dsl {

ParamValues default_params(const Workflow& wf) {
  ParamValues out;
  for (const Param& p : wf.params) out.emplace(p.name, p.default_value);
  return out;
}

namespace {

std::string with_article(ValueType t) {
  std::string n = type_name(t);
  return (n[0] == 'i' || n[0] == 'a' ? "an " : "a ") + n;
}

bool parse_scalar(ValueType type, std::string_view text, Value& out) {
  switch (type) {
    case ValueType::String: out = Value(std::string(text)); return true;
    case ValueType::Integer: {
      int64_t v = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return false;
      out = Value(v);
      return true;
    }
    case ValueType::Float: {
      std::string s(text);
      if (s.empty()) return false;
      char* end = nullptr;
      errno = 0;
      double v = std::strtod(s.c_str(), &end);
      if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return false;
      out = Value(v);
      return true;
    }
    case ValueType::Boolean:
      if (text == "true") out = Value(true);
      else if (text == "false") out = Value(false);
      else return false;
      return true;
    default: return false;
  }
}

}  // namespace

bool parse_param_value(const Param& param, std::string_view text, Value& out, std::string& error) {
  if (param.type != ValueType::Array) {
    if (parse_scalar(param.type, text, out)) return true;
    error = "param '" + param.name + "' is " + with_article(param.type) + "; cannot use '" + std::string(text) + "'";
    return false;
  }
  ValueArray items;
  if (!text.empty()) {
    size_t start = 0;
    for (;;) {
      size_t comma = text.find(',', start);
      std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      Value v;
      if (!parse_scalar(param.element, item, v)) {
        error = "param '" + param.name + "' is an array of " + type_name(param.element) + "s; cannot use '" + std::string(item) + "'";
        return false;
      }
      items.push_back(std::move(v));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  out = Value(std::move(items));
  return true;
}

namespace {

// A value of `want`, or nullopt: integers widen to floats, nothing else converts.
std::optional<Value> fit_scalar(ValueType want, const Value& v) {
  if (v.type() == want) return v;
  if (want == ValueType::Float && v.type() == ValueType::Integer) return Value(static_cast<double>(v.as_integer()));
  return std::nullopt;
}

std::string shown(const Value& v) {
  std::string text = v.to_json();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return with_article(v.type()) + " (" + text + ")";
}

}  // namespace

bool coerce_param_value(const Param& param, const Value& value, Value& out, std::string& error) {
  if (param.type != ValueType::Array) {
    if (auto v = fit_scalar(param.type, value)) {
      out = std::move(*v);
      return true;
    }
    error = "param '" + param.name + "' is " + with_article(param.type) + "; found " + shown(value);
    return false;
  }
  if (value.type() != ValueType::Array) {
    error = "param '" + param.name + "' is an array of " + type_name(param.element) + "s; found " + shown(value);
    return false;
  }
  ValueArray items;
  for (const Value& item : value.as_array()) {
    auto v = fit_scalar(param.element, item);
    if (!v) {
      error = "param '" + param.name + "' is an array of " + type_name(param.element) + "s; found an element that is " +
              shown(item);
      return false;
    }
    items.push_back(std::move(*v));
  }
  out = Value(std::move(items));
  return true;
}

bool apply_override(const Workflow& wf, std::string_view assignment, ParamValues& values, std::string& error) {
  size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    error = "expected -p NAME=VALUE, found '" + std::string(assignment) + "'";
    return false;
  }
  std::string name(assignment.substr(0, eq));
  const Param* p = wf.find_param(name);
  if (!p) {
    std::vector<std::string> names;
    for (const Param& q : wf.params) names.push_back(q.name);
    error = "unknown param '" + name + "' for workflow '" + wf.name + "'" + did_you_mean(name, names);
    return false;
  }
  Value v;
  if (!parse_param_value(*p, assignment.substr(eq + 1), v, error)) return false;
  values[name] = std::move(v);
  return true;
}

}  // namespace sluice::dsl
