// `sluice graph FILE`: draws the matrix-expanded DAG.
#include <cstdio>

#include "dsl/dag_export.h"
#include "engine/cli.h"
#include "engine/exit_status.h"
#include "engine/workflow_args.h"

namespace sluice::engine {

namespace {

int run_graph(const Args& args) {
  const std::string format = args.value("format", "dot");
  if (format != "dot" && format != "mermaid" && format != "json")
    return usage_error(graph_command(), "unknown format '" + format + "': use dot, mermaid or json");
  dsl::WorkflowPtr wf = load_or_report(args.positional[0]);
  if (!wf) return kExitBadInput;
  dsl::ParamValues params;
  if (!resolve_params(*wf, args.all("param"), params)) return kExitBadInput;
  std::string out = format == "dot" ? dsl::to_dot(*wf) : format == "mermaid" ? dsl::to_mermaid(*wf) : dsl::to_json(*wf, params);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitSuccess;
}

}  // namespace

const Command& graph_command() {
  static const Command cmd{
      "graph",
      "draw a workflow's DAG as Graphviz DOT, Mermaid or JSON",
      "sluice graph [--format dot|mermaid|json] [-p NAME=VALUE]... FILE",
      "Matrix steps appear once per instance (train[lr=0.1]). JSON lists 'nodes', each\n"
      "with its resolved spec (params and matrix values substituted), and 'edges'.",
      {{"format", 'f', "FORMAT", "dot (default), mermaid or json"},
       {"param", 'p', "NAME=VALUE", "override a param (shown in the JSON spec)", true}},
      1,
      1,
      run_graph};
  return cmd;
}

}  // namespace sluice::engine
