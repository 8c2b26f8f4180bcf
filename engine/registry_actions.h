#pragma once
// The built-in `registry` plugin: `uses = "registry.register"`, "registry.promote"
// and "registry.archive" steps. The manifest is built in code (no plugin.toml);
// one handler serves every action and works on the store of ActionCall::home.
// See docs/registry.md, "Actions".
#include <memory>

#include "dsl/plugin_manifest.h"
#include "engine/action.h"

namespace sluice::engine {

dsl::PluginManifest registry_plugin_manifest();
std::shared_ptr<ActionHandler> make_registry_handler();

}  // namespace sluice::engine
