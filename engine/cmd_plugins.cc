// `sluice plugins [NAME]`: the plugins on the search path, their actions
// and parameters.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "dsl/suggest.h"
#include "engine/cli.h"
#include "engine/exit_status.h"
#include "engine/plugin_check.h"

namespace sluice::engine {

namespace {

nlohmann::json value_json(const dsl::Value& v) { return nlohmann::json::parse(v.to_json()); }

nlohmann::json plugin_json(const dsl::PluginManifest& m) {
  nlohmann::json actions = nlohmann::json::array();
  for (const dsl::PluginAction& a : m.actions) {
    nlohmann::json params = nlohmann::json::array();
    for (const dsl::ActionParam& p : a.params) {
      nlohmann::json j = {{"name", p.name}, {"type", dsl::to_string(p.type)}, {"required", p.required},
                          {"description", p.description}};
      if (p.default_value) j["default"] = value_json(*p.default_value);
      params.push_back(std::move(j));
    }
    actions.push_back({{"name", a.name}, {"description", a.description}, {"params", std::move(params)}});
  }
  nlohmann::json j = {{"name", m.name},        {"version", m.version}, {"kind", dsl::to_string(m.kind)},
                      {"description", m.description}, {"folder", m.dir}, {"manifest", m.path},
                      {"actions", std::move(actions)}};
  if (m.kind == dsl::PluginKind::Native) {
    j["library"] = m.library;
    j["isolate"] = m.isolate;
  }
  return j;
}

// Pads `s` to `width` columns (at least one space after it).
std::string pad(std::string s, size_t width) {
  s += ' ';
  if (s.size() < width) s.resize(width, ' ');
  return s;
}

std::string plugin_text(const dsl::PluginManifest& m) {
  std::string out = m.name + " " + m.version + " (" + dsl::to_string(m.kind) + ")";
  if (!m.description.empty()) out += " - " + m.description;
  out += "\n  folder: " + (m.dir.empty() ? std::string("built in") : m.dir) + "\n";
  if (m.kind == dsl::PluginKind::Native)
    out += "  library: " + m.library + (m.isolate ? "" : " (in-process: isolate = false)") + "\n";
  for (const dsl::PluginAction& a : m.actions) {
    out += "  " + m.name + "." + a.name;
    if (!a.description.empty()) out += ": " + a.description;
    out += "\n";
    size_t name_w = 0, type_w = 0;
    for (const dsl::ActionParam& p : a.params) {
      name_w = std::max(name_w, p.name.size());
      type_w = std::max(type_w, std::string(dsl::to_string(p.type)).size());
    }
    std::vector<std::string> how;
    size_t how_w = 0;
    for (const dsl::ActionParam& p : a.params) {
      how.push_back(p.required ? "required" : p.default_value ? "default " + p.default_value->to_json() : "optional");
      how_w = std::max(how_w, how.back().size());
    }
    for (size_t i = 0; i < a.params.size(); ++i) {
      const dsl::ActionParam& p = a.params[i];
      std::string line = "    " + pad(p.name, name_w + 2) + pad(dsl::to_string(p.type), type_w + 2);
      line += p.description.empty() ? how[i] : pad(how[i], how_w + 2) + p.description;
      out += line + "\n";
    }
  }
  return out;
}

int run_plugins(const Args& args) {
  const bool json = args.flag("json");
  std::unique_ptr<PluginCatalog> owned = make_catalog("");
  PluginCatalog& catalog = *owned;
  std::vector<std::string> problems;
  std::vector<const dsl::PluginManifest*> plugins = catalog.all(problems);
  int status = kExitSuccess;

  if (!args.positional.empty()) {
    const std::string& name = args.positional[0];
    std::string error;
    const dsl::PluginManifest* m = catalog.find(name, error);
    if (!m) {
      if (error.rfind("no plugin '", 0) == 0) {
        std::vector<std::string> names;
        for (const dsl::PluginManifest* p : plugins) names.push_back(p->name);
        error = "unknown plugin '" + name + "'" + error.substr(error.find(": ")) + dsl::did_you_mean(name, names);
        if (json)
          std::printf("%s\n", nlohmann::json({{"error", error}}).dump(2).c_str());
        else
          std::fprintf(stderr, "sluice plugins: error: %s\n", error.c_str());
      } else if (json) {
        std::printf("%s\n", nlohmann::json({{"error", error}}).dump(2).c_str());
      } else {
        std::fputs(error.c_str(), stderr);
      }
      return kExitBadInput;
    }
    plugins = {m};
    problems.clear();
  }

  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const dsl::PluginManifest* m : plugins) list.push_back(plugin_json(*m));
    nlohmann::json out = {{"plugins", std::move(list)}, {"problems", problems}};
    if (args.positional.empty()) out["search_path"] = catalog.search_path();
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::string text;
    for (size_t i = 0; i < plugins.size(); ++i) text += (i ? "\n" : "") + plugin_text(*plugins[i]);
    if (args.positional.empty()) {
      if (plugins.empty()) text += "no plugins found\n";
      text += "\nsearch path (first match wins):\n";
      for (const std::string& dir : catalog.search_path()) text += "  " + dir + "\n";
    }
    std::fputs(text.c_str(), stdout);
    for (const std::string& p : problems) std::fputs(p.c_str(), stderr);
  }
  if (!problems.empty()) status = kExitBadInput;
  return status;
}

}  // namespace

const Command& plugins_command() {
  static const Command cmd{
      "plugins",
      "list the plugins on the search path, their actions and parameters",
      "sluice plugins [--json] [NAME]",
      "Lists every plugin found in ./plugins, $SLUICE_PLUGIN_PATH (':'-separated) and\n"
      "beside the sluice binary (first match of a name wins): name, version, kind,\n"
      "folder, and for each action its params with type, default or 'required', and\n"
      "description. With NAME, only that plugin (and every error of its plugin.toml\n"
      "if it is invalid). Exits 2 when NAME is unknown or a plugin.toml is invalid.",
      {{"json", 0, "", "print one JSON document"}},
      0,
      1,
      run_plugins};
  return cmd;
}

}  // namespace sluice::engine
