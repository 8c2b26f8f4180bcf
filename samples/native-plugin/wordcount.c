/* wordcount: a native sluice plugin in C11 against sluice/plugin.h alone.
 *
 *   [steps.count]
 *   uses = "wordcount.count"
 *   inputs = { text = "${steps.fetch.outputs.data}" }
 *   outputs = { report = "report.txt" }     # optional
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/plugin.h>

static char* copy(const char* s) {
  size_t n = strlen(s) + 1;
  char* p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static void release(char* s) { free(s); }

static int count(const sluice_host_api* api, void* host, char** values_json, char** error) {
  const char* path = api->input_path(host, "text");
  const char* report = api->output_path(host, "report");
  long lines = 0, words = 0, bytes = 0;
  int c, in_word = 0;
  char buf[160];
  FILE* in;
  if (!path) {
    *error = copy("declare an input named 'text'");
    return SLUICE_BAD_ARGS;
  }
  in = fopen(path, "rb");
  if (!in) {
    snprintf(buf, sizeof buf, "cannot open input 'text'");
    *error = copy(buf);
    return SLUICE_FAILED;
  }
  while ((c = fgetc(in)) != EOF) {
    ++bytes;
    if (c == '\n') ++lines;
    if (isspace(c)) {
      in_word = 0;
    } else if (!in_word) {
      in_word = 1;
      ++words;
    }
    if ((bytes & 0xFFFF) == 0 && api->is_cancelled(host)) {
      fclose(in);
      return SLUICE_CANCELLED;
    }
  }
  fclose(in);

  snprintf(buf, sizeof buf, "counted %ld words", words);
  api->log(host, SLUICE_LOG_INFO, buf);
  api->metric(host, "words", (double)words, SLUICE_METRIC_NO_STEP);
  if (report) {
    FILE* out = fopen(report, "w");
    if (!out) {
      *error = copy("cannot write output 'report'");
      return SLUICE_FAILED;
    }
    fprintf(out, "%ld %ld %ld\n", lines, words, bytes);
    fclose(out);
  }
  snprintf(buf, sizeof buf, "{\"lines\": %ld, \"words\": %ld, \"bytes\": %ld}", lines, words, bytes);
  *values_json = copy(buf);
  return SLUICE_OK;
}

static int invoke(const char* action, const char* args_json, const sluice_host_api* api, void* host,
                  char** values_json, char** error) {
  (void)args_json; /* count takes no arguments */
  if (strcmp(action, "count") == 0) return count(api, host, values_json, error);
  *error = copy("unknown action");
  return SLUICE_BAD_ARGS;
}

static const char* const actions[] = {"count", NULL};

static const sluice_plugin plugin = {
    SLUICE_PLUGIN_ABI_MAJOR, SLUICE_PLUGIN_ABI_MINOR, "wordcount", "1.0.0", actions, invoke, release,
};

SLUICE_PLUGIN_EXPORT const sluice_plugin* sluice_plugin_entry(void) { return &plugin; }
