#pragma once
// The check of a workflow's `uses` steps against the plugins it can reach,
// shared by `sluice validate` and `sluice run` (which runs nothing when it
// fails). See docs/plugins.md, "Validation".
#include <memory>
#include <string>

#include "dsl/diagnostic.h"
#include "dsl/spec.h"
#include "engine/plugin_catalog.h"

namespace sluice::engine {

// The folder plugins of workflow `wf` are searched from first: its file's
// folder, absolute.
std::string workflow_dir(const dsl::Workflow& wf);

// The catalog the commands use: plugin_search_path(workflow_dir) ("" = no
// workflow) plus the built-in plugins.
std::unique_ptr<PluginCatalog> make_catalog(const std::string& workflow_dir);

// Checks every `uses` step of `wf`: the plugin exists (else "unknown plugin"
// at the `uses` value, naming the search path, with a did-you-mean over the
// plugins found), its plugin.toml is valid, and the action and `with` fit it
// (dsl::check_with). Errors go to `diags` (whose path is the workflow's);
// returns false when there was any.
bool check_plugin_steps(const dsl::Workflow& wf, PluginCatalog& catalog, dsl::Diagnostics& diags);

}  // namespace sluice::engine
