#include "dsl/checker.h"

#include <algorithm>
#include <filesystem>
#include <unordered_map>

#include "dsl/lua_expr.h"
#include "dsl/params.h"
#include "dsl/source_map.h"
#include "dsl/suggest.h"
#include "dsl/triggers.h"

namespace sluice::dsl {

namespace {

// Where a template stands decides which references make sense there.
enum class Field { Command, With, Input, Env, WorkflowEnv };

template <class T>
std::vector<std::string> names_of(const std::vector<T>& items) {
  std::vector<std::string> out;
  out.reserve(items.size());
  for (const T& i : items) out.push_back(i.name);
  return out;
}

std::string with_article(ValueType t) {
  const std::string n = type_name(t);
  return (n[0] == 'i' || n[0] == 'a' ? "an " : "a ") + n;
}

std::vector<std::string> axis_keys(const Step& s) {
  std::vector<std::string> out;
  for (const MatrixAxis& a : s.matrix) out.push_back(a.key);
  return out;
}

// Matrix expansion multiplies: six axes of 40 values are 4.1 billion
// instances, from a few hundred bytes of TOML. And every instance of a step
// depends on every instance of each step it needs. Past these limits the
// workflow is refused before anything is expanded.
constexpr uint64_t kMaxStepInstances = 10'000;
constexpr uint64_t kMaxDagNodes = 1'000'000;
constexpr uint64_t kMaxDagEdges = 10'000'000;

class Checker {
 public:
  Checker(Workflow& wf, Diagnostics& diags) : wf_(wf), diags_(diags), map_(wf.source) {
    index_.reserve(wf.steps.size());
    for (uint32_t i = 0; i < wf.steps.size(); ++i) index_.emplace(wf.steps[i].name, i);
  }

  void run() {
    for (const NamedTemplate& e : wf_.env) check_template(e.value, nullptr, Field::WorkflowEnv, nullptr);
    for (uint32_t i = 0; i < wf_.steps.size(); ++i) check_step(i);
    for (const EventTrigger& t : wf_.triggers) check_trigger(t);
    if (dag_within_limits()) {
      build_dag();
      return;
    }
    // Too large to expand: look for cycles among the steps themselves (the
    // same cycles, as the instances of a step share its dependencies).
    std::vector<Edge> edges;
    for (uint32_t i = 0; i < wf_.steps.size(); ++i)
      for (uint32_t d : wf_.steps[i].deps) edges.emplace_back(d, i);
    std::vector<uint32_t> identity(wf_.steps.size());
    for (uint32_t i = 0; i < identity.size(); ++i) identity[i] = i;
    std::vector<uint32_t> cycle = Dag::find_cycle(static_cast<uint32_t>(wf_.steps.size()), edges);
    if (!cycle.empty()) report_cycle(cycle, identity);
  }

 private:
  const std::vector<std::string>& step_names() {
    if (step_names_.empty()) step_names_ = names_of(wf_.steps);
    return step_names_;
  }

  // Index of the step named `name` referred to from step `from`, or -1 after
  // reporting why it cannot be used.
  int64_t resolve_step(const std::string& name, const Step& from, SourcePos pos, const std::string& shown) {
    auto it = index_.find(name);
    if (it == index_.end()) {
      diags_.error("unknown-step", pos, "unknown step '" + name + "' in " + shown + did_you_mean(name, step_names()));
      return -1;
    }
    if (it->second == static_cast<uint32_t>(&from - wf_.steps.data())) {
      diags_.error("self-reference", pos, "step '" + from.name + "' refers to itself in " + shown);
      return -1;
    }
    return it->second;
  }

  void check_ref(const Ref& ref, const Step* step, Field field, std::vector<uint32_t>* deps) {
    const std::string shown = "'" + ref.text + "'";
    if (field == Field::WorkflowEnv && ref.kind != Ref::Kind::Param && ref.kind != Ref::Kind::RunId &&
        ref.kind != Ref::Kind::Secret) {
      diags_.error("bad-reference", ref.pos, shown + " is not available in [env]: only params, run.id and secrets are");
      return;
    }
    switch (ref.kind) {
      case Ref::Kind::Param:
        if (!wf_.find_param(ref.key))
          diags_.error("unknown-param", ref.pos, "unknown param '" + ref.key + "' in " + shown +
                                                     did_you_mean(ref.key, names_of(wf_.params)));
        return;
      case Ref::Kind::Input:
      case Ref::Kind::Output: {
        const bool input = ref.kind == Ref::Kind::Input;
        if (field == Field::Input) {
          diags_.error("bad-reference", ref.pos, shown + " cannot be used inside 'inputs'");
          return;
        }
        const auto& list = input ? step->inputs : step->outputs;
        if (std::none_of(list.begin(), list.end(), [&](const NamedTemplate& n) { return n.name == ref.key; }))
          diags_.error(input ? "unknown-input" : "unknown-output", ref.pos,
                       "step '" + step->name + "' has no " + (input ? "input" : "output") + " '" + ref.key + "' (" +
                           shown + ")" + did_you_mean(ref.key, names_of(list)));
        return;
      }
      case Ref::Kind::Matrix: {
        if (!step->is_matrix()) {
          diags_.error("unknown-matrix-key", ref.pos, "step '" + step->name + "' has no matrix, so " + shown + " cannot be resolved");
          return;
        }
        std::vector<std::string> keys = axis_keys(*step);
        if (std::find(keys.begin(), keys.end(), ref.key) == keys.end())
          diags_.error("unknown-matrix-key", ref.pos, "step '" + step->name + "' has no matrix key '" + ref.key + "' (" +
                                                          shown + ")" + did_you_mean(ref.key, keys));
        return;
      }
      case Ref::Kind::StepOutput:
      case Ref::Kind::StepValue: {
        int64_t target = resolve_step(ref.step, *step, ref.pos, shown);
        if (target < 0) return;
        const Step& other = wf_.steps[static_cast<size_t>(target)];
        deps->push_back(static_cast<uint32_t>(target));
        if (other.is_matrix()) {
          diags_.error("matrix-reference", ref.pos,
                       shown + " is ambiguous: step '" + other.name +
                           "' is a matrix step with one result per instance; pick one in a Lua fan-in step (ctx.steps." +
                           other.name + ")");
          return;
        }
        if (ref.kind == Ref::Kind::StepOutput &&
            std::none_of(other.outputs.begin(), other.outputs.end(), [&](const NamedTemplate& n) { return n.name == ref.key; }))
          diags_.error("unknown-output", ref.pos, "step '" + other.name + "' has no output '" + ref.key + "' (" + shown + ")" +
                                                      did_you_mean(ref.key, names_of(other.outputs)));
        return;
      }
      case Ref::Kind::RunId:
      case Ref::Kind::Secret:
      case Ref::Kind::Model:
        return;  // resolved at run time
    }
  }

  void check_template(const Template& t, const Step* step, Field field, std::vector<uint32_t>* deps) {
    for (const TemplatePart& p : t.parts)
      if (p.is_ref) check_ref(p.ref, step, field, deps);
  }

  void check_step(uint32_t i) {
    Step& s = wf_.steps[i];
    std::vector<uint32_t> deps;
    for (size_t n = 0; n < s.needs.size(); ++n) {
      const std::string& name = s.needs[n];
      SourcePos pos = n < s.needs_pos.size() ? s.needs_pos[n] : s.pos;
      auto it = index_.find(name);
      if (name == s.name) {
        diags_.error("self-dependency", pos, "step '" + s.name + "' needs itself");
      } else if (it == index_.end()) {
        diags_.error("unknown-step", pos, "step '" + s.name + "' needs unknown step '" + name + "'" +
                                              did_you_mean(name, step_names()));
      } else {
        deps.push_back(it->second);
      }
    }
    if (s.kind == ActionKind::Run) check_template(s.command, &s, Field::Command, &deps);
    for (const Template& t : s.with_templates) check_template(t, &s, Field::With, &deps);
    for (const NamedTemplate& in : s.inputs) check_template(in.value, &s, Field::Input, &deps);
    for (const NamedTemplate& e : s.env) check_template(e.value, &s, Field::Env, &deps);
    if (!s.when.empty()) check_when(s, deps);
    if (s.kind == ActionKind::Lua && !s.script.empty()) check_script(s);
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    s.deps = std::move(deps);
  }

  // A trigger's params name declared params, with values of their types; a
  // value built from ${event.NAME} is a string.
  void check_trigger(const EventTrigger& t) {
    const std::string where = std::string("[[triggers.") + to_string(t.event) + "]]";
    for (const TriggerParam& p : t.params) {
      const Param* decl = wf_.find_param(p.name);
      if (!decl) {
        diags_.error("unknown-param", p.pos, "unknown param '" + p.name + "' in params of " + where +
                                                 did_you_mean(p.name, names_of(wf_.params)));
        continue;
      }
      std::string error;
      Value coerced;
      if (p.has_event_fields && decl->type != ValueType::String)
        diags_.error("type", p.value_pos, "param '" + p.name + "' is " + with_article(decl->type) + "; a value with ${event.NAME} in " +
                                              where + " is a string");
      else if (!p.has_event_fields && !coerce_param_value(*decl, p.value, coerced, error))
        diags_.error("type", p.value_pos, error + " in " + where);
    }
  }

  void check_when(const Step& s, std::vector<uint32_t>& deps) {
    for (const LuaNameRef& r : lua_expression_refs(s.when)) {
      SourcePos pos = map_.in_string(s.when_pos, r.offset);
      const std::string shown = "'when' of step '" + s.name + "'";
      if (r.root == "params") {
        if (!wf_.find_param(r.name))
          diags_.error("unknown-param", pos, "unknown param '" + r.name + "' in " + shown + did_you_mean(r.name, names_of(wf_.params)));
      } else {
        int64_t target = resolve_step(r.name, s, pos, shown);
        if (target < 0) continue;
        deps.push_back(static_cast<uint32_t>(target));
        if (wf_.steps[static_cast<size_t>(target)].is_matrix())
          diags_.error("matrix-reference", pos,
                       "'steps." + r.name + "' in " + shown + " is ambiguous: step '" + r.name +
                           "' is a matrix step with one result per instance; pick one in a Lua fan-in step (ctx.steps." +
                           r.name + ")");
      }
    }
  }

  void check_script(const Step& s) {
    namespace fs = std::filesystem;
    fs::path dir = fs::path(wf_.path).parent_path();
    fs::path script = fs::path(s.script).is_absolute() ? fs::path(s.script) : dir / s.script;
    std::error_code ec;
    if (!fs::is_regular_file(script, ec))
      diags_.error("missing-script", s.script_pos, "Lua script '" + s.script + "' of step '" + s.name + "' not found (looked for " +
                                                      script.string() + ")");
  }

  // Reports a cycle found among instances as the steps it passes through,
  // at the step that starts it. Instances of one step share their
  // dependencies, so the first repeated step closes a cycle of steps.
  void report_cycle(const std::vector<uint32_t>& node_cycle, const std::vector<uint32_t>& node_step) {
    std::vector<uint32_t> steps;
    for (uint32_t id : node_cycle) {
      uint32_t step = node_step[id];
      auto seen = std::find(steps.begin(), steps.end(), step);
      if (seen != steps.end()) {
        steps.erase(steps.begin(), seen);
        break;
      }
      steps.push_back(step);
    }
    // Start at the step declared first, so the message does not depend on
    // where the search happened to enter the cycle.
    std::rotate(steps.begin(), std::min_element(steps.begin(), steps.end()), steps.end());
    std::string path;
    for (uint32_t v : steps) path += wf_.steps[v].name + " -> ";
    path += wf_.steps[steps[0]].name;
    diags_.error("cycle", wf_.steps[steps[0]].pos, "dependency cycle: " + path);
  }

  // Reports a workflow whose DAG would exceed the limits above; true when it
  // stays within them. Counts only: nothing is expanded here.
  bool dag_within_limits() {
    std::vector<uint64_t> count(wf_.steps.size(), 1);
    bool ok = true;
    uint64_t nodes = 0;
    for (size_t i = 0; i < wf_.steps.size(); ++i) {
      const Step& s = wf_.steps[i];
      std::string axes;
      for (const MatrixAxis& a : s.matrix) {
        // Stays far from overflow: at most kMaxStepInstances times one axis.
        if (count[i] <= kMaxStepInstances) count[i] *= std::max<uint64_t>(a.values.size(), 1);
        axes += (axes.empty() ? "" : " x ") + std::to_string(a.values.size()) + " (" + a.key + ")";
      }
      if (count[i] > kMaxStepInstances) {
        diags_.error("matrix-too-large", s.pos,
                     "the matrix of step '" + s.name + "' has more than " + std::to_string(kMaxStepInstances) +
                         " combinations (" + axes + "); at most " + std::to_string(kMaxStepInstances) + " are allowed");
        ok = false;
      }
      nodes += count[i];
    }
    if (!ok) return false;
    if (nodes > kMaxDagNodes) {
      diags_.error("dag-too-large", SourcePos{1, 1},
                   "the workflow expands to " + std::to_string(nodes) + " step instances; at most " +
                       std::to_string(kMaxDagNodes) + " are allowed");
      return false;
    }
    uint64_t edges = 0;
    for (size_t i = 0; i < wf_.steps.size(); ++i) {
      for (uint32_t d : wf_.steps[i].deps) edges += count[d] * count[i];
      if (edges > kMaxDagEdges) {
        const Step& s = wf_.steps[i];
        diags_.error("dag-too-large", s.pos,
                     "step '" + s.name + "' takes the workflow past " + std::to_string(kMaxDagEdges) +
                         " dependencies between instances: each of its " + std::to_string(count[i]) +
                         " instances depends on every instance of the steps it needs");
        return false;
      }
    }
    return true;
  }

  void build_dag() {
    std::vector<DagNode> nodes;
    std::vector<std::vector<uint32_t>> instances(wf_.steps.size());
    for (uint32_t i = 0; i < wf_.steps.size(); ++i) {
      const Step& s = wf_.steps[i];
      if (!s.is_matrix()) {
        instances[i].push_back(static_cast<uint32_t>(nodes.size()));
        nodes.push_back(DagNode{s.name, i, {}});
        continue;
      }
      // Cartesian product in sorted-key order, the last key varying fastest.
      std::vector<size_t> idx(s.matrix.size(), 0);
      for (;;) {
        DagNode node{s.name + "[", i, {}};
        for (size_t a = 0; a < s.matrix.size(); ++a) {
          const Value& v = s.matrix[a].values[idx[a]];
          node.name += (a ? "," : "") + s.matrix[a].key + "=" + v.to_text();
          node.matrix.emplace_back(s.matrix[a].key, v);
        }
        node.name += "]";
        instances[i].push_back(static_cast<uint32_t>(nodes.size()));
        nodes.push_back(std::move(node));
        size_t a = s.matrix.size();
        while (a > 0 && ++idx[a - 1] == s.matrix[a - 1].values.size()) idx[--a] = 0;
        if (a == 0) break;
      }
    }
    std::vector<Edge> edges;
    for (uint32_t i = 0; i < wf_.steps.size(); ++i)
      for (uint32_t d : wf_.steps[i].deps)
        for (uint32_t from : instances[d])
          for (uint32_t to : instances[i]) edges.emplace_back(from, to);
    std::vector<uint32_t> node_step(nodes.size()), cycle;
    for (size_t n = 0; n < nodes.size(); ++n) node_step[n] = nodes[n].step;
    Dag dag;
    if (!Dag::build(std::move(nodes), std::move(edges), dag, cycle)) {
      report_cycle(cycle, node_step);
      return;
    }
    if (!diags_.has_errors()) wf_.dag = std::move(dag);
  }

  Workflow& wf_;
  Diagnostics& diags_;
  SourceMap map_;
  std::unordered_map<std::string, uint32_t> index_;
  std::vector<std::string> step_names_;
};

}  // namespace

void check_workflow(Workflow& wf, Diagnostics& diags) { Checker(wf, diags).run(); }

}  // namespace sluice::dsl
