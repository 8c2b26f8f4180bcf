// `sluice lineage DIGEST [--format text|dot|json]`: the runs and steps that
// produced an artifact, from which inputs, recursively, and who consumed it.
#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/cli.h"
#include "engine/cli_format.h"
#include "engine/exit_status.h"
#include "engine/state_store.h"
#include "registry/model_registry.h"

namespace sluice::engine {

namespace {

namespace reg = sluice::registry;

struct Production {
  reg::LineageRow by;  // run, node, output name, path
  std::string status;  // the step's status: "succeeded", or "cached" for a restored result
  std::vector<reg::InputRow> inputs;
};

struct Artifact {
  reg::ArtifactRow row;
  std::vector<Production> produced_by;
};

// Every artifact reachable from `root` through producers' inputs.
std::map<std::string, Artifact> collect(reg::Store& store, const reg::ArtifactRow& root) {
  std::map<std::string, Artifact> out;
  std::vector<std::string> work{root.digest};
  while (!work.empty()) {
    std::string d = std::move(work.back());
    work.pop_back();
    if (out.count(d)) continue;
    Artifact& a = out[d];
    a.row = store.artifact(d).value_or(reg::ArtifactRow{d, reg::ArtifactKind::File, 0, 0});
    for (const reg::LineageRow& p : store.producers(d)) {
      Production prod{p, "", store.inputs(p.run_id, p.node)};
      if (auto s = store.step(p.run_id, p.node)) prod.status = reg::to_string(s->status);
      for (const reg::InputRow& in : prod.inputs) work.push_back(in.digest);
      a.produced_by.push_back(std::move(prod));
    }
  }
  return out;
}

std::string describe(const reg::ArtifactRow& a) {
  return a.digest + " (" + reg::to_string(a.kind) + ", " + format_bytes(a.size) + ")";
}

void text(const std::map<std::string, Artifact>& all, const std::string& digest, int depth, std::set<std::string>& shown,
          std::string& out) {
  const std::string pad(static_cast<size_t>(depth) * 2, ' ');
  const Artifact& a = all.at(digest);
  if (!shown.insert(digest).second) {
    out += pad + "  (its lineage is shown above)\n";
    return;
  }
  if (a.produced_by.empty()) out += pad + "  from outside the workflows (no step produced it)\n";
  for (const Production& p : a.produced_by) {
    out += pad + "  produced by " + p.by.node + " in run " + p.by.run_id + " (output '" + p.by.name + "', " + p.by.path +
           (p.status == "cached" ? "; restored from the cache" : "") + ")\n";
    for (const reg::InputRow& in : p.inputs) {
      out += pad + "    input '" + in.name + "': " + describe(all.at(in.digest).row) + "\n";
      text(all, in.digest, depth + 2, shown, out);
    }
  }
}

nlohmann::json json_of(const std::map<std::string, Artifact>& all, const std::string& digest, std::set<std::string>& shown) {
  const Artifact& a = all.at(digest);
  nlohmann::json j = {{"digest", digest}, {"kind", reg::to_string(a.row.kind)}, {"size", a.row.size}};
  if (!shown.insert(digest).second) {
    j["repeated"] = true;  // its producers appear earlier in the document
    return j;
  }
  nlohmann::json prods = nlohmann::json::array();
  for (const Production& p : a.produced_by) {
    nlohmann::json inputs = nlohmann::json::array();
    for (const reg::InputRow& in : p.inputs) {
      nlohmann::json i = {{"name", in.name}, {"artifact", json_of(all, in.digest, shown)}};
      if (!in.from_node.empty()) i["from"] = {{"run", in.from_run}, {"node", in.from_node}, {"output", in.from_output}};
      inputs.push_back(std::move(i));
    }
    prods.push_back({{"run", p.by.run_id}, {"node", p.by.node}, {"output", p.by.name}, {"path", p.by.path},
                     {"status", p.status}, {"inputs", inputs}});
  }
  j["produced_by"] = prods;
  return j;
}

std::string dot_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string dot(const std::map<std::string, Artifact>& all, const std::string& root,
                const std::vector<reg::LineageRow>& consumers) {
  std::string out = "digraph lineage {\n  rankdir=LR;\n";
  std::set<std::string> steps;
  auto step_id = [](const std::string& run, const std::string& node) { return run + "/" + node; };
  auto step_node = [&](const std::string& run, const std::string& node) {
    std::string id = step_id(run, node);
    if (steps.insert(id).second)
      out += "  " + dot_quote(id) + " [shape=ellipse, label=" + dot_quote(node + "\n" + run) + "];\n";
    return dot_quote(id);
  };
  for (const auto& [digest, a] : all) {
    out += "  " + dot_quote(digest) + " [shape=box" + std::string(digest == root ? ", style=bold" : "") +
           ", label=" + dot_quote(digest.substr(0, 19) + (digest.size() > 19 ? ".." : "") + "\n" + reg::to_string(a.row.kind) +
                                  ", " + format_bytes(a.row.size)) +
           "];\n";
  }
  for (const auto& [digest, a] : all) {
    for (const Production& p : a.produced_by) {
      std::string s = step_node(p.by.run_id, p.by.node);
      out += "  " + s + " -> " + dot_quote(digest) + " [label=" + dot_quote(p.by.name) + "];\n";
      for (const reg::InputRow& in : p.inputs)
        out += "  " + dot_quote(in.digest) + " -> " + s + " [label=" + dot_quote(in.name) + "];\n";
    }
  }
  for (const reg::LineageRow& c : consumers)
    out += "  " + dot_quote(root) + " -> " + step_node(c.run_id, c.node) + " [label=" + dot_quote(c.name) + "];\n";
  return out + "}\n";
}

int run_lineage(const Args& args) {
  const std::string& target = args.positional[0];
  const std::string format = args.flag("json") ? "json" : args.value("format", "text");
  if (format != "text" && format != "dot" && format != "json")
    return usage_error(lineage_command(), "unknown format '" + format + "': use text, dot or json");
  auto store = open_history_store("lineage", state_home(args));
  if (!store) return kExitBadInput;
  std::string error;
  // MODEL@VERSION or MODEL@ALIAS: the lineage of that version's artifact.
  std::string digest = target;
  if (size_t at = target.find('@'); at != std::string::npos) {
    reg::ModelRegistry models(state_home(args) + "/sluice.db");
    reg::Result<reg::ModelVersion> v = models.resolve(target.substr(0, at), target.substr(at + 1));
    if (!v) {
      std::fprintf(stderr, "sluice lineage: error: %s: %s\n", target.c_str(), v.error().c_str());
      return kExitBadInput;
    }
    digest = v->digest;
  }
  std::optional<reg::ArtifactRow> root = find_artifact(*store, digest, error);
  if (!root) {
    std::fprintf(stderr, "sluice lineage: error: %s\n", error.c_str());
    return kExitBadInput;
  }
  std::map<std::string, Artifact> all = collect(*store, *root);
  std::vector<reg::LineageRow> consumers = store->consumers(root->digest);
  if (format == "dot") {
    std::fputs(dot(all, root->digest, consumers).c_str(), stdout);
  } else if (format == "json") {
    std::set<std::string> shown;
    nlohmann::json j = json_of(all, root->digest, shown);
    nlohmann::json c = nlohmann::json::array();
    for (const reg::LineageRow& r : consumers) c.push_back({{"run", r.run_id}, {"node", r.node}, {"input", r.name}});
    j["consumed_by"] = c;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::string out = describe(*root) + "\n";
    std::set<std::string> shown;
    text(all, root->digest, 0, shown, out);
    for (const reg::LineageRow& r : consumers)
      out += "  consumed by " + r.node + " in run " + r.run_id + " (input '" + r.name + "')\n";
    std::fputs(out.c_str(), stdout);
  }
  return kExitSuccess;
}

}  // namespace

const Command& lineage_command() {
  static const Command cmd{"lineage",
                           "show where an artifact came from (steps, runs, inputs, recursively) and who used it",
                           "sluice lineage DIGEST [--format text|dot|json] [--json] [--home DIR]",
                           "DIGEST is sha256:<hex> (sha256:<hex>.tree for a folder) or a unique start of\n"
                           "one. MODEL@VERSION needs the model registry.",
                           {{"format", 0, "FORMAT", "text (default), dot (Graphviz) or json"}, {"json", 0, "", "the same as --format json"},
                            kHomeOption},
                           1,
                           1,
                           run_lineage};
  return cmd;
}

}  // namespace sluice::engine
