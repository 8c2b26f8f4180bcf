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

std::vector<std::string> proc_stat_fields(int64_t pid) {
  std::vector<std::string> out;
  if (pid <= 0) return out;
  const std::string stat = first_line("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // fields are counted after the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream fields(stat.substr(close + 1));
  for (std::string field; fields >> field;) out.push_back(std::move(field));
  return out;
}

std::string process_start_id(int64_t pid, bool even_zombie) {
  // The boot id does not change while this process lives.
  static const std::string boot_id = first_line("/proc/sys/kernel/random/boot_id");
  const std::vector<std::string> f = proc_stat_fields(pid);
  if (f.size() < 20) return {};
  // A zombie (exited, not yet reaped by its parent) runs nothing any more.
  if (!even_zombie && (f[0] == "Z" || f[0] == "X")) return {};
  return boot_id + " " + f[19];  // field 22: the start time
}

bool owner_alive(int64_t pid, const std::string& start_id) {
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return false;
  const std::string now = process_start_id(pid);
  return !now.empty() && (start_id.empty() || now == start_id);
}

std::string engine_died_error(int64_t pid) { return "engine died (pid " + std::to_string(pid) + ")"; }

bool is_engine_died_error(const std::string& error) { return error.rfind("engine died (pid ", 0) == 0; }

bool engine_died(reg::Store& store, const reg::RunRow& run) {
  if (run.status == reg::RunStatus::Running) return run.owner_pid > 0 && !owner_alive(run.owner_pid, run.owner_start);
  if (run.status != reg::RunStatus::Failed) return false;
  std::optional<reg::EventRow> last = store.last_event(run.id);
  return last && last->kind == "run_recovered";
}

void fail_running_attempts(reg::Store& store, const std::string& home, std::optional<reg::ArtifactStore>& cas,
                           const std::string& run_id, const std::string& node, const std::string& why, int64_t at,
                           std::vector<reg::Write>& writes) {
  for (const reg::AttemptRow& a : store.attempts(run_id, node)) {
    if (a.status != reg::AttemptStatus::Running) continue;
    reg::FinishAttempt f{.run_id = run_id, .node = node, .number = a.number,
                         .status = reg::AttemptStatus::Failed, .at = at, .error = why};
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
                                            size ? static_cast<int64_t>(*size) : 0, at});
          f.log_digest = d->str();
        }
      }
    }
    writes.push_back(f);
  }
}

std::vector<std::string> recover_dead_runs(reg::Store& store, const std::string& home) {
  std::vector<std::string> recovered;
  for (const reg::RunRow& run : store.runs_in_status(reg::RunStatus::Running)) {
    if (run.owner_pid <= 0 || owner_alive(run.owner_pid, run.owner_start)) continue;
    const std::string why = engine_died_error(run.owner_pid);
    const int64_t now = reg::now_ms();
    // Applies only while the dead process still owns the run: one that
    // `sluice resume` took over since it was read is not failed.
    std::vector<reg::Write> writes{reg::ExpectOwner{run.id, run.owner_pid, run.owner_start}};
    std::optional<reg::ArtifactStore> cas;
    for (const reg::StepRow& step : store.steps(run.id)) {
      if (reg::is_final(step.status)) continue;
      fail_running_attempts(store, home, cas, run.id, step.node, why, now, writes);
      writes.push_back(reg::SetStepStatus{.run_id = run.id, .node = step.node, .status = reg::StepStatus::Failed,
                                          .at = now, .error = why});
    }
    writes.push_back(reg::SetRunStatus{run.id, reg::RunStatus::Failed, now, why});
    writes.push_back(reg::AddEvent{.run_id = run.id, .at = now, .kind = "run_recovered", .message = why});
    try {
      store.apply(writes);
    } catch (const reg::StoreError&) {
      if (auto now_run = store.run(run.id); now_run && now_run->owner_pid != run.owner_pid) continue;  // taken over
      throw;
    }
    recovered.push_back(run.id);
  }
  return recovered;
}

}  // namespace sluice::engine
