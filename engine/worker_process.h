#pragma once
// The engine side of plugin isolation: starts `sluice __plugin-worker` in its
// own process group, sends it one request over the wire (plugin_protocol.h),
// relays its callbacks and output while it runs, enforces the deadline and
// cancellation (a "cancel" frame, then SIGKILL to the group after a grace
// period) and reports how it ended. Blocking; any thread may call it.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace sluice::engine {

// The executable started as the worker: set_plugin_worker_path()'s, else
// /proc/self/exe (the running sluice).
std::string plugin_worker_path();

struct WorkerHooks {
  // A callback frame from the plugin ("log", "metric", "value").
  std::function<void(const nlohmann::json&)> on_callback;
  // One line the worker wrote to stdout or stderr.
  std::function<void(std::string_view)> on_output;
  // Polled while the worker runs; true starts the stop (WorkerEnd::Cancelled).
  std::function<bool()> cancelled;
};

struct WorkerLimits {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::chrono::milliseconds grace{1000};  // between the "cancel" frame and SIGKILL
};

enum class WorkerEnd {
  Answered,      // exited normally after a reply frame
  Crashed,       // killed by a signal it did not get from us (`signal`)
  Exited,        // exited without a reply (`exit_code`)
  TimedOut,      // the deadline passed; stopped
  Cancelled,     // hooks.cancelled() said so; stopped
  Broken,        // it sent something that is not a frame
  SpawnFailed,   // `error` says why
};

struct WorkerOutcome {
  WorkerEnd end = WorkerEnd::SpawnFailed;
  std::optional<nlohmann::json> reply;  // the frame that is not a callback ("result", "identity", "error")
  int signal = 0;
  int exit_code = -1;
  uint64_t peak_rss = 0;  // bytes, from wait4()
  std::string error;
};

WorkerOutcome run_worker(const nlohmann::json& request, const WorkerHooks& hooks, const WorkerLimits& limits);

// "SIGSEGV" (or "signal 42").
std::string signal_name(int sig);

}  // namespace sluice::engine
