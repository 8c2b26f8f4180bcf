#pragma once
// The engine never prints: it reports what happens to a run as events, and
// sinks (the terminal status line, later the store, the HTTP API, /metrics)
// turn them into output. Events are delivered on the executor's thread.
#include <chrono>
#include <cstdint>
#include <string>

#include "engine/plan.h"

namespace sluice::engine {

struct NodeRecord;

struct Event {
  enum class Kind {
    RunStarted,
    StepStarted,    // an attempt began (attempt = 1, 2, ...)
    StepFinished,   // final: state is Succeeded or Failed (message = why it failed)
    StepRetrying,   // an attempt failed; `delay` until the next one; message = why
    StepSkipped,    // state Skipped with `skip`
    StepCancelled,
    StepCached,
    StepOutput,     // one line of output (verbose runs); message = the line
    RunFinished,
  };
  Kind kind = Kind::RunStarted;
  uint32_t node = 0;
  int attempt = 0;
  NodeState state = NodeState::Waiting;
  SkipReason skip = SkipReason::None;
  std::string message;
  std::string log_path;
  // StepStarted of a `run` step: its process group (the shell's pid), sent
  // once the process is spawned; 0 otherwise.
  int pgid = 0;
  Clock::duration elapsed{};  // attempt duration (finished, retrying) or run duration
  Clock::duration delay{};    // StepRetrying
  // Progress after this event: instances final / selected, attempts
  // running, instances failed.
  size_t done = 0, total = 0, running = 0, failed = 0;
  // The node's record (attempts, values, metrics, outputs), for step events;
  // valid only during on_event.
  const NodeRecord* record = nullptr;
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_event(const Event& e) = 0;
};

}  // namespace sluice::engine
