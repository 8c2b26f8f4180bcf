#pragma once
// Loads a built plugin with dlopen (RTLD_LOCAL, as the engine does) and calls
// its actions through the real ABI: sluice_plugin_entry, invoke, free_string,
// with a host callback table that records every log line, metric and value.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sluice/plugin.h"
#include "support/temp_dir.h"

namespace sluice::test {

struct RecordedMetric {
  std::string name;
  double value;
  int64_t step;  // SLUICE_METRIC_NO_STEP for none
};

// One step attempt's host side: a work dir, declared inputs and outputs, and
// what the action reported.
class PluginHost {
 public:
  explicit PluginHost(std::string workdir) : workdir_(std::move(workdir)) {}

  std::map<std::string, std::string> inputs, outputs;  // name -> absolute path
  std::vector<std::pair<int, std::string>> logs;
  std::vector<RecordedMetric> metrics;
  std::map<std::string, std::string> set_values;
  // is_cancelled() answers true from its n-th call on (0: never).
  int cancel_on_call = 0;
  int cancel_calls = 0;

  const std::string& workdir() const { return workdir_; }
  const sluice_host_api* api() const;
  std::string log_text() const;  // every line, each ending in '\n'
  std::vector<RecordedMetric> metrics_named(const std::string& name) const;

 private:
  std::string workdir_;
};

struct Outcome {
  int status = -1;
  nlohmann::json values;  // the values_json the action returned (null if none)
  std::string error;
};

// A plugin built into <build>/plugins/<name>/; loaded once per test binary and
// never unloaded (libxgboost keeps threads).
class LoadedPlugin {
 public:
  static const LoadedPlugin& get(const std::string& name);

  const std::string& dir() const { return dir_; }
  const sluice_plugin& plugin() const { return *plugin_; }
  Outcome invoke(const std::string& action, const nlohmann::json& args, PluginHost& host) const;
  // The same with the args as raw text (to send what is not JSON).
  Outcome invoke_raw(const std::string& action, const char* args_json, PluginHost& host) const;

 private:
  std::string dir_;
  const sluice_plugin* plugin_ = nullptr;
};

// The path of tests/plugins/data/<name>.
std::string data_file(const std::string& name);
// The file's content, as bytes.
std::string slurp(const std::string& path);
void write_text(const std::string& path, const std::string& text);

}  // namespace sluice::test
