#include "dsl/dag_export.h"

#include <nlohmann/json.hpp>

namespace sluice::dsl {

namespace {

std::string dot_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string mermaid_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"') out += "#quot;";
    else out += c;
  }
  return out;
}

const char* kind_name(ActionKind k) {
  switch (k) {
    case ActionKind::Run: return "run";
    case ActionKind::Lua: return "lua";
    case ActionKind::LuaInline: return "lua_inline";
    case ActionKind::Uses: return "uses";
  }
  return "run";
}

nlohmann::json value_json(const Value& v, const DagNode& node, const ParamValues& params, Diagnostics& scratch) {
  switch (v.type()) {
    case ValueType::String: {
      if (v.as_string().find("${") == std::string::npos) return v.as_string();
      Template t = parse_template(v.as_string(), scratch, [](size_t) { return SourcePos{}; });
      return render_static(t, node, params);
    }
    case ValueType::Array: {
      nlohmann::json a = nlohmann::json::array();
      for (const Value& e : v.as_array()) a.push_back(value_json(e, node, params, scratch));
      return a;
    }
    case ValueType::Table: {
      nlohmann::json t = nlohmann::json::object();
      for (const auto& [k, e] : v.as_table()) t[k] = value_json(e, node, params, scratch);
      return t;
    }
    default: return nlohmann::json::parse(v.to_json());
  }
}

}  // namespace

std::string render_static(const Template& t, const DagNode& node, const ParamValues& params) {
  return render(t, [&](const Ref& r) -> std::optional<std::string> {
    if (r.kind == Ref::Kind::Param) {
      auto it = params.find(r.key);
      if (it != params.end()) return it->second.to_text();
    } else if (r.kind == Ref::Kind::Matrix) {
      for (const auto& [k, v] : node.matrix)
        if (k == r.key) return v.to_text();
    }
    return std::nullopt;
  });
}

std::string to_dot(const Workflow& wf) {
  std::string out = "digraph " + dot_quote(wf.name) + " {\n  rankdir=LR;\n  node [shape=box];\n";
  for (const DagNode& n : wf.dag.nodes()) out += "  " + dot_quote(n.name) + ";\n";
  for (uint32_t i = 0; i < wf.dag.size(); ++i)
    for (uint32_t s : wf.dag.successors(i))
      out += "  " + dot_quote(wf.dag.node(i).name) + " -> " + dot_quote(wf.dag.node(s).name) + ";\n";
  return out + "}\n";
}

std::string to_mermaid(const Workflow& wf) {
  std::string out = "flowchart LR\n";
  for (uint32_t i = 0; i < wf.dag.size(); ++i)
    out += "  n" + std::to_string(i) + "[\"" + mermaid_label(wf.dag.node(i).name) + "\"]\n";
  for (uint32_t i = 0; i < wf.dag.size(); ++i)
    for (uint32_t s : wf.dag.successors(i)) out += "  n" + std::to_string(i) + " --> n" + std::to_string(s) + "\n";
  return out;
}

std::string to_json(const Workflow& wf, const ParamValues& params) {
  using nlohmann::json;
  Diagnostics scratch;  // templates were checked when the workflow loaded
  json nodes = json::array();
  for (uint32_t i = 0; i < wf.dag.size(); ++i) {
    const DagNode& n = wf.dag.node(i);
    const Step& s = wf.steps[n.step];
    json j;
    j["name"] = n.name;
    j["step"] = s.name;
    json m = json::object();
    for (const auto& [k, v] : n.matrix) m[k] = json::parse(v.to_json());
    j["matrix"] = m;
    j["kind"] = kind_name(s.kind);
    switch (s.kind) {
      case ActionKind::Run: j["run"] = render_static(s.command, n, params); break;
      case ActionKind::Lua: j["lua"] = s.script; break;
      case ActionKind::LuaInline: j["lua_inline"] = s.script; break;
      case ActionKind::Uses: j["uses"] = s.plugin + "." + s.action; break;
    }
    json with = json::object();
    for (const WithArg& a : s.with) with[a.name] = value_json(a.value, n, params, scratch);
    j["with"] = with;
    json inputs = json::object(), outputs = json::object(), env = json::object();
    for (const NamedTemplate& t : s.inputs) inputs[t.name] = render_static(t.value, n, params);
    for (const NamedTemplate& t : s.outputs) outputs[t.name] = t.value.text;
    for (const NamedTemplate& t : wf.env) env[t.name] = render_static(t.value, n, params);
    for (const NamedTemplate& t : s.env) env[t.name] = render_static(t.value, n, params);
    j["inputs"] = inputs;
    j["outputs"] = outputs;
    j["env"] = env;
    json needs = json::array();
    for (uint32_t p : wf.dag.predecessors(i)) needs.push_back(wf.dag.node(p).name);
    j["needs"] = needs;
    j["when"] = s.when.empty() ? json(nullptr) : json(s.when);
    j["retries"] = s.retries;
    j["retry_backoff"] = format_duration(s.retry_backoff);
    j["timeout"] = s.timeout ? json(format_duration(*s.timeout)) : json(nullptr);
    j["cache"] = s.cache;
    j["resources"] = {{"cpus", s.resources.cpus},
                      {"memory", s.resources.memory ? json(format_size(s.resources.memory)) : json(nullptr)},
                      {"gpus", s.resources.gpus}};
    j["executor"] = s.executor;
    j["continue_on_error"] = s.continue_on_error;
    nodes.push_back(std::move(j));
  }
  json edges = json::array();
  for (uint32_t i = 0; i < wf.dag.size(); ++i)
    for (uint32_t s : wf.dag.successors(i)) edges.push_back({{"from", wf.dag.node(i).name}, {"to", wf.dag.node(s).name}});
  json params_json = json::object();
  for (const auto& [k, v] : params) params_json[k] = json::parse(v.to_json());
  json out = {{"workflow", wf.name}, {"params", params_json}, {"nodes", nodes}, {"edges", edges}};
  return out.dump(2) + "\n";
}

}  // namespace sluice::dsl
