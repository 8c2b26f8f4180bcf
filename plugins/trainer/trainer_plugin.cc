// The trainer plugin's entry point: XGBoost training, scoring and evaluation.
#include "plugins/trainer/actions.h"
#include "sluice/plugin.h"

namespace {

const sluice::mlkit::ActionEntry kActions[] = {
    {"evaluate", sluice::trainer::evaluate},
    {"predict", sluice::trainer::predict},
    {"xgboost", sluice::trainer::xgboost},
    {nullptr, nullptr},
};

const char* const kActionNames[] = {"evaluate", "predict", "xgboost", nullptr};

int invoke(const char* action, const char* args_json, const sluice_host_api* api, void* host, char** values_json,
           char** error) {
  return sluice::mlkit::invoke(kActions, action, args_json, api, host, values_json, error);
}

}  // namespace

extern "C" SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) {
  static const sluice_plugin plugin = {
      SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, SLUICE_PLUGIN_NAME, SLUICE_PLUGIN_VERSION,
      kActionNames,            invoke,                  sluice::mlkit::free_string,
  };
  return &plugin;
}
