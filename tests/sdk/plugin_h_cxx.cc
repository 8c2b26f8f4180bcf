// sluice/plugin.h compiled as C++11 with -Wall -Wextra -pedantic -Werror.
#include "sluice/plugin.h"

namespace {

int invoke(const char*, const char*, const sluice_host_api* api, void* host, char**, char**) {
  if (SLUICE_HOST_HAS(api, is_cancelled) && api->is_cancelled(host)) return SLUICE_CANCELLED;
  api->set_value(host, "k", "v");
  return SLUICE_OK;
}

void release(char*) {}

const char* const actions[] = {"a", nullptr};
const sluice_plugin plugin = {SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, "cxx", "1", actions, invoke, release};

}  // namespace

extern "C" SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return &plugin; }

static_assert(offsetof(sluice_plugin, abi_major) == 0, "the ABI major is the first field");
