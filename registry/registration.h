#pragma once
// Registering a file or folder as a new model version, from where it lies:
// its digest comes from the store when a recorded step produced it (else it is
// hashed into the CAS), and by default its metrics, params and lineage come
// from that step. Used by the `registry.register` action, sluice.registry in
// Lua and `sluice models register`.
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "registry/model_registry.h"

namespace sluice::registry {

struct Registration {
  std::string home;      // the state folder: home/sluice.db, home/cas, home/runs/RUN/NODE
  std::string model;
  std::string artifact;  // a file or folder
  std::string format, description;
  std::vector<std::pair<std::string, std::string>> tags;
  // nullopt: the producing step's metrics (the last value reported for each name).
  std::optional<std::vector<MetricValue>> metrics;
  // nullopt: the producing run's params with the step's matrix values over them.
  std::optional<std::string> params_json;
  // The registering step ("" outside a run). When it produced the artifact
  // itself (a Lua step registering its own output), what it reported so far
  // stands in for its record, which does not exist yet:
  std::string run_id, node;
  std::vector<MetricValue> step_metrics;
  std::map<std::string, std::string> step_inputs;  // name -> path
  std::string actor;     // "" = default_actor()
  // The recorder commits a finished step shortly after it finishes: how long
  // to wait for the producing step's record to show before giving up.
  std::chrono::milliseconds wait{30000};
  std::function<bool()> cancelled;  // optional: stop waiting early
};

// Registers `r.artifact` as the next version of `r.model`. Errors are user
// facing (a missing file, a bad name, a producer that never got recorded);
// store failures are errors too, never exceptions.
Result<ModelVersion> register_artifact(const Registration& r);

}  // namespace sluice::registry
