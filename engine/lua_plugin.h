#pragma once
// Lua plugins: a folder with plugin.toml (kind = "lua") and init.lua returning
// a table of actions `function(ctx, args) ... return values end`. Each call
// runs in the calling thread's LuaHost sandbox, with require() reaching the
// plugin's own folder. See docs/plugins.md, "Lua plugins".
#include <memory>
#include <string>

#include "dsl/plugin_manifest.h"
#include "engine/action.h"

namespace sluice::engine {

std::shared_ptr<ActionHandler> make_lua_plugin_handler(const dsl::PluginManifest& manifest, std::string& error);

}  // namespace sluice::engine
