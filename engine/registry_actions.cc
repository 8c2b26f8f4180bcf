#include "engine/registry_actions.h"

#include <algorithm>
#include <cmath>

#include "registry/model_registry.h"
#include "registry/registration.h"
#include "sluice/version.h"

namespace sluice::engine {

namespace reg = sluice::registry;
using nlohmann::json;

namespace {

dsl::ActionParam param(std::string name, dsl::ParamKind type, bool required, std::string description,
                       std::optional<dsl::Value> default_value = std::nullopt) {
  return dsl::make_action_param(std::move(name), type, required, std::move(description), std::move(default_value));
}

dsl::PluginAction action(std::string name, std::string description, std::vector<dsl::ActionParam> params) {
  return dsl::make_plugin_action(std::move(name), std::move(description), std::move(params));
}

// A bad argument: the step fails with this message.
struct ArgError {
  std::string message;
};

std::string text_arg(const json& args, const char* name, bool required) {
  auto it = args.find(name);
  if (it == args.end() || it->is_null()) {
    if (required) throw ArgError{"'" + std::string(name) + "' is required"};
    return {};
  }
  if (!it->is_string()) throw ArgError{"'" + std::string(name) + "' must be a string"};
  return it->get<std::string>();
}

// A version argument: an integer, or text that is a number, "latest" or an alias.
std::string ref_arg(const json& args, const char* name, const std::string& fallback) {
  auto it = args.find(name);
  if (it == args.end() || it->is_null()) {
    if (fallback.empty()) throw ArgError{"'" + std::string(name) + "' is required"};
    return fallback;
  }
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  if (it->is_string() && !it->get<std::string>().empty()) return it->get<std::string>();
  throw ArgError{"'" + std::string(name) + "' must be a version number, \"latest\" or an alias"};
}

double number_of(const json& v, const std::string& what) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return d;
  }
  throw ArgError{what + " must be a number, not " + v.dump()};
}

std::optional<std::vector<reg::MetricValue>> metrics_arg(const json& args) {
  auto it = args.find("metrics");
  if (it == args.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) throw ArgError{"'metrics' must be a table of numbers"};
  std::vector<reg::MetricValue> out;
  for (auto m = it->begin(); m != it->end(); ++m) out.push_back({m.key(), number_of(m.value(), "metric '" + m.key() + "'")});
  return out;
}

std::vector<std::pair<std::string, std::string>> tags_arg(const json& args) {
  auto it = args.find("tags");
  if (it == args.end() || it->is_null()) return {};
  if (!it->is_object()) throw ArgError{"'tags' must be a table"};
  std::vector<std::pair<std::string, std::string>> out;
  for (auto t = it->begin(); t != it->end(); ++t)
    out.emplace_back(t.key(), t.value().is_string() ? t.value().get<std::string>() : t.value().dump());
  return out;
}

// A JSON value as the dsl::Value a gate sees (null becomes absent).
std::optional<dsl::Value> to_value(const json& j) {
  if (j.is_boolean()) return dsl::Value(j.get<bool>());
  if (j.is_number_integer()) return dsl::Value(j.get<int64_t>());
  if (j.is_number()) return dsl::Value(j.get<double>());
  if (j.is_string()) return dsl::Value(j.get<std::string>());
  if (j.is_array()) {
    dsl::ValueArray a;
    for (const json& e : j)
      if (auto v = to_value(e)) a.push_back(std::move(*v));
    return dsl::Value(std::move(a));
  }
  if (j.is_object()) {
    dsl::ValueTable t;
    for (auto it = j.begin(); it != j.end(); ++it)
      if (auto v = to_value(it.value())) t.emplace(it.key(), std::move(*v));
    return dsl::Value(std::move(t));
  }
  return std::nullopt;
}

// What a gate sees of a version (and what the decision records).
json version_json(const reg::ModelVersion& v) {
  json metrics = json::object();
  for (const reg::MetricValue& m : v.metrics) metrics[m.name] = std::isfinite(m.value) ? json(m.value) : json(nullptr);
  json tags = json::object();
  for (const auto& [k, t] : v.tags) tags[k] = t;
  json params = json::parse(v.params_json.empty() ? "{}" : v.params_json, nullptr, false);
  return {{"model", v.model},   {"version", v.version}, {"digest", v.digest}, {"format", v.format},
          {"metrics", metrics}, {"params", params.is_discarded() ? json::object() : params},
          {"tags", tags},       {"created_at", v.created_at}};
}

reg::Registration registration(const ActionCall& call, ActionContext& ctx) {
  reg::Registration r;
  r.home = call.home;
  r.model = text_arg(call.args, "model", true);
  r.artifact = text_arg(call.args, "artifact", true);
  r.format = text_arg(call.args, "format", false);
  r.description = text_arg(call.args, "description", false);
  r.tags = tags_arg(call.args);
  r.metrics = metrics_arg(call.args);
  if (auto it = call.args.find("params"); it != call.args.end() && !it->is_null()) {
    if (!it->is_object()) throw ArgError{"'params' must be a table"};
    r.params_json = it->dump();
  }
  r.run_id = call.run_id;
  r.node = call.node;
  r.actor = reg::default_actor();
  if (auto left = ctx.time_left()) r.wait = std::min(r.wait, std::max(*left, std::chrono::milliseconds(0)));
  r.cancelled = [&ctx] { return ctx.cancelled(); };
  if (!r.artifact.empty() && r.artifact[0] != '/') r.artifact = call.workdir + "/" + r.artifact;
  return r;
}

ActionResult do_register(const ActionCall& call, ActionContext& ctx) {
  ActionResult out;
  auto v = reg::register_artifact(registration(call, ctx));
  if (!v) {
    out.error = v.error();
    return out;
  }
  ctx.log("registered " + v->model + " version " + std::to_string(v->version) + " (" + v->digest + ")");
  out.ok = true;
  out.values = {{"model", v->model}, {"version", std::to_string(v->version)}, {"digest", v->digest}};
  return out;
}

ActionResult do_promote(const ActionCall& call, ActionContext& ctx) {
  ActionResult out;
  const std::string model = text_arg(call.args, "model", true);
  const std::string alias = text_arg(call.args, "alias", true);
  const std::string ref = ref_arg(call.args, "version", "latest");
  const std::string gate = text_arg(call.args, "gate", false);
  const std::string given_reason = text_arg(call.args, "reason", false);
  if (std::string e = reg::check_alias_name(alias); !e.empty()) throw ArgError{e};
  reg::ModelRegistry registry(call.home + "/sluice.db");
  auto candidate = registry.resolve(model, ref);
  if (!candidate) {
    out.error = candidate.error();
    return out;
  }
  const std::string actor = reg::default_actor();
  // Decide against the current holder, then move only if it still holds the
  // alias; if another process moved it meanwhile, decide again.
  for (int round = 0; round < 20; ++round) {
    auto held = registry.holder(model, alias);
    if (!held) {
      out.error = held.error();
      return out;
    }
    std::optional<reg::ModelVersion> champion;
    if (*held) {
      auto c = registry.version(model, **held);
      if (!c) {
        out.error = c.error();
        return out;
      }
      champion = std::move(*c);
    }
    json inputs = {{"candidate", version_json(*candidate)}, {"champion", champion ? version_json(*champion) : json(nullptr)}};
    bool holds = true;
    if (!gate.empty()) {
      std::map<std::string, dsl::Value> globals;
      globals["candidate"] = *to_value(inputs["candidate"]);
      if (champion) globals["champion"] = *to_value(inputs["champion"]);
      LuaLimits limits;
      limits.time = std::chrono::seconds(10);
      if (auto left = ctx.time_left()) limits.time = std::clamp(*left, std::chrono::milliseconds(1), limits.time);
      std::string error;
      if (!ctx.lua().eval_expr(gate, globals, "gate", limits, holds, error)) {
        out.error = error;
        return out;
      }
      ctx.log("gate " + std::string(holds ? "held" : "did not hold") + ": candidate version " +
              std::to_string(candidate->version) + " vs " +
              (champion ? "champion version " + std::to_string(champion->version) : std::string("no champion")));
    }
    const std::string previous = champion ? std::to_string(champion->version) : std::string();
    reg::DecisionInput decision{gate, inputs.dump(), ""};
    if (!holds) {
      decision.reason = "gate did not hold: " + gate;
      auto rec = registry.record_rejection(model, candidate->version, alias, champion ? champion->version : 0, decision,
                                           actor, call.run_id, call.node);
      if (!rec) {
        out.error = rec.error();
        return out;
      }
      out.ok = true;
      out.values = {{"promoted", "false"}, {"reason", decision.reason}, {"version", std::to_string(candidate->version)},
                    {"previous", previous}, {"model", model}, {"alias", alias}};
      return out;
    }
    decision.reason = gate.empty() ? std::string("promoted without a gate") : "gate held: " + gate;
    reg::PromoteRequest req;
    req.model = model;
    req.version = candidate->version;
    req.alias = alias;
    req.actor = actor;
    req.reason = given_reason.empty() ? decision.reason : given_reason;
    req.run_id = call.run_id;
    req.node = call.node;
    req.expected = champion ? champion->version : 0;
    req.decision = decision;
    auto moved = registry.promote(req);
    if (!moved) {
      out.error = moved.error();
      return out;
    }
    if (moved->outcome == reg::PromoteResult::Outcome::HolderChanged) continue;
    const bool promoted = moved->outcome == reg::PromoteResult::Outcome::Moved;
    const std::string reason = promoted ? decision.reason
                                        : "version " + std::to_string(candidate->version) + " already holds alias '" +
                                              alias + "'";
    ctx.log(promoted ? "moved alias '" + alias + "' of " + model + " to version " + std::to_string(candidate->version) +
                           (previous.empty() ? std::string() : " (was version " + previous + ")")
                     : reason);
    out.ok = true;
    out.values = {{"promoted", promoted ? "true" : "false"}, {"reason", reason},
                  {"version", std::to_string(candidate->version)}, {"previous", previous}, {"model", model},
                  {"alias", alias}};
    return out;
  }
  out.error = "alias '" + alias + "' of model '" + model + "' kept moving while the gate was evaluated; gave up after 20 rounds";
  return out;
}

ActionResult do_archive(const ActionCall& call, ActionContext& ctx) {
  ActionResult out;
  const std::string model = text_arg(call.args, "model", true);
  const std::string ref = ref_arg(call.args, "version", "");
  reg::ModelRegistry registry(call.home + "/sluice.db");
  auto v = registry.resolve(model, ref);
  if (!v) {
    out.error = v.error();
    return out;
  }
  auto archived = registry.archive(model, v->version, reg::default_actor());
  if (!archived) {
    out.error = archived.error();
    return out;
  }
  ctx.log("archived " + model + " version " + std::to_string(v->version));
  out.ok = true;
  out.values = {{"model", model}, {"version", std::to_string(v->version)}};
  return out;
}

class RegistryHandler final : public ActionHandler {
 public:
  ActionResult invoke(const ActionCall& call, ActionContext& ctx) override {
    try {
      if (call.action == "register") return do_register(call, ctx);
      if (call.action == "promote") return do_promote(call, ctx);
      if (call.action == "archive") return do_archive(call, ctx);
      return failed("registry has no action '" + call.action + "' (it has register, promote and archive)");
    } catch (const ArgError& e) {
      return failed("registry." + call.action + ": " + e.message);
    } catch (const reg::StoreError& e) {
      return failed(std::string("the model registry failed: ") + e.what());
    } catch (const std::exception& e) {
      return failed("registry." + call.action + ": " + e.what());
    }
  }

 private:
  static ActionResult failed(std::string error) {
    ActionResult r;
    r.error = std::move(error);
    return r;
  }
};

}  // namespace

dsl::PluginManifest registry_plugin_manifest() {
  using K = dsl::ParamKind;
  dsl::PluginManifest m;
  m.path = "<builtin>";
  m.name = "registry";
  m.version = SLUICE_VERSION;
  m.description = "The model registry: register versions, promote them to aliases behind gates, archive them";
  m.kind = dsl::PluginKind::Builtin;
  m.actions = {
      action("archive", "Archives a model version (it must hold no alias)",
             {param("model", K::String, true, "The model's name"),
              param("version", K::Any, true, "A version number, \"latest\" or an alias")}),
      action("promote", "Moves an alias to a version if the gate holds; records the decision",
             {param("model", K::String, true, "The model's name"),
              param("alias", K::String, true, "The alias to move, e.g. \"production\""),
              param("version", K::Any, false, "The candidate: a version number, \"latest\" or an alias",
                    dsl::Value("latest")),
              param("gate", K::String, false, "A Lua expression over `candidate` and `champion` (nil without a holder)"),
              param("reason", K::String, false, "Why, for the alias history (default: the gate's verdict)")}),
      action("register", "Registers a file or folder a step produced as the model's next version",
             {param("model", K::String, true, "The model's name"),
              param("artifact", K::String, true, "The file or folder, e.g. \"${steps.train.outputs.model}\""),
              param("format", K::String, false, "The artifact's format, e.g. \"xgboost-json\""),
              param("description", K::String, false, "A line for the model card"),
              param("tags", K::Table, false, "Tags: a table of strings"),
              param("metrics", K::Table, false, "Metrics (default: those of the step that produced the artifact)"),
              param("params", K::Table, false, "Params (default: the producing run's params and matrix values)")}),
  };
  return m;
}

std::shared_ptr<ActionHandler> make_registry_handler() { return std::make_shared<RegistryHandler>(); }

}  // namespace sluice::engine
