// `sluice validate FILE...`: the CI gate for workflow files.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "dsl/parser.h"
#include "engine/cli.h"
#include "engine/exit_status.h"
#include "engine/plugin_check.h"
#include "engine/workflow_args.h"

namespace sluice::engine {

namespace {

nlohmann::json diagnostic_json(const dsl::Diagnostic& d) {
  return {{"path", d.path},         {"line", d.pos.line}, {"column", d.pos.column},
          {"severity", dsl::severity_name(d.severity)}, {"code", d.code}, {"message", d.message}};
}

int run_validate(const Args& args) {
  const bool json = args.flag("json");
  nlohmann::json files = nlohmann::json::array();
  bool all_valid = true;
  for (const std::string& path : args.positional) {
    dsl::Diagnostics diags;
    dsl::WorkflowPtr wf = dsl::load_workflow(path, diags);
    dsl::ParamValues params;
    bool valid = wf != nullptr;
    if (valid && !args.all("param").empty()) {
      if (json) {
        params = dsl::default_params(*wf);
        for (const std::string& o : args.all("param")) {
          std::string error;
          if (!dsl::apply_override(*wf, o, params, error))
            diags.add(dsl::Diagnostic{dsl::Severity::Error, "bad-param", "-p " + o + ": " + error, path, {}});
        }
        valid = !diags.has_errors();
      } else {
        valid = resolve_params(*wf, args.all("param"), params);
      }
    }
    if (wf) {
      // Every `uses` step against the plugins this workflow can reach.
      std::unique_ptr<PluginCatalog> catalog = make_catalog(workflow_dir(*wf));
      if (!check_plugin_steps(*wf, *catalog, diags)) {
        valid = false;
        diags.set_source(wf->source);
        if (!json) std::fputs(diags.format_all().c_str(), stderr);
      }
    }
    all_valid = all_valid && valid;
    if (json) {
      nlohmann::json f = {{"path", path}, {"valid", valid}};
      if (wf) {
        f["workflow"] = wf->name;
        f["steps"] = wf->steps.size();
        f["instances"] = wf->dag.size();
        f["edges"] = wf->dag.edge_count();
      }
      nlohmann::json list = nlohmann::json::array();
      for (const dsl::Diagnostic& d : diags.items()) list.push_back(diagnostic_json(d));
      f["diagnostics"] = list;
      files.push_back(std::move(f));
    } else if (!wf) {
      std::fputs(diags.format_all().c_str(), stderr);
    } else if (valid) {
      std::printf("%s: ok: workflow '%s', %zu steps, %zu instances, %zu edges\n", path.c_str(), wf->name.c_str(),
                  wf->steps.size(), wf->dag.size(), wf->dag.edge_count());
    }
  }
  if (json) std::printf("%s\n", nlohmann::json({{"valid", all_valid}, {"files", files}}).dump(2).c_str());
  return all_valid ? kExitSuccess : kExitBadInput;
}

}  // namespace

const Command& validate_command() {
  static const Command cmd{
      "validate",
      "check workflow files and report every error with its position",
      "sluice validate [--json] [-p NAME=VALUE]... FILE...",
      "For each valid file prints a one-line summary; for an invalid one prints every\n"
      "error as 'file:line:col: error: message' with the source line and a caret, on\n"
      "stderr. Steps that use plugins are checked against the plugins on the search\n"
      "path (see 'sluice plugins'). Exits 0 when all files are valid, 2 otherwise.",
      {{"json", 0, "", "print one JSON document with every file's diagnostics"},
       {"param", 'p', "NAME=VALUE", "check a param override against its declared type", true}},
      1,
      std::numeric_limits<size_t>::max(),
      run_validate};
  return cmd;
}

}  // namespace sluice::engine
