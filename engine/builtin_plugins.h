#pragma once
// The plugins compiled into the engine, which need the store: `registry`
// (register, promote, ...) and `workflow` (run, trigger). Each comes with a
// manifest (so `with` is validated like any plugin's) and a handler.
#include "engine/plugin_catalog.h"

namespace sluice::engine {

void add_builtin_plugins(PluginCatalog& catalog);

}  // namespace sluice::engine
