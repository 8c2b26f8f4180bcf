#include "engine/native_library.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <nlohmann/json.hpp>

#include "dsl/value.h"

namespace sluice::engine {

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

std::string safe(const char* s) { return s ? s : ""; }

// The callbacks of sluice_host_api: `host` is the PluginHost of this call.
PluginHost& of(void* host) { return *static_cast<PluginHost*>(host); }

void cb_log(void* host, int level, const char* message) { of(host).log(level, safe(message)); }
void cb_metric(void* host, const char* name, double value, int64_t step) {
  of(host).metric(safe(name), value, step == SLUICE_METRIC_NO_STEP ? std::nullopt : std::optional<int64_t>(step));
}
void cb_set_value(void* host, const char* key, const char* value) { of(host).set_value(safe(key), safe(value)); }
const char* cb_workdir(void* host) { return of(host).workdir(); }
const char* cb_input_path(void* host, const char* name) { return name ? of(host).input_path(name) : nullptr; }
const char* cb_output_path(void* host, const char* name) { return name ? of(host).output_path(name) : nullptr; }
int cb_is_cancelled(void* host) { return of(host).is_cancelled() ? 1 : 0; }

const sluice_host_api kHostApi = {
    sizeof(sluice_host_api), SLUICE_PLUGIN_ABI_MINOR, cb_log,         cb_metric,       cb_set_value,
    cb_workdir,              cb_input_path,           cb_output_path, cb_is_cancelled,
};

}  // namespace

NativeLibrary::NativeLibrary(std::string path, void* handle, const sluice_plugin* plugin)
    : path_(std::move(path)), handle_(handle), plugin_(plugin) {}

NativeLibrary::~NativeLibrary() { ::dlclose(handle_); }

std::unique_ptr<NativeLibrary> NativeLibrary::open(const std::string& path, std::string& error) {
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    std::string why = safe(::dlerror());
    if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);  // dlerror repeats the path
    error = path + ": cannot load: " + why;
    return nullptr;
  }
  auto fail = [&](std::string why) {
    ::dlclose(handle);
    error = path + ": " + std::move(why);
    return nullptr;
  };
  void* sym = ::dlsym(handle, SLUICE_PLUGIN_ENTRY_SYMBOL);
  if (!sym) return fail("no entry symbol '" SLUICE_PLUGIN_ENTRY_SYMBOL "' (is it a sluice plugin?)");
  auto entry = reinterpret_cast<sluice_plugin_entry_fn>(sym);
  const sluice_plugin* plugin = entry();
  if (!plugin) return fail(SLUICE_PLUGIN_ENTRY_SYMBOL "() returned NULL");
  // The major is the first field: read it before trusting the layout of the rest.
  uint32_t major = 0;
  std::memcpy(&major, plugin, sizeof major);
  if (major != SLUICE_PLUGIN_ABI_MAJOR)
    return fail("built for plugin ABI " + std::to_string(major) + ", this sluice speaks ABI " +
                std::to_string(SLUICE_PLUGIN_ABI_MAJOR) + " (rebuild it against this sluice's SDK)");
  if (!plugin->name || !plugin->version || !plugin->actions)
    return fail("its sluice_plugin lacks a name, a version or an action list");
  if (!plugin->invoke || !plugin->free_string) return fail("its sluice_plugin lacks invoke or free_string");
  return std::unique_ptr<NativeLibrary>(new NativeLibrary(path, handle, plugin));
}

PluginIdentity NativeLibrary::identity() const {
  PluginIdentity id;
  id.abi_major = plugin_->abi_major;
  id.abi_minor = plugin_->abi_minor;
  id.name = plugin_->name;
  id.version = plugin_->version;
  for (const char* const* a = plugin_->actions; *a; ++a) id.actions.emplace_back(*a);
  return id;
}

std::string check_identity(const PluginIdentity& id, const dsl::PluginManifest& manifest, const std::string& lib) {
  if (id.name != manifest.name)
    return lib + ": the library is plugin '" + id.name + "', " + manifest.path + " says '" + manifest.name + "'";
  if (id.version != manifest.version)
    return lib + ": the library is version " + id.version + ", " + manifest.path + " says " + manifest.version;
  std::vector<std::string> have = id.actions, want;
  std::sort(have.begin(), have.end());
  for (const auto& a : manifest.actions) want.push_back(a.name);
  std::sort(want.begin(), want.end());
  if (have != want)
    return lib + ": the library's actions (" + join(have) + ") differ from " + manifest.path + "'s (" + join(want) + ")";
  return {};
}

InvokeOutcome invoke_plugin(const sluice_plugin& plugin, const std::string& action, const std::string& args_json,
                            PluginHost& host) {
  char* values = nullptr;
  char* error = nullptr;
  InvokeOutcome out;
  out.status = plugin.invoke(action.c_str(), args_json.c_str(), &kHostApi, &host, &values, &error);
  if (values) {
    out.values_json = values;
    plugin.free_string(values);
  }
  if (error) {
    out.error = error;
    plugin.free_string(error);
  }
  return out;
}

bool merge_plugin_values(const std::optional<std::string>& values_json, std::map<std::string, std::string>& values,
                         std::string& error) {
  if (!values_json || values_json->empty()) return true;
  nlohmann::json j = nlohmann::json::parse(*values_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    error = "the plugin returned values that are not a JSON object";
    return false;
  }
  for (const auto& [key, v] : j.items()) {
    if (v.is_string()) values[key] = v.get<std::string>();
    else if (v.is_boolean()) values[key] = v.get<bool>() ? "true" : "false";
    else if (v.is_number_integer()) values[key] = dsl::Value(v.get<int64_t>()).to_text();
    else if (v.is_number_unsigned()) values[key] = std::to_string(v.get<uint64_t>());
    else if (v.is_number_float()) values[key] = dsl::Value(v.get<double>()).to_text();
    else {
      error = "the plugin returned value '" + key + "' as " + std::string(v.type_name()) +
              ": values are strings, numbers or booleans";
      return false;
    }
  }
  return true;
}

std::string describe_plugin_failure(int status, const std::optional<std::string>& error) {
  std::string why = error.value_or("");
  std::replace(why.begin(), why.end(), '\n', ' ');  // one line
  switch (status) {
    case SLUICE_FAILED: return why.empty() ? "the plugin action failed without saying why" : why;
    case SLUICE_BAD_ARGS: return "bad arguments: " + (why.empty() ? "the plugin did not say which" : why);
    case SLUICE_CANCELLED: return "cancelled";
    default: return "the plugin returned unknown status " + std::to_string(status);
  }
}

}  // namespace sluice::engine
