#include "plugins/plugin_harness.h"

#include <dlfcn.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace sluice::test {

namespace {

PluginHost& self(void* host) { return *static_cast<PluginHost*>(host); }

void host_log(void* host, int level, const char* message) { self(host).logs.emplace_back(level, message); }
void host_metric(void* host, const char* name, double value, int64_t step) { self(host).metrics.push_back({name, value, step}); }
void host_set_value(void* host, const char* key, const char* value) { self(host).set_values[key] = value; }
const char* host_workdir(void* host) { return self(host).workdir().c_str(); }
const char* host_input_path(void* host, const char* name) {
  auto it = self(host).inputs.find(name);
  return it == self(host).inputs.end() ? nullptr : it->second.c_str();
}
const char* host_output_path(void* host, const char* name) {
  auto it = self(host).outputs.find(name);
  return it == self(host).outputs.end() ? nullptr : it->second.c_str();
}
int host_is_cancelled(void* host) {
  PluginHost& h = self(host);
  ++h.cancel_calls;
  return h.cancel_on_call > 0 && h.cancel_calls >= h.cancel_on_call;
}

const sluice_host_api kApi = {
    sizeof(sluice_host_api), SLUICE_PLUGIN_ABI_MINOR, host_log,         host_metric,      host_set_value,
    host_workdir,            host_input_path,         host_output_path, host_is_cancelled,
};

}  // namespace

const sluice_host_api* PluginHost::api() const { return &kApi; }

std::string PluginHost::log_text() const {
  std::string s;
  for (const auto& [level, line] : logs) s += line + "\n";
  return s;
}

std::vector<RecordedMetric> PluginHost::metrics_named(const std::string& name) const {
  std::vector<RecordedMetric> out;
  for (const RecordedMetric& m : metrics)
    if (m.name == name) out.push_back(m);
  return out;
}

const LoadedPlugin& LoadedPlugin::get(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<LoadedPlugin>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = loaded[name];
  if (!slot) {
    auto p = std::make_unique<LoadedPlugin>();
    p->dir_ = std::string(SLUICE_PLUGIN_BUILD_DIR) + "/" + name;
    const std::string library = p->dir_ + "/libsluice_" + name + ".so";
    void* handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) throw std::runtime_error(std::string("dlopen failed: ") + ::dlerror());
    auto entry = reinterpret_cast<sluice_plugin_entry_fn>(::dlsym(handle, SLUICE_PLUGIN_ENTRY_SYMBOL));
    if (!entry) throw std::runtime_error(library + " has no " SLUICE_PLUGIN_ENTRY_SYMBOL);
    p->plugin_ = entry();
    slot = std::move(p);
  }
  return *slot;
}

Outcome LoadedPlugin::invoke(const std::string& action, const nlohmann::json& args, PluginHost& host) const {
  return invoke_raw(action, args.dump().c_str(), host);
}

Outcome LoadedPlugin::invoke_raw(const std::string& action, const char* args_json, PluginHost& host) const {
  char* values = nullptr;
  char* error = nullptr;
  Outcome o;
  o.status = plugin_->invoke(action.c_str(), args_json, host.api(), &host, &values, &error);
  if (values) o.values = nlohmann::json::parse(values);
  if (error) o.error = error;
  plugin_->free_string(values);
  plugin_->free_string(error);
  return o;
}

std::string data_file(const std::string& name) { return std::string(SLUICE_TEST_DATA) + "/plugins/data/" + name; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace sluice::test
