#pragma once
// One native plugin library, opened with dlopen and checked against the ABI
// (plugins/sdk/sluice/plugin.h), and the glue that calls one of its actions
// with a host callback table. Used by the in-process handler and by the
// plugin worker process alike (native_plugin.cc, plugin_worker.cc).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dsl/plugin_manifest.h"
#include "sluice/plugin.h"

namespace sluice::engine {

// What a library says about itself (its sluice_plugin), as plain data so it
// can cross from a worker process.
struct PluginIdentity {
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  std::string name;
  std::string version;
  std::vector<std::string> actions;  // as the library lists them
};

class NativeLibrary {
 public:
  // dlopen(RTLD_NOW | RTLD_LOCAL)s `path`, finds SLUICE_PLUGIN_ENTRY_SYMBOL,
  // calls it and checks the ABI major before reading anything else. Null with
  // a one-line `error` starting with `path` on any failure.
  static std::unique_ptr<NativeLibrary> open(const std::string& path, std::string& error);
  ~NativeLibrary();
  NativeLibrary(const NativeLibrary&) = delete;
  NativeLibrary& operator=(const NativeLibrary&) = delete;

  const sluice_plugin& plugin() const { return *plugin_; }
  const std::string& path() const { return path_; }
  PluginIdentity identity() const;

 private:
  NativeLibrary(std::string path, void* handle, const sluice_plugin* plugin);
  std::string path_;
  void* handle_;
  const sluice_plugin* plugin_;
};

// "" when the library `lib` (its identity) agrees with plugin.toml; else a
// one-line error starting with the library's path.
std::string check_identity(const PluginIdentity& id, const dsl::PluginManifest& manifest, const std::string& lib);

// The host side of one invoke(): what the callbacks reach. Called on the
// invoking thread only; pointers returned stay valid until the call returns.
class PluginHost {
 public:
  virtual ~PluginHost() = default;
  virtual void log(int level, const std::string& message) = 0;
  virtual void metric(const std::string& name, double value, std::optional<int64_t> step) = 0;
  virtual void set_value(const std::string& key, const std::string& value) = 0;
  virtual const char* workdir() = 0;
  virtual const char* input_path(const std::string& name) = 0;   // null: no such input
  virtual const char* output_path(const std::string& name) = 0;  // null: no such output
  virtual bool is_cancelled() = 0;
};

// What invoke() returned, strings copied out and released with free_string.
struct InvokeOutcome {
  int status = SLUICE_FAILED;
  std::optional<std::string> values_json;
  std::optional<std::string> error;
};

// Calls `plugin.invoke(action, args_json, ...)` with a host table leading to
// `host`. Null strings from the plugin are tolerated (read as "").
InvokeOutcome invoke_plugin(const sluice_plugin& plugin, const std::string& action, const std::string& args_json,
                            PluginHost& host);

// The step's values from an invoke(): those set with set_value (`set`), then
// the members of `values_json`, which must be a JSON object of strings,
// numbers and booleans. False with a one-line `error` otherwise.
bool merge_plugin_values(const std::optional<std::string>& values_json, std::map<std::string, std::string>& values,
                         std::string& error);

// The one-line failure for an invoke() status other than SLUICE_OK
// (SLUICE_CANCELLED is reported by the caller, who knows why).
std::string describe_plugin_failure(int status, const std::optional<std::string>& error);

}  // namespace sluice::engine
