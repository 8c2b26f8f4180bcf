#pragma once
// An ActionContext for handler tests: records what the action reports, and
// is cancelled by cancel() or once `timeout` (from construction) has passed.
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/action.h"

namespace sluice::test {

class TestActionContext final : public engine::ActionContext {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TestActionContext(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    if (timeout.count() > 0) deadline_ = Clock::now() + timeout;
  }

  void log(std::string_view line) override {
    std::lock_guard lock(mu_);
    logs.emplace_back(line);
  }
  void metric(const std::string& name, double value, std::optional<int64_t> step) override {
    std::lock_guard lock(mu_);
    metrics.push_back({name, value, step});
  }
  bool cancelled() const override { return cancel_ || (deadline_ && Clock::now() >= *deadline_); }
  std::optional<std::chrono::milliseconds> time_left() const override {
    if (!deadline_) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now());
  }
  engine::LuaHost& lua() override { throw std::logic_error("native plugin tests have no Lua host"); }

  void cancel() { cancel_ = true; }

  struct Metric {
    std::string name;
    double value;
    std::optional<int64_t> step;
    bool operator==(const Metric&) const = default;
  };
  std::vector<std::string> logs;
  std::vector<Metric> metrics;

 private:
  std::mutex mu_;
  std::atomic<bool> cancel_{false};
  std::optional<Clock::time_point> deadline_;
};

}  // namespace sluice::test
