#include "engine/model_json.h"

#include <cmath>

#include "engine/model_card.h"

namespace sluice::engine {

namespace reg = sluice::registry;
using nlohmann::json;

json metric_json(double d) { return std::isfinite(d) ? json(d) : json(format_metric(d)); }

json version_json(const reg::ModelVersion& v) {
  json metrics = json::object(), tags = json::object(), inputs = json::object();
  for (const reg::MetricValue& m : v.metrics) metrics[m.name] = metric_json(m.value);
  for (const auto& [k, t] : v.tags) tags[k] = t;
  for (const auto& in : v.lineage.inputs) inputs[in.name] = in.digest;
  json params = json::parse(v.params_json.empty() ? "{}" : v.params_json, nullptr, false);
  return {{"model", v.model},
          {"version", v.version},
          {"digest", v.digest},
          {"kind", reg::to_string(v.kind)},
          {"size", v.size},
          {"filename", v.filename},
          {"format", v.format},
          {"description", v.description},
          {"metrics", metrics},
          {"params", params.is_discarded() ? json::object() : params},
          {"tags", tags},
          {"aliases", v.aliases},
          {"lineage",
           {{"run", v.lineage.run_id},
            {"node", v.lineage.node},
            {"step", v.lineage.step},
            {"workflow", v.lineage.workflow_name},
            {"workflow_digest", v.lineage.workflow_digest},
            {"git_commit", v.lineage.git_commit},
            {"inputs", inputs},
            {"registered_run", v.lineage.registered_run},
            {"registered_node", v.lineage.registered_node}}},
          {"actor", v.actor},
          {"created_at", utc_time(v.created_at)},
          {"archived", v.archived()},
          {"archived_at", v.archived_at ? json(utc_time(*v.archived_at)) : json(nullptr)},
          {"archived_by", v.archived_by}};
}

json event_json(const reg::AliasEvent& e) {
  return {{"alias", e.alias},
          {"version", e.version},
          {"from", utc_time(e.since)},
          {"until", e.until ? json(utc_time(*e.until)) : json(nullptr)},
          {"actor", e.actor},
          {"action", e.action},
          {"reason", e.reason},
          {"previous_version", e.previous_version ? json(e.previous_version) : json(nullptr)},
          {"run", e.run_id},
          {"node", e.node}};
}

json decision_json(const reg::Decision& d) {
  json inputs = json::parse(d.inputs_json.empty() ? "{}" : d.inputs_json, nullptr, false);
  return {{"alias", d.alias},
          {"candidate", d.candidate},
          {"champion", d.champion ? json(d.champion) : json(nullptr)},
          {"gate", d.gate},
          {"inputs", inputs.is_discarded() ? json(nullptr) : inputs},
          {"promoted", d.promoted},
          {"reason", d.reason},
          {"actor", d.actor},
          {"run", d.run_id},
          {"node", d.node},
          {"at", utc_time(d.at)}};
}

}  // namespace sluice::engine
