#pragma once
// The second pass over a read workflow (internal to dsl/): every `${...}`
// and `when` reference resolved against params, steps, inputs, outputs and
// matrix keys; dependencies gathered; cycles found; the DAG built when the
// file has no error at all.
#include "dsl/diagnostic.h"
#include "dsl/spec.h"

namespace sluice::dsl {

void check_workflow(Workflow& wf, Diagnostics& diags);

}  // namespace sluice::dsl
