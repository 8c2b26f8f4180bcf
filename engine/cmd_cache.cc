// `sluice why RUN STEP` (why a step ran or was cached) and `sluice cache
// clear [WORKFLOW[.STEP]]`.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "engine/cache_key.h"
#include "engine/cli.h"
#include "engine/cli_format.h"
#include "engine/exit_status.h"
#include "engine/state_store.h"

namespace sluice::engine {

namespace {

namespace reg = sluice::registry;

// "hit RUN NODE" -> {"hit", RUN, NODE}; node names may hold spaces.
struct Note {
  std::string kind, run, node;
};

Note parse_note(const std::string& note) {
  Note n;
  size_t a = note.find(' ');
  n.kind = note.substr(0, a);
  if (a == std::string::npos) return n;
  size_t b = note.find(' ', a + 1);
  if (n.kind == "off") {
    n.kind += " " + note.substr(a + 1);
    return n;
  }
  n.run = note.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
  if (b != std::string::npos) n.node = note.substr(b + 1);
  return n;
}

// A value part "value:NODE.KEY": the node (which may hold dots inside its
// matrix brackets) and the key.
std::pair<std::string, std::string> split_value_part(const std::string& part) {
  std::string rest = part.substr(part.find(':') + 1);
  size_t bracket = rest.rfind(']');
  size_t dot = rest.find('.', bracket == std::string::npos ? 0 : bracket);
  if (dot == std::string::npos) return {rest, {}};
  return {rest.substr(0, dot), rest.substr(dot + 1)};
}

std::vector<KeyPart> parts_of(reg::Store& store, const std::string& run, const std::string& node) {
  std::vector<KeyPart> out;
  for (const reg::KeyPartRow& k : store.key_parts(run, node)) out.push_back({k.part, k.digest});
  return out;
}

// The run and node whose key parts a successful step stands for: itself, or
// for a cached step the execution it came from.
std::pair<std::string, std::string> key_source(const reg::StepRow& s) {
  Note n = parse_note(s.cache_note);
  if (s.status == reg::StepStatus::Cached && (n.kind == "hit" || n.kind == "reused") && !n.run.empty())
    return {n.run, n.node};
  return {s.run_id, s.node};
}

struct Explanation {
  std::string decision;  // "cached", "reused", "ran", "not run"
  std::string reason;    // one line
  std::string compared_with;  // the earlier run whose key parts were compared
  std::vector<std::string> changes;
  std::string cached_from_run, cached_from_node;
};

Explanation explain(reg::Store& store, const reg::RunRow& run, const reg::StepRow& s) {
  Explanation x;
  Note n = parse_note(s.cache_note);
  if (s.cache_note.empty()) {
    x.decision = "not run";
    x.reason = std::string(reg::to_string(s.status)) + (s.skip_reason.empty() ? "" : " (" + s.skip_reason + ")") +
               ": the cache was not consulted";
    return x;
  }
  if (n.kind == "hit") {
    x.decision = "cached";
    x.reason = "its cache key matches the result of step '" + n.node + "' in run " + n.run;
    x.cached_from_run = n.run;
    x.cached_from_node = n.node;
    return x;
  }
  if (n.kind == "reused") {
    x.decision = "reused";
    x.reason = "sluice retry reused its result from run " + n.run;
    x.cached_from_run = n.run;
    x.cached_from_node = n.node;
    return x;
  }
  x.decision = "ran";
  if (n.kind == "off step") {
    x.reason = "cache = false";
    return x;
  }
  if (n.kind == "off no-outputs") {
    x.reason = "the step declares no outputs, so it is never cached";
    return x;
  }
  if (n.kind == "off run") x.reason = "--no-cache";
  std::vector<KeyPart> now = parts_of(store, s.run_id, s.node);
  if (now.empty()) {
    if (x.reason.empty()) x.reason = "its cache key could not be computed (see the step's error)";
    return x;
  }
  std::optional<reg::StepRow> last = store.last_successful(run.workflow_name, s.node, run.id);
  if (!last) {
    if (x.reason.empty()) x.reason = "no earlier execution";
    else x.changes.push_back("no earlier execution");
    return x;
  }
  auto [src_run, src_node] = key_source(*last);
  x.compared_with = last->run_id;
  std::vector<KeyPart> before = parts_of(store, src_run, src_node);
  auto value_text = [&](const std::string& part, const std::string&, bool was) -> std::string {
    auto [node, key] = split_value_part(part);
    for (const reg::ValueRow& v : store.values(was ? last->run_id : s.run_id, node))
      if (v.key == key) return "'" + v.value + "'";
    return {};
  };
  x.changes = describe_key_changes(before, now, value_text);
  if (x.reason.empty()) {
    x.reason = x.changes.empty()
                   ? "its key matches run " + last->run_id +
                         ", but that result is no longer in the cache (cleared, or its outputs are gone from the artifact store)"
                   : "changed since run " + last->run_id;
  }
  return x;
}

int run_why(const Args& args) {
  auto store = open_history_store("why", state_home(args));
  if (!store) return kExitBadInput;
  const std::string& id = args.positional[0];
  const std::string& name = args.positional[1];
  std::optional<reg::RunRow> run = store->run(id);
  if (!run) {
    std::fprintf(stderr, "sluice why: error: no run '%s'\n", id.c_str());
    return kExitBadInput;
  }
  std::vector<reg::StepRow> steps;
  for (reg::StepRow& s : store->steps(id))
    if (s.node == name || s.step == name) steps.push_back(std::move(s));
  if (steps.empty()) {
    std::fprintf(stderr, "sluice why: error: run %s has no step '%s'\n", id.c_str(), name.c_str());
    return kExitBadInput;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const reg::StepRow& s : steps) {
    Explanation x = explain(*store, *run, s);
    if (args.flag("json")) {
      nlohmann::json j = {{"node", s.node},           {"status", reg::to_string(s.status)}, {"decision", x.decision},
                          {"reason", x.reason},       {"changes", x.changes},               {"cache_key", s.cache_key},
                          {"compared_with", x.compared_with}};
      if (!x.cached_from_run.empty()) j["cached_from"] = {{"run", x.cached_from_run}, {"node", x.cached_from_node}};
      nlohmann::json parts = nlohmann::json::object();
      for (const reg::KeyPartRow& k : store->key_parts(s.run_id, s.node)) parts[k.part] = k.digest;
      j["key_parts"] = parts;
      list.push_back(std::move(j));
      continue;
    }
    std::printf("%s: %s: %s\n", s.node.c_str(), x.decision.c_str(), x.reason.c_str());
    for (const std::string& c : x.changes) std::printf("  %s\n", c.c_str());
  }
  if (args.flag("json")) std::printf("%s\n", nlohmann::json({{"run", id}, {"steps", list}}).dump(2).c_str());
  return kExitSuccess;
}

int run_cache(const Args& args) {
  const std::string& sub = args.positional[0];
  if (sub != "clear") return usage_error(cache_command(), "unknown subcommand '" + sub + "': use 'clear'");
  if (args.positional.size() > 2) return usage_error(cache_command(), "unexpected argument '" + args.positional[2] + "'");
  std::string workflow, step;
  if (args.positional.size() == 2) {
    const std::string& target = args.positional[1];
    size_t dot = target.find('.');
    workflow = target.substr(0, dot);
    if (dot != std::string::npos) step = target.substr(dot + 1);
    if (workflow.empty() || (dot != std::string::npos && step.empty()))
      return usage_error(cache_command(), "'" + target + "' is not WORKFLOW or WORKFLOW.STEP");
  }
  auto store = open_history_store("cache", state_home(args));
  if (!store) return kExitBadInput;
  int64_t removed = store->clear_cache(workflow, step);
  std::string scope = workflow.empty() ? "every workflow" : step.empty() ? "workflow '" + workflow + "'"
                                                                         : "step '" + step + "' of workflow '" + workflow + "'";
  if (args.flag("json")) {
    std::printf("%s\n", nlohmann::json({{"removed", removed}, {"workflow", workflow}, {"step", step}}).dump(2).c_str());
  } else {
    std::printf("removed %lld cache %s of %s\n", static_cast<long long>(removed), removed == 1 ? "entry" : "entries",
                scope.c_str());
  }
  return kExitSuccess;
}

}  // namespace

const Command& why_command() {
  static const Command cmd{"why",
                           "say why a step ran or was cached: which part of its cache key changed",
                           "sluice why RUN STEP [--json] [--home DIR]",
                           "STEP is a step or one instance of a matrix step (\"train[lr=0.1]\"). A step\n"
                           "that ran is compared with the last successful execution of the same step\n"
                           "in an earlier run of the workflow.",
                           {kJsonOption, kHomeOption},
                           2,
                           2,
                           run_why};
  return cmd;
}

const Command& cache_command() {
  static const Command cmd{"cache",
                           "forget cached step results: of every workflow, one workflow, or one step",
                           "sluice cache clear [WORKFLOW[.STEP]] [--json] [--home DIR]",
                           "Only later cache lookups change: recorded runs, outputs and the artifact\n"
                           "store stay as they are.",
                           {kJsonOption, kHomeOption},
                           1,
                           2,
                           run_cache};
  return cmd;
}

}  // namespace sluice::engine
