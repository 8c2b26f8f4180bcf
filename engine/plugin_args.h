#pragma once
// A plugin call's arguments: `with` after its templates are resolved, as the
// JSON an ActionCall carries, completed and typed against the action.
#include <string>

#include <nlohmann/json.hpp>

#include "dsl/plugin_manifest.h"
#include "dsl/value.h"

namespace sluice::engine {

// Completes `args` against action `action` of `plugin` as
// dsl::resolve_action_args does: types checked, rendered template strings
// converted to the declared type ("5" for an integer param becomes 5),
// defaults added. False with `error` naming the param.
bool resolve_call_args(const dsl::PluginManifest& plugin, const std::string& action, nlohmann::json& args,
                       std::string& error);

// JSON (as ActionCall::args holds it) as a dsl::Value; JSON null is left out.
dsl::Value value_from_json(const nlohmann::json& j);

}  // namespace sluice::engine
