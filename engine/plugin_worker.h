#pragma once
// The worker side of plugin isolation: `sluice __plugin-worker`, started by
// the engine (worker_process.h) with the wire socket on fd 3. It reads one
// request, loads the plugin library, answers (the library's identity, or the
// action's callbacks and result) and exits. Never called by users.
namespace sluice::engine {

int plugin_worker_main();

}  // namespace sluice::engine
