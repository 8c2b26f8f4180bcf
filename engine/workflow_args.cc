#include "engine/workflow_args.h"

#include <cstdio>

namespace sluice::engine {

dsl::WorkflowPtr load_or_report(const std::string& path) {
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::load_workflow(path, diags);
  if (!wf) std::fputs(diags.format_all().c_str(), stderr);
  return wf;
}

bool resolve_params(const dsl::Workflow& wf, const std::vector<std::string>& overrides, dsl::ParamValues& out) {
  out = dsl::default_params(wf);
  for (const std::string& o : overrides) {
    std::string error;
    if (!dsl::apply_override(wf, o, out, error)) {
      std::fprintf(stderr, "sluice: error: -p %s: %s\n", o.c_str(), error.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace sluice::engine
