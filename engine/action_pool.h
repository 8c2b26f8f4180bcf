#pragma once
// Runs action steps (engine/action.h) on worker threads, so the executor's
// loop never blocks on Lua or plugin code. Threads are started on demand up to
// `max_threads` and reused; each keeps one LuaHost for every step it runs.
// Owned and called by the executor's thread; results and streamed log lines
// are collected with take_finished()/take_lines() after `notify` fired.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/action.h"

namespace sluice::engine {

class ActionPool {
 public:
  using Id = std::uint64_t;  // unique per pool, never 0

  struct Finished {
    Id id = 0;
    ActionResult result;
    std::vector<std::pair<std::string, double>> metrics;  // in the order recorded
    std::chrono::system_clock::time_point started, finished;
  };
  struct Line {
    Id id = 0;
    std::string text;
  };

  // `notify` is called from worker threads each time a result or a streamed
  // line is ready (the executor passes Runner::wake, which is thread-safe).
  ActionPool(size_t max_threads, std::function<void()> notify);
  ~ActionPool();  // cancels whatever runs, then joins every thread

  // Queues one attempt. The pool writes the attempt's log (call.log_path,
  // created/truncated at the first line; no file when nothing is logged),
  // enforces `call.timeout` through the context
  // (cancelled() turns true once it passes) and catches anything the handler
  // throws (the attempt fails with the exception's message).
  Id submit(std::shared_ptr<ActionHandler> handler, ActionCall call, bool stream);

  // Asks the attempt to stop (ActionContext::cancelled()); its result still
  // comes through take_finished(), marked cancelled.
  void cancel(Id id);
  void cancel_all();

  std::vector<Finished> take_finished();
  std::vector<Line> take_lines();  // stream=true attempts' log lines, in order
  size_t running() const;          // submitted, not yet taken as finished

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::engine
