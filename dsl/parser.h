#pragma once
// Reading a workflow file: TOML++ parses the text, the reader builds the
// spec, the checker resolves references and builds the DAG. Every error of
// the file lands in `diags`; a workflow comes back only when there is none.
#include <memory>
#include <string>
#include <string_view>

#include "dsl/diagnostic.h"
#include "dsl/spec.h"

namespace sluice::dsl {

using WorkflowPtr = std::shared_ptr<const Workflow>;

// Reads `path` from disk. A file that cannot be read is a diagnostic too.
WorkflowPtr load_workflow(const std::string& path, Diagnostics& diags);

// Parses `source` as if it were the file `path` (used by tests and the fuzzer).
WorkflowPtr parse_workflow(std::string source, const std::string& path, Diagnostics& diags);

// The keys a step table accepts, for documentation and suggestions.
const std::vector<std::string>& step_keys();

}  // namespace sluice::dsl
