#pragma once
// plugin.toml for the native plugin tests, read by the real parser
// (dsl::load_plugin_manifest; problems throw, so a test fails with the
// manifest's diagnostics), and an action's defaults added to args — only the
// defaults: the tests hand plugins mistyped args on purpose, to check the
// plugins' own validation, which the executor's resolve_call_args would stop
// before the call.
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "dsl/plugin_manifest.h"

namespace sluice::test {

struct TestManifest {
  dsl::PluginManifest manifest;
};

inline TestManifest read_test_manifest(const std::string& dir) {
  dsl::Diagnostics diags;
  std::optional<dsl::PluginManifest> m = dsl::load_plugin_manifest(dir, diags);
  if (!m) throw std::runtime_error(diags.format_all());
  return TestManifest{std::move(*m)};
}

// `args` with the action's plugin.toml defaults filled in where absent.
inline nlohmann::json with_defaults(const TestManifest& tm, const std::string& action, nlohmann::json args) {
  const dsl::PluginAction* a = tm.manifest.find(action);
  if (!a) throw std::runtime_error("plugin '" + tm.manifest.name + "' has no action '" + action + "'");
  for (const dsl::ActionParam& p : a->params)
    if (p.default_value && !args.contains(p.name)) args[p.name] = nlohmann::json::parse(p.default_value->to_json());
  return args;
}

}  // namespace sluice::test
