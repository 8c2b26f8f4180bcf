// Lua plugin actions: one call of `actions[name](ctx, args)` from the
// plugin's init.lua, run by the calling thread's LuaHost like a Lua step.
#include "engine/lua_plugin.h"

#include <unistd.h>

#include <string_view>

namespace sluice::engine {

namespace {

// Lua steps without a timeout get this much (action.h: "Lua steps get 60 s").
constexpr std::chrono::milliseconds kDefaultLuaTimeout{60'000};

// The JSON arguments as the Lua host takes them; JSON null (which `with`
// cannot hold) is left out.
dsl::Value to_value(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::string: return dsl::Value(j.get<std::string>());
    case nlohmann::json::value_t::boolean: return dsl::Value(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return dsl::Value(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      if (j.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) return dsl::Value(j.get<int64_t>());
      return dsl::Value(j.get<double>());
    case nlohmann::json::value_t::number_float: return dsl::Value(j.get<double>());
    case nlohmann::json::value_t::array: {
      dsl::ValueArray a;
      for (const nlohmann::json& e : j)
        if (!e.is_null()) a.push_back(to_value(e));
      return dsl::Value(std::move(a));
    }
    case nlohmann::json::value_t::object: {
      dsl::ValueTable t;
      for (const auto& [k, e] : j.items())
        if (!e.is_null()) t.emplace(k, to_value(e));
      return dsl::Value(std::move(t));
    }
    default: return dsl::Value(dsl::ValueTable{});
  }
}

// A log line as the attempt's log shows it: info lines as written, the
// others prefixed with their level.
std::string log_text(const LuaLogLine& line) {
  switch (line.level) {
    case LuaLogLine::Level::Info: return line.text;
    case LuaLogLine::Level::Warn: return "warning: " + line.text;
    case LuaLogLine::Level::Error: return "error: " + line.text;
  }
  return line.text;
}

class LuaPluginHandler final : public ActionHandler {
 public:
  explicit LuaPluginHandler(const dsl::PluginManifest& manifest)
      : manifest_(manifest), init_(manifest.dir + "/init.lua"), chunk_name_(manifest.name + "/init.lua") {}

  ActionResult invoke(const ActionCall& call, ActionContext& ctx) override {
    ActionResult result;
    if (!manifest_.find(call.action)) {
      result.error = "plugin '" + manifest_.name + "' has no action '" + call.action + "'";
      return result;
    }
    LuaStepInput in;
    in.script_path = init_;
    in.chunk_name = chunk_name_;
    in.action = call.action;
    in.args = call.args.is_object() ? to_value(call.args) : dsl::Value(dsl::ValueTable{});
    in.params = call.params;
    in.inputs = call.inputs;
    in.outputs = call.outputs;
    in.matrix = call.matrix;
    in.run = {call.run_id, call.step, call.attempt};
    in.steps = call.steps;
    in.workdir = call.workdir;
    in.http_hosts = call.http_hosts;
    in.plugin_dir = manifest_.dir;
    if (std::optional<std::chrono::milliseconds> left = ctx.time_left())
      in.limits.time = std::max(*left, std::chrono::milliseconds(0));
    else
      in.limits.time = call.timeout.count() > 0 ? call.timeout : kDefaultLuaTimeout;
    if (call.memory > 0) in.limits.memory = call.memory;
    in.on_log = [&ctx](const LuaLogLine& line) { ctx.log(log_text(line)); };
    in.cancelled = [&ctx] { return ctx.cancelled(); };

    LuaStepResult r = ctx.lua().run_step(in);
    for (const LuaMetric& m : r.metrics) ctx.metric(m.name, m.value, m.step);
    result.ok = r.ok;
    if (!r.ok) {
      // cancelled() also turns true at the timeout: that is a timeout.
      std::optional<std::chrono::milliseconds> left = ctx.time_left();
      if (r.error == "cancelled" && left && left->count() <= 0) r.error = "time limit exceeded";
      result.error = r.error;
      result.timed_out = r.error == "time limit exceeded";
      result.cancelled = r.error == "cancelled";
      ctx.log("error: " + r.error);
      std::string_view tb = r.traceback;
      while (!tb.empty()) {
        size_t nl = tb.find('\n');
        ctx.log(tb.substr(0, nl));
        if (nl == std::string_view::npos) break;
        tb.remove_prefix(nl + 1);
      }
      return result;
    }
    result.values = std::move(r.values);
    return result;
  }

 private:
  const dsl::PluginManifest manifest_;  // a copy: the handler may outlive the catalog's entry
  const std::string init_;
  const std::string chunk_name_;
};

}  // namespace

std::shared_ptr<ActionHandler> make_lua_plugin_handler(const dsl::PluginManifest& manifest, std::string& error) {
  if (manifest.kind != dsl::PluginKind::Lua) {
    error = "plugin '" + manifest.name + "' (" + manifest.path + ") is not a Lua plugin";
    return nullptr;
  }
  const std::string init = manifest.dir + "/init.lua";
  if (::access(init.c_str(), R_OK) != 0) {
    error = "Lua plugin '" + manifest.name + "' (" + manifest.path + ") has no readable init.lua in " + manifest.dir;
    return nullptr;
  }
  return std::make_shared<LuaPluginHandler>(manifest);
}

}  // namespace sluice::engine
