// The Runner for this host: posix_spawn + pidfd + poll (Linux >= 5.3 for
// pidfd_open; on older kernels it falls back to polling waitid every 10 ms).
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
