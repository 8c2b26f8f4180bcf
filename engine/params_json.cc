#include "engine/params_json.h"

#include <nlohmann/json.hpp>

#include "dsl/suggest.h"

namespace sluice::engine {

namespace {

// The JSON value as a dsl::Value of its own type; nullopt for null and objects.
std::optional<dsl::Value> to_value(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::string: return dsl::Value(j.get<std::string>());
    case nlohmann::json::value_t::boolean: return dsl::Value(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return dsl::Value(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      if (j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return dsl::Value(j.get<double>());
      return dsl::Value(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::json::value_t::number_float: return dsl::Value(j.get<double>());
    case nlohmann::json::value_t::array: {
      dsl::ValueArray items;
      for (const nlohmann::json& e : j) {
        auto v = to_value(e);
        if (!v || v->type() == dsl::ValueType::Array) return std::nullopt;
        items.push_back(std::move(*v));
      }
      return dsl::Value(std::move(items));
    }
    default: return std::nullopt;
  }
}

}  // namespace

bool params_from_json(const dsl::Workflow& wf, const nlohmann::json& params, dsl::ParamValues& out, std::string& error) {
  out = dsl::default_params(wf);
  if (!params.is_object()) {
    error = "'params' must be a JSON object of param names to values";
    return false;
  }
  for (const auto& [name, value] : params.items()) {
    const dsl::Param* p = wf.find_param(name);
    if (!p) {
      std::vector<std::string> names;
      for (const dsl::Param& q : wf.params) names.push_back(q.name);
      error = "unknown param '" + name + "' for workflow '" + wf.name + "'" + dsl::did_you_mean(name, names);
      return false;
    }
    auto v = to_value(value);
    if (!v) {
      const std::string shown = value.dump();
      error = "param '" + p->name + "' cannot be " + (value.is_null() ? std::string("null") : "'" + shown.substr(0, 40) + "'") +
              ": give a string, number, boolean or array";
      return false;
    }
    dsl::Value typed;
    if (!dsl::coerce_param_value(*p, *v, typed, error)) return false;
    out[name] = std::move(typed);
  }
  return true;
}

}  // namespace sluice::engine
