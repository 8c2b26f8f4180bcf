#pragma once
// The terminal sink: on a terminal one ninja-style status line that redraws
// in place ("[12/40] train[lr=0.1] - 2 running, 1 failed"); on a pipe one
// line per finished step. Retries, failures and (with -v) step output always
// get their own lines. Writes to the FILE it is given.
#include <cstdio>
#include <string>

#include "dsl/spec.h"
#include "engine/events.h"
#include "engine/executor.h"

namespace sluice::engine {

class StatusPrinter : public EventSink {
 public:
  StatusPrinter(const dsl::Workflow& wf, std::FILE* out, bool smart_terminal);
  void on_event(const Event& e) override;

 private:
  void line(const std::string& text);   // a whole line, clearing the status line first
  void status(const std::string& text);  // the redrawn line (terminal only)

  const dsl::Workflow& wf_;
  std::FILE* out_;
  bool smart_;
  bool status_shown_ = false;
};

// "40 steps: 37 succeeded, 2 skipped, 1 failed (12.3s)", a table of steps
// (status, attempts, duration; only the unsuccessful ones past 50 steps),
// and for each failed step its log path and last lines.
std::string format_summary(const dsl::Workflow& wf, const RunRecord& run);

// "1.2s", "3m04s", "15ms"
std::string format_elapsed(Clock::duration d);

}  // namespace sluice::engine
