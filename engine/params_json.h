#pragma once
// A run's params as JSON: the object the API takes ({"params": {...}}) and
// the store keeps (runs.params_json), typed against the workflow's params.
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "dsl/params.h"

namespace sluice::engine {

// The workflow's defaults overridden by each member of `params` (a JSON
// object), typed against its declaration: a string for a string param, an
// integer (or, for a float param, any number), true/false, or an array of
// the element type. False with `error` naming the param: "unknown param
// 'epoch' for workflow 'train'; did you mean 'epochs'?", "param 'epochs' is
// an integer; found a string (\"ten\")".
bool params_from_json(const dsl::Workflow& wf, const nlohmann::json& params, dsl::ParamValues& out, std::string& error);

}  // namespace sluice::engine
