// sluice.registry: the model registry from Lua steps.
//   sluice.registry.register{model = "m", artifact = ctx.outputs.model, format = "...",
//                            description = "...", tags = {...}, metrics = {...}, params = {...}}
//     -> { model = "m", version = 3, digest = "sha256:..." }   (raises on failure)
//   sluice.registry.get("m", "production" | 3 | "latest")
//     -> { model, version, digest, format, path, metrics, params, tags, aliases, archived }
//        or nil, "model 'm' has no alias 'production' (...)"
// The store is LuaStepInput::home's; without one both raise. See docs/lua.md.
#include <chrono>
#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "engine/lua_stdlib.h"
#include "registry/model_refs.h"
#include "registry/model_registry.h"
#include "registry/registration.h"

namespace sluice::engine::lua {

namespace {

namespace reg = sluice::registry;
using nlohmann::json;

const std::string& home_of(lua_State* L, StepContext& c, const char* fn) {
  if (c.in->home.empty()) raise(L, fn, "no store is available to this step");
  return c.in->home;
}

// The Lua value at `index` as JSON: tables with keys 1..n become arrays, other
// tables objects (keys as text). Functions and userdata are refused.
json to_json(lua_State* L, int index, const char* fn, int depth = 0) {
  if (depth > 32) raise(L, fn, "a table is nested too deeply");
  index = index < 0 ? lua_gettop(L) + index + 1 : index;
  switch (lua_type(L, index)) {
    case LUA_TNIL: return nullptr;
    case LUA_TBOOLEAN: return lua_toboolean(L, index) != 0;
    case LUA_TNUMBER: {
      double d = lua_tonumber(L, index);
      if (std::floor(d) == d && std::fabs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
      return d;
    }
    case LUA_TSTRING: {
      size_t n = 0;
      const char* s = lua_tolstring(L, index, &n);
      return std::string(s, n);
    }
    case LUA_TTABLE: {
      const size_t n = lua_objlen(L, index);
      size_t count = 0;
      lua_pushnil(L);
      while (lua_next(L, index) != 0) {
        ++count;
        lua_pop(L, 1);
      }
      if (n > 0 && count == n) {
        json a = json::array();
        for (size_t i = 1; i <= n; ++i) {
          lua_rawgeti(L, index, static_cast<int>(i));
          a.push_back(to_json(L, -1, fn, depth + 1));
          lua_pop(L, 1);
        }
        return a;
      }
      json o = json::object();
      lua_pushnil(L);
      while (lua_next(L, index) != 0) {
        lua_pushvalue(L, -2);
        std::string key = lua_tostring(L, -1) ? lua_tostring(L, -1) : "";
        lua_pop(L, 1);
        o[key] = to_json(L, -1, fn, depth + 1);
        lua_pop(L, 1);
      }
      return o;
    }
    default: raise(L, fn, std::string("cannot store a ") + luaL_typename(L, index) + " value");
  }
}

void push_json(lua_State* L, const json& j) {
  luaL_checkstack(L, 4, "value nested too deeply");
  if (j.is_null()) lua_pushnil(L);
  else if (j.is_boolean()) lua_pushboolean(L, j.get<bool>());
  else if (j.is_number()) lua_pushnumber(L, j.get<double>());
  else if (j.is_string()) lua_pushlstring(L, j.get_ref<const std::string&>().data(), j.get_ref<const std::string&>().size());
  else if (j.is_array()) {
    lua_createtable(L, static_cast<int>(j.size()), 0);
    for (size_t i = 0; i < j.size(); ++i) {
      push_json(L, j[i]);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
  } else {
    lua_createtable(L, 0, static_cast<int>(j.size()));
    for (auto it = j.begin(); it != j.end(); ++it) {
      push_json(L, it.value());
      lua_setfield(L, -2, it.key().c_str());
    }
  }
}

std::string field_text(lua_State* L, const char* fn, const char* key, bool required) {
  lua_getfield(L, 1, key);
  std::string out;
  if (lua_isnil(L, -1)) {
    if (required) raise(L, fn, std::string("'") + key + "' is required");
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    out = lua_tostring(L, -1);
  } else {
    raise(L, fn, std::string("'") + key + "' must be a string");
  }
  lua_pop(L, 1);
  return out;
}

int registry_register(lua_State* L) {
  const char* fn = "registry.register";
  StepContext& c = step_of(L, fn);
  luaL_checktype(L, 1, LUA_TTABLE);
  reg::Registration r;
  r.home = home_of(L, c, fn);
  r.model = field_text(L, fn, "model", true);
  r.artifact = resolve_path(L, c, fn, field_text(L, fn, "artifact", true), Access::Read);
  r.format = field_text(L, fn, "format", false);
  r.description = field_text(L, fn, "description", false);
  lua_getfield(L, 1, "tags");
  if (!lua_isnil(L, -1)) {
    json tags = to_json(L, -1, fn);
    if (!tags.is_object()) raise(L, fn, "'tags' must be a table of strings");
    for (auto it = tags.begin(); it != tags.end(); ++it)
      r.tags.emplace_back(it.key(), it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "metrics");
  if (!lua_isnil(L, -1)) {
    json metrics = to_json(L, -1, fn);
    if (!metrics.is_object()) raise(L, fn, "'metrics' must be a table of numbers");
    std::vector<reg::MetricValue> list;
    for (auto it = metrics.begin(); it != metrics.end(); ++it) {
      if (!it.value().is_number()) raise(L, fn, "metric '" + it.key() + "' must be a number");
      list.push_back({it.key(), it.value().get<double>()});
    }
    r.metrics = list;
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "params");
  if (!lua_isnil(L, -1)) {
    json params = to_json(L, -1, fn);
    if (!params.is_object()) raise(L, fn, "'params' must be a table");
    r.params_json = params.dump();
  }
  lua_pop(L, 1);
  r.run_id = c.in->run.id;
  r.node = c.in->run.step;
  // What this step reported so far: its own record does not exist yet.
  std::map<std::string, double> last;
  for (const LuaMetric& m : c.out->metrics) last[m.name] = m.value;
  for (const auto& [name, value] : last) r.step_metrics.push_back({name, value});
  r.step_inputs = c.in->inputs;
  r.actor = reg::default_actor();
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - std::chrono::steady_clock::now());
  r.wait = std::clamp(left, std::chrono::milliseconds(0), r.wait);
  reg::Result<reg::ModelVersion> v = reg::register_artifact(r);
  check_limits(L);
  if (!v) raise(L, fn, v.error());
  lua_createtable(L, 0, 3);
  lua_pushstring(L, v->model.c_str());
  lua_setfield(L, -2, "model");
  lua_pushnumber(L, static_cast<lua_Number>(v->version));
  lua_setfield(L, -2, "version");
  lua_pushstring(L, v->digest.c_str());
  lua_setfield(L, -2, "digest");
  return 1;
}

int registry_get(lua_State* L) {
  const char* fn = "registry.get";
  StepContext& c = step_of(L, fn);
  const std::string model = luaL_checkstring(L, 1);
  std::string ref = "latest";
  if (lua_type(L, 2) == LUA_TNUMBER) ref = std::to_string(static_cast<int64_t>(lua_tonumber(L, 2)));
  else if (!lua_isnoneornil(L, 2)) ref = luaL_checkstring(L, 2);
  const std::string& home = home_of(L, c, fn);
  std::string error;
  json out;
  try {
    reg::ModelRegistry registry(home + "/sluice.db");
    auto v = registry.resolve(model, ref);
    if (!v) {
      error = v.error();
    } else {
      json metrics = json::object(), tags = json::object();
      for (const reg::MetricValue& m : v->metrics)
        if (!std::isnan(m.value)) metrics[m.name] = m.value;
      for (const auto& [k, t] : v->tags) tags[k] = t;
      json params = json::parse(v->params_json.empty() ? "{}" : v->params_json, nullptr, false);
      auto cas = reg::ArtifactStore::open(home);
      if (!cas) raise(L, fn, cas.error());
      auto path = reg::model_version_path(home, *cas, *v);
      if (!path) raise(L, fn, path.error());
      out = {{"model", v->model},     {"version", v->version}, {"digest", v->digest},
             {"format", v->format},   {"path", *path},         {"metrics", metrics},
             {"params", params.is_discarded() ? json::object() : params},
             {"tags", tags},          {"aliases", v->aliases}, {"archived", v->archived()}};
    }
  } catch (const reg::StoreError& e) {
    raise(L, fn, std::string("the model registry cannot be read: ") + e.what());
  }
  if (!error.empty()) {
    lua_pushnil(L);
    lua_pushstring(L, error.c_str());
    return 2;
  }
  push_json(L, out);
  return 1;
}

}  // namespace

void add_registry(lua_State* L) {
  lua_newtable(L);
  lua_pushcfunction(L, registry_register);
  lua_setfield(L, -2, "register");
  lua_pushcfunction(L, registry_get);
  lua_setfield(L, -2, "get");
  lua_setfield(L, -2, "registry");
}

}  // namespace sluice::engine::lua
