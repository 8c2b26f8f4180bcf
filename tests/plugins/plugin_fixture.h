#pragma once
// Built-in plugin tests: a plugin from the build tree's plugins/ folder loaded
// through make_native_plugin_handler (dlopen in a `sluice __plugin-worker`),
// actions invoked with plugin.toml's defaults applied as the engine does, and
// a real HTTP server on 127.0.0.1 (cpp-httplib) in the test process.
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <httplib.h>

#include <catch2/catch.hpp>

#include "engine/native_plugin.h"
#include "support/plugin_manifest_reader.h"
#include "support/temp_dir.h"
#include "support/test_action_context.h"

namespace sluice::test {

struct PluginFixture {
  TestManifest tm;
  std::shared_ptr<engine::ActionHandler> handler;
  ScratchDir dir;  // the step's work dir
  TestActionContext ctx;

  explicit PluginFixture(const std::string& name) {
    engine::set_plugin_worker_path(SLUICE_BIN);
    tm = read_test_manifest(std::string(SLUICE_BUILD_PLUGINS) + "/" + name);
    std::string error;
    handler = engine::make_native_plugin_handler(tm.manifest, error);
    INFO(error);
    REQUIRE(handler);
  }

  engine::ActionResult invoke(const std::string& action, nlohmann::json args,
                              std::map<std::string, std::string> outputs = {},
                              std::map<std::string, std::string> inputs = {}) {
    engine::ActionCall call;
    call.plugin = tm.manifest.name;
    call.action = action;
    call.args = with_defaults(tm, action, std::move(args));
    call.workdir = dir.path;
    call.outputs = std::move(outputs);
    call.inputs = std::move(inputs);
    ctx.logs.clear();
    return handler->invoke(call, ctx);
  }
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The names in a folder (hidden ones too), sorted.
inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// An HTTP server on 127.0.0.1 for one test; routes are added before start().
struct TestServer {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string base;  // "http://127.0.0.1:PORT"

  void start() {
    port = server.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    base = "http://127.0.0.1:" + std::to_string(port);
    thread = std::thread([this] { server.listen_after_bind(); });
    for (int i = 0; i < 500 && !server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ~TestServer() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
};

}  // namespace sluice::test
