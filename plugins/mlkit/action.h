#pragma once
// The C++ side of plugins/sdk/sluice/plugin.h for the built-in ML plugins
// (trainer, monitor): an action is a C++ function that reads its Args, talks
// to the Host and returns its values as a JSON object; invoke() turns the
// exceptions below into the ABI's statuses, so nothing is thrown across it.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sluice/plugin.h"

namespace sluice::mlkit {

class Args;

// The args do not fit the action (SLUICE_BAD_ARGS); the message names the arg.
struct BadArgs : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The action could not do its work (SLUICE_FAILED): unreadable data, a bad
// cell, a library error.
struct Failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The host said stop (SLUICE_CANCELLED).
struct Cancelled {};

// The engine's callbacks for one invoke(), on the invoking thread.
class Host {
 public:
  Host(const sluice_host_api* api, void* host) : api_(api), host_(host) {}

  void info(const std::string& line) const { log(SLUICE_LOG_INFO, line); }
  void warn(const std::string& line) const { log(SLUICE_LOG_WARN, line); }
  void log(int level, const std::string& line) const;
  void metric(const std::string& name, double value, std::optional<int64_t> step = std::nullopt) const;
  // Throws Cancelled once the step is cancelled or past its timeout.
  void check_cancelled() const;
  std::string workdir() const;

  // The file an input arg names: a declared input of the step (by name), an
  // absolute path, or a path relative to the work dir. `shown` is how
  // messages name it: the value as written, or a declared input's path.
  struct File {
    std::string path, shown;
  };
  File input(const std::string& value) const;
  // The file an output arg names: a declared output of the step (by name), or
  // a path inside the work dir (relative, or absolute below it; no '..').
  // Parent folders are created. Throws BadArgs for a path outside.
  std::string output(std::string_view arg, const std::string& value) const;

 private:
  const sluice_host_api* api_;
  void* host_;
};

// An action: reads args, returns its values (a JSON object of strings,
// numbers and booleans).
using ActionFn = nlohmann::json (*)(Args& args, Host& host);
struct ActionEntry {
  const char* name;
  ActionFn fn;
};

// sluice_plugin.invoke for a table of actions ending with {nullptr, nullptr}:
// parses args_json, runs the action, reports BadArgs / Failed / Cancelled /
// any other exception ("internal error: ...") through the statuses.
int invoke(const ActionEntry* actions, const char* action, const char* args_json, const sluice_host_api* api, void* host,
           char** values_json, char** error);
// sluice_plugin.free_string for strings invoke() returned.
void free_string(char* s);

// A metric or value key made from free text (a column name, "valid-error@0.7"):
// characters other than ASCII letters, digits and '_' become '_'.
std::string key_of(std::string_view text);

// Writes `text` to `path` atomically (a temp file beside it, then rename);
// throws Failed naming `shown`.
void write_file(const std::string& path, std::string_view text, const std::string& shown);

}  // namespace sluice::mlkit
