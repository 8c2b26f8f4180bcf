#pragma once
// Drawings of a workflow's DAG for `sluice graph`: Graphviz DOT, Mermaid, and
// JSON with each node's resolved spec (params and matrix values substituted;
// run-time references kept as written).
#include <string>

#include "dsl/params.h"
#include "dsl/spec.h"

namespace sluice::dsl {

std::string to_dot(const Workflow& wf);
std::string to_mermaid(const Workflow& wf);
std::string to_json(const Workflow& wf, const ParamValues& params);

// A node's template with params and its matrix bindings substituted.
std::string render_static(const Template& t, const DagNode& node, const ParamValues& params);

}  // namespace sluice::dsl
