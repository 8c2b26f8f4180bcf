#include "engine/step_groups.h"

#include <dirent.h>
#include <signal.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "engine/recovery.h"

namespace sluice::engine {

namespace {

using Clock = std::chrono::steady_clock;

// Of `wanted`, the process groups that hold a process that is not a zombie
// (a zombie runs nothing, and may never be reaped when its parent died).
std::set<int64_t> live_groups(const std::set<int64_t>& wanted) {
  std::set<int64_t> live;
  if (wanted.empty()) return live;
  DIR* proc = ::opendir("/proc");
  if (!proc) return live;
  while (const dirent* d = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(d->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    const std::vector<std::string> f = proc_stat_fields(pid);
    if (f.size() < 3 || f[0] == "Z" || f[0] == "X") continue;
    const int64_t pgrp = std::strtoll(f[2].c_str(), nullptr, 10);
    if (wanted.count(pgrp)) live.insert(pgrp);
  }
  ::closedir(proc);
  return live;
}

// Waits until no group of `groups` has a live process, or `until`.
std::set<int64_t> wait_gone(std::set<int64_t> groups, Clock::time_point until) {
  for (;;) {
    groups = live_groups(groups);
    if (groups.empty() || Clock::now() >= until) return groups;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

std::vector<GroupFate> end_step_groups(const std::vector<StepGroup>& groups, std::chrono::milliseconds grace) {
  std::vector<GroupFate> fates(groups.size(), GroupFate::NotTheStep);
  std::set<int64_t> candidates;
  for (const StepGroup& g : groups)
    if (g.pgid > 0) candidates.insert(g.pgid);
  const std::set<int64_t> live = live_groups(candidates);
  std::set<int64_t> signalled;
  for (size_t i = 0; i < groups.size(); ++i) {
    const StepGroup& g = groups[i];
    if (g.pgid <= 0 || !live.count(g.pgid)) {
      fates[i] = GroupFate::Gone;
      continue;
    }
    // The leader, even a zombie, holds the group's id: while it has the
    // recorded start id, the group is the step's. Without it, a group of
    // this id may be another program's.
    if (g.start.empty() || process_start_id(g.pgid, true) != g.start) continue;
    if (signalled.insert(g.pgid).second) {
      ::kill(static_cast<pid_t>(-g.pgid), SIGTERM);
      ::kill(static_cast<pid_t>(-g.pgid), SIGCONT);  // a stopped process acts on SIGTERM only once continued
    }
    fates[i] = GroupFate::Ended;
  }
  const std::set<int64_t> stubborn = wait_gone(signalled, Clock::now() + grace);
  for (int64_t pgid : stubborn) ::kill(static_cast<pid_t>(-pgid), SIGKILL);
  wait_gone(stubborn, Clock::now() + std::chrono::seconds(5));
  for (size_t i = 0; i < groups.size(); ++i)
    if (fates[i] == GroupFate::Ended && stubborn.count(groups[i].pgid)) fates[i] = GroupFate::Killed;
  return fates;
}

}  // namespace sluice::engine
