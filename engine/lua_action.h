#pragma once
// Lua steps (`lua = "x.lua"`, `lua_inline = '''...'''`) as actions: the
// bridge between an ActionCall and LuaHost::run_step. Lua plugins use the same
// bridge with their own chunk (see lua_plugin.h).
#include <memory>

#include "engine/action.h"
#include "engine/lua_host.h"

namespace sluice::engine {

// The run_step input for `call`: ctx data, limits (the step's timeout, default
// 60 s; resources.memory, default 512M; the context's cancel flag) and an
// on_log that writes each line into the attempt's log as "<level>: <text>".
LuaStepInput lua_step_input(const ActionCall& call, ActionContext& ctx);

// The action's result from run_step's: values, metrics passed to the context,
// and on failure the error and its traceback written to the log.
ActionResult lua_action_result(LuaStepResult r, ActionContext& ctx);

// The handler for Lua steps: runs call.script_path or call.code.
std::shared_ptr<ActionHandler> make_lua_step_handler();

}  // namespace sluice::engine
