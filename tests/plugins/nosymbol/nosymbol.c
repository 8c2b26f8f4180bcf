/* A shared library that is not a sluice plugin: the entry symbol is misspelt. */
#include "sluice/plugin.h"

static const sluice_plugin* entry(void) { return 0; }

SLUICE_PLUGIN_EXPORT const sluice_plugin* (*sluice_plugin_entry_point)(void) = entry;
