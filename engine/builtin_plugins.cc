#include "engine/builtin_plugins.h"

#include "engine/registry_actions.h"
#include "engine/workflow_actions.h"

namespace sluice::engine {

void add_builtin_plugins(PluginCatalog& catalog) {
  catalog.add_builtin(registry_plugin_manifest(), make_registry_handler());
  catalog.add_builtin(workflow_plugin_manifest(), make_workflow_handler());
}

}  // namespace sluice::engine
