#pragma once
// The scheduler's state machine for one run: which instances are ready, which
// fit the machine's free slots, what to retry and when, what to skip. It does
// no I/O and reads no clock: callers pass `now`, so tests drive it directly.
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dsl/spec.h"

namespace sluice::engine {

using Clock = std::chrono::steady_clock;

enum class NodeState {
  Excluded,   // not selected for this run (--only / --from)
  Waiting,    // some dependency has not finished
  Ready,      // may start once slots are free
  Running,
  Backoff,    // failed an attempt; a retry is due at `retry_at`
  Succeeded,
  Cached,     // restored from the cache without running
  Failed,
  Skipped,    // see SkipReason
  Cancelled,  // stopped by fail-fast or an interrupt while running
};

enum class SkipReason { None, When, UpstreamSkipped, UpstreamFailed, Stopped };

const char* to_string(NodeState s);
const char* to_string(SkipReason r);
bool is_final(NodeState s);

struct PlanOptions {
  bool keep_going = false;      // run everything whose dependencies succeeded
  uint32_t max_parallel = 1;    // -j
  double cpu_capacity = 1;      // the machine's cores
  uint64_t memory_capacity = 0; // bytes; 0 = unlimited
};

class Plan {
 public:
  // `selected[i]` says whether DAG node i takes part (empty = all).
  Plan(const dsl::Workflow& wf, std::vector<bool> selected, PlanOptions options);

  // A node that may start now: ready, its resources fit, the run is not
  // stopping. Marks nothing; call started() when it does start.
  std::optional<uint32_t> next_startable() const;
  void started(uint32_t node);
  // Ready nodes in the order next_startable() considers them (for work done
  // ahead of a start: engine/executor.cc, look_ahead).
  const std::deque<uint32_t>& ready() const { return ready_; }

  // The attempt of `node` ended. On failure, with retries left, the node
  // goes to Backoff until now + delay (exponential from retry_backoff, times
  // a jitter factor in [0.5, 1.0) from `jitter`, capped at 5 minutes); the
  // delay is returned. Otherwise the node is final and its dependents are
  // released or skipped. Fail-fast: a final failure stops the run.
  std::optional<Clock::duration> succeeded(uint32_t node);
  // `retryable` = false fails for good at once (e.g. a missing input).
  std::optional<Clock::duration> failed(uint32_t node, Clock::time_point now, double jitter, bool retryable = true);
  // The step's `when` was false (or it was restored from the cache).
  void skipped_by_when(uint32_t node);
  void cached(uint32_t node);
  // A running attempt was cancelled (fail-fast or interrupt).
  void cancelled(uint32_t node);

  // `sluice resume`: `node` finished before the engine died, in `state`
  // (succeeded, cached, failed, skipped with `skip`, cancelled); it becomes
  // final as if it had just finished (dependents released or skipped; a
  // failure stops the run unless keep_going or continue_on_error). Nodes are
  // restored in topological order, before anything starts; one already final
  // (a skip cascaded to it) is left as it is.
  void restore(uint32_t node, NodeState state, SkipReason skip);
  // `sluice resume`: `node` had `recorded` attempts, the last `interrupted`
  // of which the engine's death cut short. Attempt numbers continue after
  // `recorded`; interrupted attempts do not count against `retries`.
  void resume_attempts(uint32_t node, int recorded, int interrupted);

  // Nothing new starts; waiting, ready and backoff nodes become Skipped
  // (Stopped). Running ones finish or are cancelled by the caller.
  void stop();
  bool stopping() const { return stopping_; }

  // Moves Backoff nodes whose time has come back to Ready.
  void wake_retries(Clock::time_point now);
  // The earliest pending retry, if any.
  std::optional<Clock::time_point> next_retry() const;

  bool done() const { return unfinished_ == 0; }
  size_t running() const { return running_; }

  NodeState state(uint32_t node) const { return nodes_[node].state; }
  SkipReason skip_reason(uint32_t node) const { return nodes_[node].skip; }
  int attempts(uint32_t node) const { return nodes_[node].attempts; }
  size_t selected_count() const { return selected_; }
  size_t finished_count() const { return selected_ - unfinished_; }
  size_t count(NodeState s) const;  // O(nodes)
  size_t failed_count() const { return failed_; }
  // Nodes that became final since the last call, in the order they did
  // (including skips that cascaded and nodes stopped by stop()).
  std::vector<uint32_t> take_finished() { return std::exchange(newly_final_, {}); }

 private:
  struct Node {
    NodeState state = NodeState::Waiting;
    SkipReason skip = SkipReason::None;
    uint32_t pending = 0;        // selected dependencies not yet final
    bool any_dep_ok = false;     // some dependency succeeded/cached (or failed with continue_on_error)
    bool any_dep_failed = false; // some dependency failed for good
    int attempts = 0;
    int uncounted = 0;           // attempts the engine's death cut short (resume_attempts)
    Clock::time_point retry_at{};
  };

  void make_ready(uint32_t node);
  void finish(uint32_t node, NodeState state);
  void release_dependents(uint32_t node);
  bool fits(uint32_t node) const;
  void take_slots(uint32_t node, int sign);

  const dsl::Workflow& wf_;
  PlanOptions options_;
  std::vector<Node> nodes_;
  std::deque<uint32_t> ready_;  // ready nodes, in the order they became ready
  std::vector<uint32_t> backoff_;  // nodes waiting for a retry
  std::vector<uint32_t> newly_final_;
  size_t failed_ = 0;
  size_t selected_ = 0;
  size_t unfinished_ = 0;
  size_t running_ = 0;
  double cpus_used_ = 0;
  uint64_t memory_used_ = 0;
  bool stopping_ = false;
};

}  // namespace sluice::engine
