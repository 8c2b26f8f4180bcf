#pragma once
// What commands that take a workflow file share: loading it with its
// diagnostics printed, and `-p NAME=VALUE` overrides typed against it.
#include <string>
#include <vector>

#include "dsl/params.h"
#include "dsl/parser.h"

namespace sluice::engine {

// Loads `path`; on failure prints the diagnostics to stderr and returns null.
dsl::WorkflowPtr load_or_report(const std::string& path);

// Defaults plus each "NAME=VALUE" in `overrides`; on a bad one prints
// "sluice: error: -p ...: ..." to stderr and returns false.
bool resolve_params(const dsl::Workflow& wf, const std::vector<std::string>& overrides, dsl::ParamValues& out);

}  // namespace sluice::engine
