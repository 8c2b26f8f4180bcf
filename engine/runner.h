// The side-effect layer of the local executor: it starts `run` steps as
// processes and reports how they ended. Deciding *what* to run lives elsewhere
// (the scheduler); tests of the scheduler drive it with a fake Runner.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::engine {

// One attempt of one step. start() copies what it needs; the spec may die after.
struct ProcessSpec {
  std::string command;               // run as `/bin/sh -c command`
  std::string workdir;               // must exist; the child chdirs there
  std::vector<std::string> env;      // the child's whole environment, "KEY=VALUE"
  // stdout+stderr go here. The file is created (truncated, 0644) at the
  // first byte of output, so an attempt that writes nothing leaves no file;
  // it is complete and closed before wait() returns the result. Empty = discarded.
  std::string log_path;
  std::chrono::milliseconds timeout{0};        // 0 = none; counted from start()
  std::chrono::milliseconds kill_grace{5000};  // after SIGTERM, SIGKILL follows this much later
  bool stream = false;               // also hand each output line to Runner::on_line
};

struct ProcessResult {
  enum class Outcome { Exited, Signaled, TimedOut, Cancelled, SpawnFailed };
  Outcome outcome = Outcome::SpawnFailed;
  int exit_code = -1;   // Exited: the status; TimedOut/Cancelled: the status if the shell exited
  int signal = 0;       // Signaled: the signal; TimedOut/Cancelled: the signal that ended it, if any
  int pid = 0;          // the shell's pid, which is also its process group id; 0 if never spawned
  // SpawnFailed: what failed, naming the path involved. Otherwise a problem
  // the process's own status does not show: "cannot open log file 'PATH':
  // REASON" when the log could not be created at the first output (the
  // process ran on; its output was lost), or its reaping went wrong.
  std::string error;
  std::chrono::system_clock::time_point started, finished;  // as seen by the runner
};

inline const char* to_string(ProcessResult::Outcome o) {
  switch (o) {
    case ProcessResult::Outcome::Exited: return "exited";
    case ProcessResult::Outcome::Signaled: return "signaled";
    case ProcessResult::Outcome::TimedOut: return "timed out";
    case ProcessResult::Outcome::Cancelled: return "cancelled";
    case ProcessResult::Outcome::SpawnFailed: return "spawn failed";
  }
  return "?";
}

// Starts and reaps processes. Not thread-safe: one owner thread calls every
// member except wake(). Each process gets its own process group; when a process
// ends (however it ends) whatever is left of its group is SIGKILLed, so a step
// never leaves background children behind (see docs/running.md, "Processes").
class Runner {
 public:
  using Id = std::uint64_t;  // unique per Runner, never 0

  virtual ~Runner() = default;

  // Starts a process. Never throws for a bad spec: a process that cannot be
  // started yields Outcome::SpawnFailed from a later wait().
  virtual Id start(const ProcessSpec& spec) = 0;

  // The process group of a process start() just returned (its leader's pid),
  // for the record: `sluice resume` ends it when this engine dies. 0 when it
  // never started, has been returned by wait(), or the Runner has no groups.
  virtual int process_group(Id) const { return 0; }

  // Returns true with one finished process's id and result, or false once
  // `max_wait` has passed or wake() was called. Timeouts and kill escalation
  // are driven from here, so the owner keeps calling wait() while running() > 0.
  virtual bool wait(Id& id, ProcessResult& result, std::chrono::milliseconds max_wait) = 0;

  // SIGTERM to the process group, SIGKILL after the spec's kill_grace; the
  // result (from wait()) is Cancelled unless it had already timed out.
  // Unknown or finished ids are ignored.
  virtual void cancel(Id id) = 0;
  virtual void cancel_all() = 0;

  // Processes started whose result wait() has not returned yet (SpawnFailed
  // ones included), so `while (running()) wait(...)` loses nothing.
  virtual std::size_t running() const = 0;

  // Makes the current or the next wait() return promptly. Async-signal-safe;
  // may be called from any thread or from a signal handler.
  virtual void wake() = 0;

  // Called from wait(), on the owner thread, with each complete output line
  // (without the '\n') of a stream=true process; a last line without '\n' is
  // delivered when the process ends. Must not call back into the Runner.
  std::function<void(Id, std::string_view line)> on_line;
};

}  // namespace sluice::engine
