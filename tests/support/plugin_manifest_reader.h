#pragma once
// A minimal plugin.toml reader for the native plugin tests, standing in for
// dsl::load_plugin_manifest until that parser is merged: it fills the fields
// the native loader reads (name, version, kind, library, isolate, actions
// and their parameters' defaults) and reports nothing but a thrown error.
// with_defaults() applies an action's defaults to args as the engine does.
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "dsl/plugin_manifest.h"

namespace sluice::test {

inline nlohmann::json toml_to_json(const toml::node& n) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return i->get();
  if (auto f = n.as_floating_point()) return f->get();
  if (auto b = n.as_boolean()) return b->get();
  if (auto a = n.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *a) out.push_back(toml_to_json(e));
    return out;
  }
  if (auto t = n.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : *t) out[std::string(k.str())] = toml_to_json(v);
    return out;
  }
  throw std::runtime_error("unsupported TOML value");
}

struct TestManifest {
  dsl::PluginManifest manifest;
  nlohmann::json defaults;  // action -> { param -> default }
};

inline TestManifest read_test_manifest(const std::string& dir) {
  const std::string path = dir + "/plugin.toml";
  toml::table t = toml::parse_file(path);
  TestManifest out;
  dsl::PluginManifest& m = out.manifest;
  m.path = path;
  m.dir = dir;
  m.name = t["name"].value_or(std::string());
  m.version = t["version"].value_or(std::string());
  m.kind = t["kind"].value_or(std::string()) == "native" ? dsl::PluginKind::Native : dsl::PluginKind::Lua;
  m.library = dir + "/" + t["library"].value_or(std::string());
  m.isolate = t["isolate"].value_or(true);
  out.defaults = nlohmann::json::object();
  if (auto actions = t["actions"].as_table()) {
    for (const auto& [name, node] : *actions) {
      dsl::PluginAction a;
      a.name = std::string(name.str());
      nlohmann::json defaults = nlohmann::json::object();
      if (auto params = (*node.as_table())["params"].as_table()) {
        for (const auto& [pname, pnode] : *params) {
          dsl::ActionParam p;
          p.name = std::string(pname.str());
          p.required = (*pnode.as_table())["required"].value_or(false);
          if (auto d = (*pnode.as_table()).get("default")) defaults[p.name] = toml_to_json(*d);
          a.params.push_back(p);
        }
      }
      out.defaults[a.name] = defaults;
      m.actions.push_back(a);
    }
  }
  return out;
}

// `args` with the action's plugin.toml defaults filled in where absent.
inline nlohmann::json with_defaults(const TestManifest& tm, const std::string& action, nlohmann::json args) {
  if (tm.defaults.contains(action))
    for (const auto& [k, v] : tm.defaults[action].items())
      if (!args.contains(k)) args[k] = v;
  return args;
}

}  // namespace sluice::test
