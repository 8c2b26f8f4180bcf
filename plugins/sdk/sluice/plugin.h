/*
 * sluice native plugin ABI — the contract between the engine and a plugin
 * built as a shared library. Pure C (C99 and later, C++ too). See
 * docs/plugins.md, "Native plugins".
 *
 * Stability rules:
 *  - A plugin exports one symbol, `sluice_plugin_entry`, returning a pointer
 *    to a static `sluice_plugin` whose FIRST field is the ABI major version.
 *    The engine reads that field before anything else and refuses a plugin
 *    whose major differs from its own; minors only add.
 *  - `sluice_host_api` is append-only: members are never removed or reordered;
 *    each is marked with the ABI version that added it. `struct_size` says how
 *    much of it the host filled, so a plugin built against a newer header can
 *    test for a member before calling it (SLUICE_HOST_HAS).
 *  - Strings are UTF-8, NUL-terminated. Strings the host passes in are valid
 *    for the duration of the call only. Strings a plugin returns through
 *    `invoke` are allocated by the plugin and released with its `free_string`.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_PLUGIN_ABI_MAJOR 1
#define SLUICE_PLUGIN_ABI_MINOR 0

/* The name of the one exported entry symbol. */
#define SLUICE_PLUGIN_ENTRY_SYMBOL "sluice_plugin_entry"

/* sluice_host_api.log levels */
enum sluice_log_level { SLUICE_LOG_INFO = 0, SLUICE_LOG_WARN = 1, SLUICE_LOG_ERROR = 2 };

/* sluice_host_api.metric: no step index */
#define SLUICE_METRIC_NO_STEP INT64_MIN

/* What the engine offers an action while it runs. Every function takes the
 * `host` pointer the engine passed to invoke(). Callable from the thread that
 * called invoke() only. */
typedef struct sluice_host_api {
  uint32_t struct_size; /* sizeof(sluice_host_api) as the host was built: members past it are absent */
  uint32_t abi_minor;   /* the host's SLUICE_PLUGIN_ABI_MINOR */

  /* since 1.0: a line into the step's log (level: enum sluice_log_level). */
  void (*log)(void* host, int level, const char* message);
  /* since 1.0: records a metric; step = SLUICE_METRIC_NO_STEP for none. */
  void (*metric)(void* host, const char* name, double value, int64_t step);
  /* since 1.0: sets one of the step's values (as a `run` step's $SLUICE_VALUES line would). */
  void (*set_value)(void* host, const char* key, const char* value);
  /* since 1.0: the step's work dir (absolute, exists, writable). */
  const char* (*workdir)(void* host);
  /* since 1.0: the absolute path of declared input `name`, or NULL. */
  const char* (*input_path)(void* host, const char* name);
  /* since 1.0: the absolute path of declared output `name` (inside the work dir), or NULL. */
  const char* (*output_path)(void* host, const char* name);
  /* since 1.0: nonzero once the step is cancelled or past its timeout; long
   * work should poll it and return SLUICE_CANCELLED promptly. */
  int (*is_cancelled)(void* host);
} sluice_host_api;

#define SLUICE_HOST_HAS(api, member) \
  ((api)->struct_size >= offsetof(sluice_host_api, member) + sizeof((api)->member) && (api)->member != NULL)

/* invoke() results */
enum sluice_status {
  SLUICE_OK = 0,        /* success; *values_json may hold a JSON object of values */
  SLUICE_FAILED = 1,    /* the action failed; *error says why (one line) */
  SLUICE_CANCELLED = 2, /* stopped because is_cancelled() said so */
  SLUICE_BAD_ARGS = 3   /* the args do not fit the action; *error says which and why */
};

/* Runs `action` with `args_json` (a JSON object: the step's `with`, templates
 * resolved and plugin.toml defaults applied). On return the plugin may set
 * *values_json to a JSON object of string/number/boolean values (merged into
 * the step's values, after those set with set_value) and, on failure, *error
 * to a message. Both are released by the host with free_string. */
typedef int (*sluice_invoke_fn)(const char* action, const char* args_json, const sluice_host_api* api, void* host,
                                char** values_json, char** error);

typedef struct sluice_plugin {
  uint32_t abi_major;           /* since 1.0: must be the first field; = SLUICE_PLUGIN_ABI_MAJOR */
  uint32_t abi_minor;           /* since 1.0 */
  const char* name;             /* since 1.0: must equal plugin.toml's name */
  const char* version;          /* since 1.0: must equal plugin.toml's version */
  const char* const* actions;   /* since 1.0: NULL-terminated; must equal plugin.toml's actions */
  sluice_invoke_fn invoke;      /* since 1.0 */
  void (*free_string)(char* s); /* since 1.0: releases strings returned by invoke */
} sluice_plugin;

/* The entry symbol's type; define it with SLUICE_PLUGIN_EXPORT. */
typedef const sluice_plugin* (*sluice_plugin_entry_fn)(void);

#if defined(__GNUC__)
#define SLUICE_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define SLUICE_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_PLUGIN_H */
