#include "engine/plan.h"

#include <algorithm>
#include <cmath>

namespace sluice::engine {

const char* to_string(NodeState s) {
  switch (s) {
    case NodeState::Excluded: return "excluded";
    case NodeState::Waiting: return "waiting";
    case NodeState::Ready: return "ready";
    case NodeState::Running: return "running";
    case NodeState::Backoff: return "retrying";
    case NodeState::Succeeded: return "succeeded";
    case NodeState::Cached: return "cached";
    case NodeState::Failed: return "failed";
    case NodeState::Skipped: return "skipped";
    case NodeState::Cancelled: return "cancelled";
  }
  return "?";
}

const char* to_string(SkipReason r) {
  switch (r) {
    case SkipReason::None: return "";
    case SkipReason::When: return "its 'when' was false";
    case SkipReason::UpstreamSkipped: return "every step it needs was skipped";
    case SkipReason::UpstreamFailed: return "a step it needs failed";
    case SkipReason::Stopped: return "the run stopped";
  }
  return "";
}

bool is_final(NodeState s) {
  return s == NodeState::Succeeded || s == NodeState::Cached || s == NodeState::Failed || s == NodeState::Skipped ||
         s == NodeState::Cancelled || s == NodeState::Excluded;
}

Plan::Plan(const dsl::Workflow& wf, std::vector<bool> selected, PlanOptions options)
    : wf_(wf), options_(options), nodes_(wf.dag.size()) {
  const auto n = static_cast<uint32_t>(wf.dag.size());
  auto in = [&](uint32_t i) { return selected.empty() || selected[i]; };
  for (uint32_t i = 0; i < n; ++i) {
    if (!in(i)) {
      nodes_[i].state = NodeState::Excluded;
      continue;
    }
    ++selected_;
    for (uint32_t p : wf.dag.predecessors(i))
      if (in(p)) ++nodes_[i].pending;
  }
  unfinished_ = selected_;
  for (uint32_t i = 0; i < n; ++i)  // roots in declaration order
    if (nodes_[i].state == NodeState::Waiting && nodes_[i].pending == 0) make_ready(i);
}

void Plan::make_ready(uint32_t node) {
  nodes_[node].state = NodeState::Ready;
  ready_.push_back(node);
}

bool Plan::fits(uint32_t node) const {
  const dsl::Resources& r = wf_.steps[wf_.dag.node(node).step].resources;
  if (running_ >= options_.max_parallel) return false;
  if (cpus_used_ + r.cpus > options_.cpu_capacity + 1e-9) return false;
  if (options_.memory_capacity && memory_used_ + r.memory > options_.memory_capacity) return false;
  return true;
}

void Plan::take_slots(uint32_t node, int sign) {
  const dsl::Resources& r = wf_.steps[wf_.dag.node(node).step].resources;
  cpus_used_ += sign * r.cpus;
  if (sign > 0) memory_used_ += r.memory;
  else memory_used_ -= r.memory;
  if (std::fabs(cpus_used_) < 1e-9) cpus_used_ = 0;
}

std::optional<uint32_t> Plan::next_startable() const {
  if (stopping_ || running_ >= options_.max_parallel) return std::nullopt;
  for (uint32_t node : ready_)
    if (fits(node)) return node;
  return std::nullopt;
}

void Plan::started(uint32_t node) {
  auto it = std::find(ready_.begin(), ready_.end(), node);
  if (it != ready_.end()) ready_.erase(it);
  nodes_[node].state = NodeState::Running;
  ++nodes_[node].attempts;
  ++running_;
  take_slots(node, +1);
}

std::optional<Clock::duration> Plan::succeeded(uint32_t node) {
  --running_;
  take_slots(node, -1);
  finish(node, NodeState::Succeeded);
  return std::nullopt;
}

std::optional<Clock::duration> Plan::failed(uint32_t node, Clock::time_point now, double jitter, bool retryable) {
  --running_;
  take_slots(node, -1);
  Node& n = nodes_[node];
  const dsl::Step& step = wf_.steps[wf_.dag.node(node).step];
  const int counted = n.attempts - n.uncounted;
  if (retryable && !stopping_ && counted <= step.retries) {
    // Exponential backoff: base * 2^(attempt-1), jittered down by up to half.
    using namespace std::chrono;
    double base = static_cast<double>(duration_cast<milliseconds>(step.retry_backoff).count());
    double ms = base * std::pow(2.0, counted - 1) * (0.5 + 0.5 * std::clamp(jitter, 0.0, 0.999999));
    ms = std::min(ms, 300'000.0);
    auto delay = duration_cast<Clock::duration>(duration<double, std::milli>(ms));
    n.state = NodeState::Backoff;
    n.retry_at = now + delay;
    backoff_.push_back(node);
    return delay;
  }
  finish(node, NodeState::Failed);
  if (!step.continue_on_error && !options_.keep_going) stop();
  return std::nullopt;
}

void Plan::skipped_by_when(uint32_t node) {
  auto it = std::find(ready_.begin(), ready_.end(), node);
  if (it != ready_.end()) ready_.erase(it);
  nodes_[node].skip = SkipReason::When;
  finish(node, NodeState::Skipped);
}

void Plan::cached(uint32_t node) {
  auto it = std::find(ready_.begin(), ready_.end(), node);
  if (it != ready_.end()) ready_.erase(it);
  finish(node, NodeState::Cached);
}

void Plan::cancelled(uint32_t node) {
  --running_;
  take_slots(node, -1);
  finish(node, NodeState::Cancelled);
}

void Plan::restore(uint32_t node, NodeState state, SkipReason skip) {
  Node& n = nodes_[node];
  if (is_final(n.state)) return;
  auto it = std::find(ready_.begin(), ready_.end(), node);
  if (it != ready_.end()) ready_.erase(it);
  n.skip = state == NodeState::Skipped ? skip : SkipReason::None;
  finish(node, state);
  const dsl::Step& step = wf_.steps[wf_.dag.node(node).step];
  if (state == NodeState::Failed && !step.continue_on_error && !options_.keep_going) stop();
}

void Plan::resume_attempts(uint32_t node, int recorded, int interrupted) {
  nodes_[node].attempts = recorded;
  nodes_[node].uncounted = interrupted;
}

void Plan::finish(uint32_t node, NodeState state) {
  nodes_[node].state = state;
  if (state == NodeState::Failed) ++failed_;
  newly_final_.push_back(node);
  --unfinished_;
  release_dependents(node);
}

// Final nodes release their dependents; skips cascade through an explicit
// worklist, so a 100,000-step chain does not recurse.
void Plan::release_dependents(uint32_t first) {
  std::vector<uint32_t> work{first};
  while (!work.empty()) {
    uint32_t node = work.back();
    work.pop_back();
    const Node& done = nodes_[node];
    const dsl::Step& step = wf_.steps[wf_.dag.node(node).step];
    const bool ok = done.state == NodeState::Succeeded || done.state == NodeState::Cached ||
                    (done.state == NodeState::Failed && step.continue_on_error);
    const bool bad = !ok && (done.state == NodeState::Failed || done.state == NodeState::Cancelled);
    for (uint32_t d : wf_.dag.successors(node)) {
      Node& dep = nodes_[d];
      if (dep.state != NodeState::Waiting) continue;
      dep.any_dep_ok = dep.any_dep_ok || ok;
      dep.any_dep_failed = dep.any_dep_failed || bad;
      if (--dep.pending > 0) continue;
      if (stopping_) {
        dep.skip = SkipReason::Stopped;
      } else if (dep.any_dep_failed) {
        dep.skip = SkipReason::UpstreamFailed;
      } else if (!dep.any_dep_ok) {
        dep.skip = SkipReason::UpstreamSkipped;
      } else {
        make_ready(d);
        continue;
      }
      dep.state = NodeState::Skipped;
      --unfinished_;
      newly_final_.push_back(d);
      work.push_back(d);
    }
  }
}

void Plan::stop() {
  if (stopping_) return;
  stopping_ = true;
  ready_.clear();
  backoff_.clear();
  for (Node& n : nodes_) {
    if (n.state == NodeState::Waiting || n.state == NodeState::Ready || n.state == NodeState::Backoff) {
      n.state = NodeState::Skipped;
      n.skip = SkipReason::Stopped;
      --unfinished_;
      newly_final_.push_back(static_cast<uint32_t>(&n - nodes_.data()));
    }
  }
}

void Plan::wake_retries(Clock::time_point now) {
  auto due = std::stable_partition(backoff_.begin(), backoff_.end(), [&](uint32_t i) { return nodes_[i].retry_at > now; });
  for (auto it = due; it != backoff_.end(); ++it) make_ready(*it);
  backoff_.erase(due, backoff_.end());
}

std::optional<Clock::time_point> Plan::next_retry() const {
  std::optional<Clock::time_point> best;
  for (uint32_t i : backoff_)
    if (!best || nodes_[i].retry_at < *best) best = nodes_[i].retry_at;
  return best;
}

size_t Plan::count(NodeState s) const {
  return static_cast<size_t>(std::count_if(nodes_.begin(), nodes_.end(), [s](const Node& n) { return n.state == s; }));
}

}  // namespace sluice::engine
