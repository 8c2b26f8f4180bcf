#pragma once
// Runs whose engine died. A run records the process that owns it (pid and an
// id of that process's life); any later sluice command that opens the store
// finds running runs whose owner is gone (kill -9, a crash, a power cut) and
// marks them failed, so nothing stays "running" forever and `sluice retry`
// can take over. See docs/store.md, "Crash recovery".
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "registry/artifact_store.h"
#include "registry/store.h"

namespace sluice::engine {

// The fields of /proc/PID/stat after the command name: [0] is the state
// (field 3: "R", "S", "Z", ...), [1] the parent, [2] the process group, [19]
// the start time (field 22). Empty when the process does not exist.
std::vector<std::string> proc_stat_fields(int64_t pid);

// "<boot id> <start time>" of process `pid` (start time in clock ticks since
// boot, from /proc/PID/stat), which a later process reusing the pid does not
// share; "" when the process does not exist or is a zombie (it exited and
// its parent has not reaped it yet) — unless `even_zombie`: a zombie still
// holds its pid and its process group, so its id is returned too.
std::string process_start_id(int64_t pid, bool even_zombie = false);

// Whether the process recorded as (pid, start_id) is still running (a
// zombie is not). An empty start_id compares the pid alone.
bool owner_alive(int64_t pid, const std::string& start_id);

// Marks every running run whose owner process is gone as failed with
// "engine died (pid N)": its running attempts fail (their logs, when still
// on disk under `home`, are stored first), its unfinished steps fail, and a
// `run_recovered` event says so. Idempotent; safe while other processes run
// (a run another process took over meanwhile is left alone). Returns the
// recovered runs' ids.
std::vector<std::string> recover_dead_runs(registry::Store& store, const std::string& home);

// Whether `run`'s engine died before it finished: it is running and its
// owner process is gone, or it failed and the last thing recorded of it is
// recover_dead_runs' `run_recovered` event (an ordinary failure ends with
// `run_finished`). Such a run can be resumed (`sluice resume`).
bool engine_died(registry::Store& store, const registry::RunRow& run);

// "engine died (pid N)": the error recorded for a run, its unfinished steps
// and its interrupted attempts when the engine with pid N died.
std::string engine_died_error(int64_t pid);
bool is_engine_died_error(const std::string& error);

// Appends the writes that end step `node`'s running attempts as failed with
// `why`, their logs (when still on disk) stored first in the artifact store
// at `home` (opened into `cas` on first use).
void fail_running_attempts(registry::Store& store, const std::string& home, std::optional<registry::ArtifactStore>& cas,
                           const std::string& run_id, const std::string& node, const std::string& why, int64_t at,
                           std::vector<registry::Write>& writes);

}  // namespace sluice::engine
