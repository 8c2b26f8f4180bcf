#pragma once
// Runs whose engine died. A run records the process that owns it (pid and an
// id of that process's life); any later sluice command that opens the store
// finds running runs whose owner is gone (kill -9, a crash, a power cut) and
// marks them failed, so nothing stays "running" forever and `sluice retry`
// can take over. See docs/store.md, "Crash recovery".
#include <cstdint>
#include <string>
#include <vector>

#include "registry/store.h"

namespace sluice::engine {

// "<boot id> <start time>" of process `pid` (start time in clock ticks since
// boot, from /proc/PID/stat), which a later process reusing the pid does not
// share; "" when the process does not exist.
std::string process_start_id(int64_t pid);

// Whether the process recorded as (pid, start_id) is still running. An empty
// start_id compares the pid alone.
bool owner_alive(int64_t pid, const std::string& start_id);

// Marks every running run whose owner process is gone as failed with
// "engine died (pid N)": its running attempts fail (their logs, when still
// on disk under `home`, are stored first), its unfinished steps fail, and an
// event says so. Idempotent; safe while other processes run. Returns the
// recovered runs' ids.
std::vector<std::string> recover_dead_runs(registry::Store& store, const std::string& home);

}  // namespace sluice::engine
