#pragma once
// Where plugins come from and how a `uses = "<plugin>.<action>"` step finds
// its handler. Built-in plugins (registry, workflow) are registered in code;
// every other plugin is a folder holding plugin.toml, found on the search path:
//   1. <workflow dir>/plugins, then ./plugins (the current directory)
//   2. each folder of $SLUICE_PLUGIN_PATH (':'-separated)
//   3. <dir of the sluice binary>/plugins (a build tree) and
//      <dir of the sluice binary>/../lib/sluice/plugins (an install)
// A plugin folder is `<search dir>/<name>/plugin.toml`. The first folder that
// holds a plugin of a name wins. See docs/plugins.md, "The search path".
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dsl/diagnostic.h"
#include "dsl/plugin_manifest.h"
#include "engine/action.h"

namespace sluice::engine {

// The search path for a workflow in `workflow_dir` ("" = none), in order.
std::vector<std::string> plugin_search_path(const std::string& workflow_dir);

class PluginCatalog {
 public:
  explicit PluginCatalog(std::vector<std::string> search_path);
  ~PluginCatalog();

  // Adds a built-in plugin; built-ins win over folders of the same name.
  void add_builtin(dsl::PluginManifest manifest, std::shared_ptr<ActionHandler> handler);

  // The manifest of plugin `name`, or null with `error`: when no folder holds
  // it, "no plugin '<name>' on the search path: ..." naming where it looked;
  // when its plugin.toml is invalid, that file's formatted diagnostics.
  const dsl::PluginManifest* find(const std::string& name, std::string& error);

  // The handler of plugin `name`, created on first use by kind — Lua:
  // make_lua_plugin_handler (lua_plugin.h); native: make_native_plugin_handler
  // (native_plugin.h), which loads the library — null with `error`. Thread-safe.
  std::shared_ptr<ActionHandler> handler(const std::string& name, std::string& error);

  // Every plugin on the search path and every built-in, by name; manifests
  // that do not parse are reported in `problems` (formatted diagnostics, each
  // ending in a newline) and left out.
  std::vector<const dsl::PluginManifest*> all(std::vector<std::string>& problems);

  const std::vector<std::string>& search_path() const { return search_path_; }

 private:
  struct Entry {
    std::unique_ptr<dsl::PluginManifest> manifest;
    std::shared_ptr<ActionHandler> handler;
  };
  Entry* locate(const std::string& name, std::string& error);

  std::vector<std::string> search_path_;
  std::map<std::string, Entry> entries_;  // found so far, by name
  std::map<std::string, std::string> broken_;  // invalid manifests found so far: name -> diagnostics
  std::mutex mu_;
};

}  // namespace sluice::engine
