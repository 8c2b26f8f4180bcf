// The built-in `deploy` plugin: release, rollback (release_dir.cc) and http
// (http_deploy.cc).
#include "plugins/deploy/actions.h"

namespace {

using sluice::plugin::BadArgs;

std::string run(sluice::plugin::Host& host, std::string_view action, std::string_view args_json) {
  const sluice::plugins::Args a(args_json);
  if (action == "release") return sluice::plugins::deploy::release(host, a);
  if (action == "rollback") return sluice::plugins::deploy::rollback(host, a);
  if (action == "http") return sluice::plugins::deploy::http(host, a);
  throw BadArgs("deploy has no action '" + std::string(action) + "'");
}

int invoke(const char* action, const char* args, const sluice_host_api* api, void* host, char** values, char** error) {
  return sluice::plugin::invoke(run, action, args, api, host, values, error);
}

const char* const kActions[] = {"http", "release", "rollback", nullptr};
const sluice_plugin kPlugin = {SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, SLUICE_PLUGIN_NAME,
                               SLUICE_PLUGIN_VERSION,   kActions,                invoke,
                               sluice::plugin::free_string};

}  // namespace

extern "C" SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return &kPlugin; }
