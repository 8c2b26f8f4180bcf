// sluice/plugin.hpp (the C++ layer) compiled as C++17 with -Wall -Wextra -pedantic -Werror.
#include "sluice/plugin.hpp"

namespace {

std::string run(sluice::plugin::Host& host, std::string_view action, std::string_view args) {
  host.check_cancelled();
  if (action != "a") throw sluice::plugin::BadArgs("unknown action");
  if (auto out = host.output("report")) host.log("writing " + *out);
  host.metric("m", 1.0, 2);
  return "{\"n\": " + std::to_string(args.size()) + "}";
}

int invoke(const char* a, const char* args, const sluice_host_api* api, void* h, char** v, char** e) {
  return sluice::plugin::invoke(run, a, args, api, h, v, e);
}

const char* const actions[] = {"a", nullptr};
const sluice_plugin plugin = {SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, "cxx17", "1", actions, invoke,
                              sluice::plugin::free_string};

}  // namespace

extern "C" SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return &plugin; }
