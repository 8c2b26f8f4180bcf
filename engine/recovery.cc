#include "engine/recovery.h"

#include <signal.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "registry/artifact_store.h"

namespace sluice::engine {

namespace reg = sluice::registry;

namespace {

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

std::string process_start_id(int64_t pid) {
  if (pid <= 0) return {};
  std::string stat = first_line("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // fields are counted after the last ')'. Start time is field 22.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i)
    if (i == 22) return first_line("/proc/sys/kernel/random/boot_id") + " " + field;
  return {};
}

bool owner_alive(int64_t pid, const std::string& start_id) {
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  if (start_id.empty()) return true;
  return process_start_id(pid) == start_id;
}

std::vector<std::string> recover_dead_runs(reg::Store& store, const std::string& home) {
  std::vector<std::string> recovered;
  for (const reg::RunRow& run : store.runs_in_status(reg::RunStatus::Running)) {
    if (run.owner_pid <= 0 || owner_alive(run.owner_pid, run.owner_start)) continue;
    const std::string why = "engine died (pid " + std::to_string(run.owner_pid) + ")";
    const int64_t now = reg::now_ms();
    std::vector<reg::Write> writes;
    std::optional<reg::ArtifactStore> cas;
    for (const reg::StepRow& step : store.steps(run.id)) {
      if (reg::is_final(step.status)) continue;
      for (const reg::AttemptRow& a : store.attempts(run.id, step.node)) {
        if (a.status != reg::AttemptStatus::Running) continue;
        reg::FinishAttempt f{.run_id = run.id, .node = step.node, .number = a.number,
                             .status = reg::AttemptStatus::Failed, .at = now, .error = why};
        // The log as far as it got: logs are never lost to a crash.
        if (!a.log_path.empty() && !home.empty()) {
          if (!cas) {
            auto opened = reg::ArtifactStore::open(home);
            if (opened) cas.emplace(std::move(*opened));
          }
          if (cas) {
            if (auto d = cas->put_file(a.log_path)) {
              auto size = cas->size(*d);
              writes.push_back(reg::PutArtifact{d->str(), reg::ArtifactKind::File,
                                                size ? static_cast<int64_t>(*size) : 0, now});
              f.log_digest = d->str();
            }
          }
        }
        writes.push_back(f);
      }
      writes.push_back(reg::SetStepStatus{.run_id = run.id, .node = step.node, .status = reg::StepStatus::Failed,
                                          .at = now, .error = why});
    }
    writes.push_back(reg::SetRunStatus{run.id, reg::RunStatus::Failed, now, why});
    writes.push_back(reg::AddEvent{.run_id = run.id, .at = now, .kind = "run_recovered", .message = why});
    store.apply(writes);
    recovered.push_back(run.id);
  }
  return recovered;
}

}  // namespace sluice::engine
