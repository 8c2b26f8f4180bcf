#pragma once
// Identifying a process across restarts of the server that started it: a pid
// alone can be reused, (pid, start time) cannot. Linux /proc.
#include <cstdint>
#include <optional>

namespace sluice::engine {

// When process `pid` started, in clock ticks after boot (/proc/PID/stat
// field 22); nullopt when there is no such process or it is a zombie
// (finished, not yet reaped).
std::optional<int64_t> process_start_time(int pid);

// Whether the process that started at `start` with this pid is still running.
bool process_is_running(int pid, int64_t start);

}  // namespace sluice::engine
