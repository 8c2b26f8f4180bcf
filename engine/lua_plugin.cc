// Lua plugin actions: one call of `actions[name](ctx, args)` from the
// plugin's init.lua, run by the calling thread's LuaHost through the same
// bridge as Lua steps (lua_action.h).
#include "engine/lua_plugin.h"

#include <unistd.h>

#include "engine/lua_action.h"
#include "engine/plugin_args.h"

namespace sluice::engine {

namespace {

class LuaPluginHandler final : public ActionHandler {
 public:
  explicit LuaPluginHandler(const dsl::PluginManifest& manifest)
      : manifest_(manifest), init_(manifest.dir + "/init.lua"), chunk_name_(manifest.name + "/init.lua") {}

  ActionResult invoke(const ActionCall& call, ActionContext& ctx) override {
    if (!manifest_.find(call.action)) {
      ActionResult r;
      r.error = "plugin '" + manifest_.name + "' has no action '" + call.action + "'";
      return r;
    }
    LuaStepInput in = lua_step_input(call, ctx);
    in.script_path = init_;
    in.code.clear();
    in.chunk_name = chunk_name_;
    in.action = call.action;
    in.args = call.args.is_object() ? value_from_json(call.args) : dsl::Value(dsl::ValueTable{});
    in.plugin_dir = manifest_.dir;
    return lua_action_result(ctx.lua().run_step(in), ctx);
  }

 private:
  const dsl::PluginManifest manifest_;  // a copy: the handler may outlive the catalog
  const std::string init_;
  const std::string chunk_name_;  // errors read "<plugin>/init.lua:LINE: message"
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
