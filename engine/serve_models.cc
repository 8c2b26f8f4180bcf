#include "engine/serve_models.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "engine/model_card.h"
#include "engine/model_json.h"
#include "engine/serve.h"
#include "registry/model_registry.h"

namespace sluice::engine {

namespace reg = sluice::registry;
using nlohmann::json;

namespace {

// A registry connection for this request. Opening one is a file open and a
// schema-version read; these endpoints are not on a hot path, so there is
// no pool.
reg::ModelRegistry open_registry(const Call& call) { return reg::ModelRegistry(call.ctx.opt.home + "/sluice.db"); }

std::string model_url(const Call& call, const std::string& name) { return call.base_url() + "/api/v1/models/" + name; }

json aliases_json(const reg::ModelSummary& m) {
  json out = json::object();
  for (const auto& [alias, version] : m.aliases) out[alias] = version;
  return out;
}

ApiError not_found(const std::string& message) { return ApiError{404, "not_found", message, 0}; }

ApiError invalid(const std::string& message) { return ApiError{422, "invalid_request", message, 0}; }

// The body of PUT .../aliases/{alias}: {"version": N, "reason": "..."}.
struct AliasMove {
  int64_t version = 0;
  std::string reason;
};

AliasMove parse_alias_move(const std::string& text) {
  const char* kShape = "the request body must be a JSON object such as {\"version\": 3, \"reason\": \"why\"}";
  if (text.empty()) throw ApiError{400, "bad_request", kShape, 0};
  json body = json::parse(text, nullptr, false);
  if (body.is_discarded()) throw ApiError{400, "bad_request", "the request body is not valid JSON", 0};
  if (!body.is_object()) throw ApiError{400, "bad_request", kShape, 0};
  for (const auto& [key, value] : body.items())
    if (key != "version" && key != "reason")
      throw invalid("unknown field '" + key + "' in the request body: expected 'version' and 'reason'");
  if (!body.contains("version")) throw invalid("'version' is required: the version number the alias moves to");
  const json& v = body["version"];
  if (!v.is_number_integer() || v.get<int64_t>() < 1)
    throw invalid("'version' must be a version number (an integer from 1); found " + v.dump());
  AliasMove out{v.get<int64_t>(), ""};
  if (body.contains("reason")) {
    if (!body["reason"].is_string()) throw invalid("'reason' must be a string; found " + body["reason"].dump());
    out.reason = body["reason"].get<std::string>();
  }
  return out;
}

}  // namespace

void list_models(Call& call) {
  call.require(reg::TokenScope::Read, "");
  reg::ModelRegistry registry = open_registry(call);
  json list = json::array();
  for (const reg::ModelSummary& m : registry.list_models()) {
    json latest;  // null while the model has no version
    if (m.latest > 0)
      if (auto v = registry.version(m.name, m.latest)) latest = version_json(*v);
    list.push_back({{"name", m.name},
                    {"created_at", utc_time(m.created_at)},
                    {"updated_at", utc_time(m.updated_at)},
                    {"versions", m.versions},
                    {"latest", latest},
                    {"aliases", aliases_json(m)},
                    {"url", model_url(call, m.name)}});
  }
  call.json(200, {{"models", list}});
}

void get_model(Call& call) {
  const std::string name = call.param(1);
  call.require(reg::TokenScope::Read, "");
  reg::ModelRegistry registry = open_registry(call);
  reg::Result<reg::ModelSummary> m = reg::Error{""};
  json versions = json::array(), history = json::array(), decisions = json::array();
  registry.read_snapshot([&] {  // the model, its versions, moves and decisions as of one moment
    m = registry.model(name);
    if (!m) return;
    if (auto vs = registry.versions(name))
      for (const reg::ModelVersion& v : *vs) versions.push_back(version_json(v));
    if (auto hs = registry.history(name))
      for (const reg::AliasEvent& e : *hs) history.push_back(event_json(e));
    if (auto ds = registry.decisions(name))
      for (const reg::Decision& d : *ds) decisions.push_back(decision_json(d));
  });
  if (!m) throw not_found(m.error());
  call.json(200, {{"name", m->name},
                  {"created_at", utc_time(m->created_at)},
                  {"updated_at", utc_time(m->updated_at)},
                  {"aliases", aliases_json(*m)},
                  {"versions", versions},
                  {"history", history},
                  {"decisions", decisions},
                  {"url", model_url(call, m->name)}});
}

void put_model_alias(Call& call) {
  const std::string name = call.param(1), alias = call.param(2);
  call.require(reg::TokenScope::Admin, "");
  // The CLI's rules: the alias name first, then the body, then what the
  // registry holds.
  if (std::string e = reg::check_alias_name(alias); !e.empty()) throw invalid(e);
  const AliasMove move = parse_alias_move(call.body);
  reg::ModelRegistry registry = open_registry(call);
  if (auto v = registry.version(name, move.version); !v) throw not_found(v.error());
  reg::PromoteRequest r;
  r.model = name;
  r.version = move.version;
  r.alias = alias;
  r.actor = call.caller.token_id;
  r.reason = move.reason;
  auto out = registry.promote(r);
  // The model and the version exist (versions are never deleted), so what is
  // left is the version being archived.
  if (!out) throw ApiError{409, "conflict", out.error(), 0};
  const bool moved = out->outcome == reg::PromoteResult::Outcome::Moved;
  call.json(200, {{"model", name},
                  {"alias", alias},
                  {"version", move.version},
                  {"previous", out->previous ? json(out->previous) : json(nullptr)},
                  {"moved", moved},
                  {"actor", r.actor},
                  {"reason", r.reason},
                  {"url", model_url(call, name)}});
}

}  // namespace sluice::engine
