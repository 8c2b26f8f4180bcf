#include "engine/plugin_check.h"

#include <filesystem>
#include <map>

#include "dsl/plugin_manifest.h"
#include "dsl/suggest.h"
#include "engine/builtin_plugins.h"

namespace sluice::engine {

std::string workflow_dir(const dsl::Workflow& wf) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(wf.path, ec);
  if (ec) p = wf.path;
  return p.lexically_normal().parent_path().string();
}

std::unique_ptr<PluginCatalog> make_catalog(const std::string& workflow_dir) {
  auto catalog = std::make_unique<PluginCatalog>(plugin_search_path(workflow_dir));
  add_builtin_plugins(*catalog);
  return catalog;
}

bool check_plugin_steps(const dsl::Workflow& wf, PluginCatalog& catalog, dsl::Diagnostics& diags) {
  bool ok = true;
  std::vector<std::string> known;  // every plugin's name, for suggestions; listed on first need
  bool listed = false;
  for (const dsl::Step& step : wf.steps) {
    if (step.kind != dsl::ActionKind::Uses || step.plugin.empty()) continue;
    std::string error;
    const dsl::PluginManifest* m = catalog.find(step.plugin, error);
    if (!m) {
      ok = false;
      const std::string where = " in step '" + step.name + "'";
      if (error.rfind("no plugin '", 0) == 0) {
        if (!listed) {
          std::vector<std::string> problems;
          for (const dsl::PluginManifest* p : catalog.all(problems)) known.push_back(p->name);
          listed = true;
        }
        // "no plugin 'x' on the search path: no x/plugin.toml in ..." -> "unknown plugin 'x' in step 's': no ..."
        const size_t colon = error.find(": ");
        diags.error("unknown-plugin", step.script_pos,
                    "unknown plugin '" + step.plugin + "'" + where + error.substr(colon) +
                        dsl::did_you_mean(step.plugin, known));
      } else {
        const std::string first = error.substr(0, error.find('\n'));
        diags.error("bad-plugin", step.script_pos,
                    "plugin '" + step.plugin + "'" + where + " has an invalid plugin.toml: " + first +
                        " (run 'sluice plugins " + step.plugin + "' for every error)");
      }
      continue;
    }
    const size_t before = diags.items().size();
    dsl::check_with(step, *m, diags);
    if (diags.items().size() != before) ok = false;
  }
  diags.sort();
  return ok;
}

}  // namespace sluice::engine
