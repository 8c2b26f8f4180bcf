#include "engine/plugin_args.h"

namespace sluice::engine {

dsl::Value value_from_json(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::string: return dsl::Value(j.get<std::string>());
    case nlohmann::json::value_t::boolean: return dsl::Value(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return dsl::Value(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      if (j.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) return dsl::Value(j.get<int64_t>());
      return dsl::Value(j.get<double>());
    case nlohmann::json::value_t::number_float: return dsl::Value(j.get<double>());
    case nlohmann::json::value_t::array: {
      dsl::ValueArray a;
      for (const nlohmann::json& e : j)
        if (!e.is_null()) a.push_back(value_from_json(e));
      return dsl::Value(std::move(a));
    }
    case nlohmann::json::value_t::object: {
      dsl::ValueTable t;
      for (const auto& [k, e] : j.items())
        if (!e.is_null()) t.emplace(k, value_from_json(e));
      return dsl::Value(std::move(t));
    }
    default: return dsl::Value(dsl::ValueTable{});
  }
}

bool resolve_call_args(const dsl::PluginManifest& plugin, const std::string& action, nlohmann::json& args,
                       std::string& error) {
  const dsl::PluginAction* a = plugin.find(action);
  if (!a) {
    error = "plugin '" + plugin.name + "' has no action '" + action + "'";
    return false;
  }
  dsl::Value with = value_from_json(args.is_object() ? args : nlohmann::json::object());
  dsl::ValueTable resolved;
  if (!dsl::resolve_action_args(plugin, *a, with.as_table(), resolved, error)) return false;
  args = nlohmann::json::parse(dsl::Value(std::move(resolved)).to_json());
  return true;
}

}  // namespace sluice::engine
