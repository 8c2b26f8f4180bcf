// plugin_invoke SLUICE PLUGIN_DIR ACTION ARGS_JSON WORKDIR [in:NAME=PATH | out:NAME=PATH]...
// Loads the plugin in PLUGIN_DIR through make_native_plugin_handler (workers
// are `SLUICE __plugin-worker`), runs ACTION once and prints what happened:
// "ok" or "error: ...", then sorted "value K=V", "metric N=V" and "log LINE"
// lines. Exit 0 when the action succeeded. For script tests (tests/sdk/).
#include <cstdio>
#include <iostream>

#include "engine/native_plugin.h"
#include "support/plugin_manifest_reader.h"
#include "support/test_action_context.h"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: plugin_invoke SLUICE PLUGIN_DIR ACTION ARGS_JSON WORKDIR [in:N=P|out:N=P]...\n");
    return 2;
  }
  sluice::engine::set_plugin_worker_path(argv[1]);
  auto tm = sluice::test::read_test_manifest(argv[2]);
  std::string error;
  auto handler = sluice::engine::make_native_plugin_handler(tm.manifest, error);
  if (!handler) {
    std::cout << "error: " << error << "\n";
    return 1;
  }
  sluice::engine::ActionCall call;
  call.plugin = tm.manifest.name;
  call.action = argv[3];
  call.args = sluice::test::with_defaults(tm, call.action, nlohmann::json::parse(argv[4]));
  call.workdir = argv[5];
  for (int i = 6; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    if (a.rfind("in:", 0) == 0 && eq != std::string::npos) call.inputs[a.substr(3, eq - 3)] = a.substr(eq + 1);
    else if (a.rfind("out:", 0) == 0 && eq != std::string::npos) call.outputs[a.substr(4, eq - 4)] = a.substr(eq + 1);
  }
  sluice::test::TestActionContext ctx;
  sluice::engine::ActionResult r = handler->invoke(call, ctx);
  std::cout << (r.ok ? "ok" : "error: " + r.error) << "\n";
  for (const auto& [k, v] : r.values) std::cout << "value " << k << "=" << v << "\n";
  for (const auto& m : ctx.metrics) std::cout << "metric " << m.name << "=" << m.value << "\n";
  for (const auto& l : ctx.logs) std::cout << "log " << l << "\n";
  return r.ok ? 0 : 1;
}
