/* A native test plugin in plain C11 whose actions misbehave on purpose. */
#define _POSIX_C_SOURCE 200809L /* fork, pause */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/plugin.h"

static char* dup_str(const char* s) {
  size_t n = strlen(s) + 1;
  char* p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static void release(char* s) { free(s); }

static char* volatile hog_sink; /* keeps the hog's blocks from being optimised away */

static int act_ok(const char* args_json, const sluice_host_api* api, void* host, char** values_json) {
  char line[512];
  const char* out = api->output_path(host, "out");
  api->log(host, SLUICE_LOG_INFO, "hello from crashy");
  api->log(host, SLUICE_LOG_WARN, "two\nlines");
  api->metric(host, "loss", 0.25, 3);
  api->metric(host, "auc", 0.5, SLUICE_METRIC_NO_STEP);
  api->set_value(host, "via_callback", "yes");
  api->set_value(host, "overridden", "by callback");
  printf("printed to stdout\n");
  fflush(stdout);
  if (out) {
    FILE* f = fopen(out, "w");
    if (!f) return SLUICE_FAILED;
    fprintf(f, "%s\n", args_json);
    fclose(f);
  }
  snprintf(line, sizeof line, "{\"workdir\": \"%s\", \"has_input\": %s, \"overridden\": \"by result\", \"n\": 42, \"x\": 0.5, \"b\": true}",
           api->workdir(host), api->input_path(host, "data") ? "true" : "false");
  *values_json = dup_str(line);
  return SLUICE_OK;
}

static int invoke(const char* action, const char* args_json, const sluice_host_api* api, void* host,
                  char** values_json, char** error) {
  if (strcmp(action, "ok") == 0) return act_ok(args_json, api, host, values_json);
  if (strcmp(action, "segv") == 0) {
    volatile int* volatile p = NULL; /* volatile twice: the store happens, to address 0 */
    *p = 1;
    return SLUICE_OK;
  }
  if (strcmp(action, "abort") == 0) abort();
  if (strcmp(action, "spin") == 0) {
    volatile unsigned long n = 0;
    for (;;) ++n;
  }
  if (strcmp(action, "spin_politely") == 0) {
    while (!api->is_cancelled(host)) {
    }
    api->log(host, SLUICE_LOG_INFO, "stopping as asked");
    return SLUICE_CANCELLED;
  }
  if (strcmp(action, "hog") == 0) {
    for (;;) {
      char* block = malloc(1 << 20);
      memset(block, 1, 1 << 20); /* a NULL block crashes here, as careless code does */
      hog_sink = block;
    }
  }
  if (strcmp(action, "orphan") == 0) { /* leaves a child behind in its process group */
    const char* out = api->output_path(host, "out");
    FILE* f;
    pid_t child = fork();
    if (child == 0) {
      for (;;) pause();
    }
    f = out ? fopen(out, "w") : NULL;
    if (!f) return SLUICE_FAILED;
    fprintf(f, "%d\n", (int)child);
    fclose(f);
    return SLUICE_OK;
  }
  if (strcmp(action, "fail") == 0) {
    *error = dup_str("disk full");
    return SLUICE_FAILED;
  }
  if (strcmp(action, "bad_args") == 0) {
    *error = dup_str("'n' must be positive");
    return SLUICE_BAD_ARGS;
  }
  if (strcmp(action, "exit") == 0) exit(7);
  if (strcmp(action, "bad_values") == 0) {
    *values_json = dup_str("[1, 2]");
    return SLUICE_OK;
  }
  *error = dup_str("no such action");
  return SLUICE_BAD_ARGS;
}

static const char* const actions[] = {"ok",   "segv", "abort",    "spin",     "spin_politely", "hog",
                                      "fail", "bad_args", "exit", "bad_values", "orphan", NULL};

static const sluice_plugin plugin = {
    SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, "crashy", "0.3.0", actions, invoke, release,
};

SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return &plugin; }
