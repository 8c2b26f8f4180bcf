#pragma once
// The model card of one version: markdown with its metrics, params, data
// lineage, fairness results (metrics and tags whose names start with
// "fairness"), tags, the model's alias history and the promotion decisions
// about this version. A pure function of what the registry returned, so the
// same registry state always gives the same bytes. See docs/registry.md.
#include <string>
#include <vector>

#include "registry/model_registry.h"

namespace sluice::engine {

std::string render_model_card(const registry::ModelVersion& v, const std::vector<registry::AliasEvent>& history,
                              const std::vector<registry::Decision>& decisions);

// "2026-11-27T04:02:53Z" (UTC) for ms since the epoch.
std::string utc_time(int64_t ms);
// The shortest text that reads back as `d` ("0.1", "3", "nan").
std::string format_metric(double d);

}  // namespace sluice::engine
