/* Claims ABI major 2 with a layout this sluice does not know. */
#include <stdint.h>

#include "sluice/plugin.h"

struct future_plugin {
  uint32_t abi_major;
  uint32_t abi_minor;
  const char* something_new;
};

static const struct future_plugin plugin = {SLUICE_PLUGIN_ABI_MAJOR + 1, 0, "a field of ABI 2"};

SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return (const sluice_plugin*)(const void*)&plugin; }
