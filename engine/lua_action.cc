#include "engine/lua_action.h"

namespace sluice::engine {

namespace {

const char* level_name(LuaLogLine::Level l) {
  switch (l) {
    case LuaLogLine::Level::Info: return "info";
    case LuaLogLine::Level::Warn: return "warn";
    case LuaLogLine::Level::Error: return "error";
  }
  return "info";
}

// The traceback minus the host's own C frames ("\t[C]: at 0x55..."), which
// name addresses, not code a user wrote.
std::string without_host_frames(const std::string& tb) {
  std::string out;
  size_t start = 0;
  while (start < tb.size()) {
    size_t end = tb.find('\n', start);
    if (end == std::string::npos) end = tb.size();
    std::string_view line(tb.data() + start, end - start);
    if (line.rfind("\t[C]: at 0x", 0) != 0) {
      if (!out.empty()) out += '\n';
      out += line;
    }
    start = end + 1;
  }
  return out;
}

class LuaStepHandler : public ActionHandler {
 public:
  ActionResult invoke(const ActionCall& call, ActionContext& ctx) override {
    LuaStepInput in = lua_step_input(call, ctx);
    return lua_action_result(ctx.lua().run_step(in), ctx);
  }
};

}  // namespace

LuaStepInput lua_step_input(const ActionCall& call, ActionContext& ctx) {
  LuaStepInput in;
  in.script_path = call.script_path;
  in.code = call.code;
  in.chunk_name = call.chunk_name;
  in.params = call.params;
  in.inputs = call.inputs;
  in.outputs = call.outputs;
  in.matrix = call.matrix;
  in.run.id = call.run_id;
  in.run.step = call.node;
  in.run.attempt = call.attempt;
  in.steps = call.steps;
  in.workdir = call.workdir;
  in.home = call.home;
  if (call.timeout.count() > 0) in.limits.time = call.timeout;
  if (call.memory > 0) in.limits.memory = call.memory;
  in.limits.cancel = ctx.cancel_flag();
  in.http_hosts = call.http_hosts;
  in.on_log = [&ctx](const LuaLogLine& line) { ctx.log(std::string(level_name(line.level)) + ": " + line.text); };
  return in;
}

ActionResult lua_action_result(LuaStepResult r, ActionContext& ctx) {
  ActionResult out;
  for (const LuaMetric& m : r.metrics) ctx.metric(m.name, m.value, m.step);
  if (!r.ok) {
    out.error = r.error;
    out.cancelled = r.error == "cancelled";
    out.timed_out = r.error == "time limit exceeded";
    ctx.log("error: " + r.error);
    if (!r.traceback.empty()) ctx.log(without_host_frames(r.traceback));
    return out;
  }
  out.ok = true;
  out.values = std::move(r.values);
  return out;
}

std::shared_ptr<ActionHandler> make_lua_step_handler() { return std::make_shared<LuaStepHandler>(); }

}  // namespace sluice::engine
