// The Runner for this host: clone(CLONE_VM|CLONE_VFORK) on a stack it keeps
// (what posix_spawn does, without a stack mapped and unmapped per process) +
// pidfd (CLONE_PIDFD) + poll. Linux >= 5.2 for pidfds; on older kernels it
// falls back to polling waitid every 10 ms.
#pragma once

#include <memory>

#include "engine/runner.h"

namespace sluice::engine {

struct PosixRunnerOptions {
  bool use_pidfd = true;  // false forces the polling fallback (for tests)
};

// Destroying it cancels what still runs and waits for it (at most the longest
// kill_grace): no zombie and nothing of the process groups is left behind.
// The process must not reap children it did not start itself with
// waitpid(-1, ...) nor set SIGCHLD to SIG_IGN: either steals the runner's results.
std::unique_ptr<Runner> make_posix_runner(PosixRunnerOptions options = {});

}  // namespace sluice::engine
