/* sluice/plugin.h compiled as C11 with -Wall -Wextra -pedantic -Werror: a
 * whole (trivial) plugin, so every declaration is used as a plugin uses it. */
#include "sluice/plugin.h"

static int invoke(const char* action, const char* args_json, const sluice_host_api* api, void* host,
                  char** values_json, char** error) {
  (void)action;
  (void)args_json;
  (void)values_json;
  (void)error;
  if (SLUICE_HOST_HAS(api, is_cancelled) && api->is_cancelled(host)) return SLUICE_CANCELLED;
  api->metric(host, "m", 1.0, SLUICE_METRIC_NO_STEP);
  api->log(host, SLUICE_LOG_WARN, api->workdir(host));
  return SLUICE_OK;
}

static void release(char* s) { (void)s; }

static const char* const actions[] = {"a", 0};
static const sluice_plugin plugin = {SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, "c11", "1", actions, invoke, release};

SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void);
SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return &plugin; }

_Static_assert(offsetof(sluice_plugin, abi_major) == 0, "the ABI major is the first field");
_Static_assert(offsetof(sluice_host_api, struct_size) == 0, "struct_size is the host table's first field");
