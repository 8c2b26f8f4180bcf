#pragma once
// Native plugins: a folder with plugin.toml (kind = "native", library = ...)
// and a shared library speaking plugins/sdk/sluice/plugin.h. Loading checks
// the entry symbol, the ABI major and that the library agrees with plugin.toml;
// any mismatch is an error naming the plugin's path. Actions run in a worker
// child process unless plugin.toml says isolate = false. See docs/plugins.md,
// "Native plugins".
#include <memory>
#include <string>

#include "dsl/plugin_manifest.h"
#include "engine/action.h"

namespace sluice::engine {

std::shared_ptr<ActionHandler> make_native_plugin_handler(const dsl::PluginManifest& manifest, std::string& error);

// The executable isolated actions run in, as `PATH __plugin-worker`: by
// default the running sluice (/proc/self/exe). Programs that are not sluice
// (unit tests) point it at a sluice binary before making handlers.
void set_plugin_worker_path(std::string path);

}  // namespace sluice::engine
