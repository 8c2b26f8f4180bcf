#pragma once
// The trainer plugin's actions (see docs/plugins-builtin.md, "trainer").
#include <nlohmann/json.hpp>

#include "plugins/mlkit/action.h"
#include "plugins/mlkit/args.h"

namespace sluice::trainer {

// trainer.xgboost: trains a gradient-boosted model, writes it as XGBoost JSON.
nlohmann::json xgboost(mlkit::Args& args, mlkit::Host& host);
// trainer.predict: scores a CSV with a model, adding a score column.
nlohmann::json predict(mlkit::Args& args, mlkit::Host& host);
// trainer.evaluate: AUC, log-loss, precision/recall at k and calibration of a scored CSV.
nlohmann::json evaluate(mlkit::Args& args, mlkit::Host& host);

}  // namespace sluice::trainer
