#pragma once
// The monitor plugin's actions (see docs/plugins-builtin.md, "monitor").
#include <nlohmann/json.hpp>

#include "plugins/mlkit/action.h"
#include "plugins/mlkit/args.h"

namespace sluice::monitor {

// monitor.drift: per-feature PSI and KS / chi-square of a current CSV against a reference.
nlohmann::json drift(mlkit::Args& args, mlkit::Host& host);
// monitor.fairness: per-group rates of a scored CSV and their disparity.
nlohmann::json fairness(mlkit::Args& args, mlkit::Host& host);
// monitor.performance: a quality metric of a scored CSV against a threshold.
nlohmann::json performance(mlkit::Args& args, mlkit::Host& host);

}  // namespace sluice::monitor
