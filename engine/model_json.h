#pragma once
// The JSON shapes of the model registry, shared by `sluice models ... --json`
// and the HTTP API (GET /api/v1/models...), so both say the same thing the
// same way. Times are UTC ISO 8601; a non-finite metric is its text ("nan").
#include <nlohmann/json.hpp>

#include "registry/model_registry.h"

namespace sluice::engine {

// A metric value: a number, or "nan" / "inf" / "-inf" (JSON has no NaN).
nlohmann::json metric_json(double d);
// {"model", "version", "digest", "kind", "size", "filename", "format",
//  "description", "metrics", "params", "tags", "aliases", "lineage", "actor",
//  "created_at", "archived", "archived_at", "archived_by"}.
nlohmann::json version_json(const registry::ModelVersion& v);
// One alias move: {"alias", "version", "from", "until", "actor", "action",
// "reason", "previous_version", "run", "node"}.
nlohmann::json event_json(const registry::AliasEvent& e);
// One promotion decision: {"alias", "candidate", "champion", "gate",
// "inputs", "promoted", "reason", "actor", "run", "node", "at"}.
nlohmann::json decision_json(const registry::Decision& d);

}  // namespace sluice::engine
