#include "engine/serve_queue.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/recovery.h"
#include "registry/store.h"

extern char** environ;

namespace sluice::engine {

namespace fs = std::filesystem;
namespace reg = sluice::registry;

namespace {

// A run that never got a process is retried this many times.
constexpr int kMaxSpawnFailures = 3;
// A run whose engine died is resumed (`sluice resume`) at most this many
// times (run_resumed events in the store, or resume processes this server
// started), then ends failed.
constexpr int64_t kMaxResumes = 3;

std::string wait_status_text(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status));
  return "ended";
}

// The last few lines of a file, for an error message.
std::string tail(const std::string& path, size_t max_bytes = 600) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

RunQueue::RunQueue(QueueOptions options, BatchWriter& writer, StorePool& pool)
    : opt_(std::move(options)), writer_(writer), pool_(pool) {}

RunQueue::~RunQueue() { stop(); }

void RunQueue::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    adopt();
    active_.store(children_.size());
  }
  thread_ = std::thread([this] { loop(); });
}

void RunQueue::notify() {
  // With every slot taken a look would start nothing; a slot frees when a
  // run ends, which the next round (at most 100 ms away) sees.
  if (active_.load() >= opt_.max_runs) return;
  {
    std::lock_guard<std::mutex> lock(signal_mu_);
    poke_ = true;
  }
  wake_.notify_one();
}

void RunQueue::stop() {
  {
    std::lock_guard<std::mutex> lock(signal_mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

size_t RunQueue::active() const { return active_.load(); }

size_t RunQueue::queued() const { return queued_.load(); }

uint64_t RunQueue::started_total() const { return started_total_.load(); }

void RunQueue::loop() {
  for (;;) {
    {
      // Children are reaped by polling: a SIGCHLD handler would have to share
      // the process with httplib's threads and the steps' runner.
      std::unique_lock<std::mutex> signal(signal_mu_);
      wake_.wait_for(signal, std::chrono::milliseconds(100), [&] { return stopping_.load() || poke_; });
      poke_ = false;
      if (stopping_) break;
    }
    std::lock_guard<std::mutex> lock(mu_);
    try {
      reap();
      active_.store(children_.size());
      start_ready();
      active_.store(children_.size());
    } catch (const std::exception& e) {
      // The store is busy or broken: try again at the next round.
      std::fprintf(stderr, "sluice serve: warning: run queue: %s\n", e.what());
    }
  }
}

std::optional<std::string> RunQueue::live_claimer(reg::Store& store, const reg::QueueRow& row) {
  auto run = store.run(row.run_id);
  if (!run || !row.pid || run->owner_pid != *row.pid || !owner_alive(run->owner_pid, run->owner_start))
    return std::nullopt;
  return run->owner_start;
}

void RunQueue::adopt() {
  auto store = pool_.lease();
  for (const reg::QueueRow& row : store->run_queue()) {
    if (!row.pid) continue;
    const int pid = static_cast<int>(*row.pid);
    if (auto start = live_claimer(*store, row)) {
      children_[pid] = Child{row.run_id, true, *start};
      std::fprintf(stderr, "sluice serve: adopted run %s (pid %d)\n", row.run_id.c_str(), pid);
    } else {
      ended(pid, row.run_id, "is gone");
    }
  }
}

void RunQueue::reap() {
  for (auto it = children_.begin(); it != children_.end();) {
    const int pid = it->first;
    const Child c = it->second;
    std::string how;
    if (c.adopted) {
      if (owner_alive(pid, c.start)) {
        ++it;
        continue;
      }
      how = "is gone";
    } else {
      int status = 0;
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) {
        ++it;
        continue;
      }
      how = r < 0 ? std::string("is gone") : wait_status_text(status);
    }
    it = children_.erase(it);
    ended(pid, c.run_id, how);
  }
}

void RunQueue::ended(int pid, const std::string& run_id, const std::string& how) {
  auto store = pool_.lease();
  auto row = store->queued_run(run_id);
  if (!row) return;  // cancelled before it started, or already handled
  auto run = store->run(run_id);
  if (row->pid && *row->pid != pid) return;  // another process claimed it; not ours to judge
  if (!row->pid && run && run->status == reg::RunStatus::Queued) {
    // The process died before claiming the run: nothing ran. Retry a few
    // times, then give up with what it printed.
    if (++spawn_failures_[run_id] < kMaxSpawnFailures) return;
    spawn_failures_.erase(run_id);
    const std::string log = opt_.home + "/runs/" + run_id + "/sluice-run.log";
    writer_.apply({reg::SetRunStatus{.run_id = run_id,
                                     .status = reg::RunStatus::Failed,
                                     .at = reg::now_ms(),
                                     .error = "the run could not start: its process (pid " + std::to_string(pid) +
                                              ") " + how + ": " + tail(log)},
                   reg::DequeueRun{.run_id = run_id}});
    return;
  }
  spawn_failures_.erase(run_id);
  std::vector<reg::Write> writes;
  const std::string died = "engine died: its process (pid " + std::to_string(pid) + ") " + how + " before the run finished";
  if (run && engine_died(*store, *run)) {
    // Resumed in the same run (`sluice resume`), a bounded number of times.
    const int64_t resumes = std::max<int64_t>(store->count_events(run_id, "run_resumed"), resume_spawns_[run_id]);
    std::string error;
    if (resumes < kMaxResumes) {
      if (spawn(run_id, Spawn::Resume, error)) {
        ++resume_spawns_[run_id];
        std::fprintf(stderr, "sluice serve: resuming run %s: %s\n", run_id.c_str(), died.c_str());
        return;
      }
      error = died + "; it could not be resumed: " + error;
    } else {
      error = died + "; not resumed again after " + std::to_string(resumes) + " resumes";
    }
    // Failed like any run whose engine died (its attempts and steps closed),
    // with the reason; `sluice resume` by hand can still take it over.
    if (run->status == reg::RunStatus::Running) recover_dead_runs(*store, opt_.home);
    writes.push_back(reg::ExpectOwner{.run_id = run_id, .pid = run->owner_pid, .start = run->owner_start});
    writes.push_back(
        reg::SetRunStatus{.run_id = run_id, .status = reg::RunStatus::Failed, .at = reg::now_ms(), .error = error});
  } else if (run && !reg::is_final(run->status)) {
    writes.push_back(
        reg::SetRunStatus{.run_id = run_id, .status = reg::RunStatus::Failed, .at = reg::now_ms(), .error = died});
  }
  resume_spawns_.erase(run_id);
  writes.push_back(reg::DequeueRun{.run_id = run_id});
  writer_.apply(std::move(writes));
}

void RunQueue::watch_foreign_claims(reg::Store& store) {
  std::set<std::string> ours;
  for (const auto& [pid, c] : children_) ours.insert(c.run_id);
  for (const reg::QueueRow& row : store.run_queue()) {
    if (!row.pid || ours.count(row.run_id)) continue;
    // Claimed by a process this server did not start (by hand, or a spawn
    // whose claim landed after a restart's adopt()): watch it too.
    const int pid = static_cast<int>(*row.pid);
    if (auto start = live_claimer(store, row)) children_[pid] = Child{row.run_id, true, *start};
    else ended(pid, row.run_id, "is gone");
  }
}

void RunQueue::start_ready() {
  auto store = pool_.lease();
  const auto now = std::chrono::steady_clock::now();
  if (now - last_foreign_check_ > std::chrono::seconds(2)) {
    last_foreign_check_ = now;
    watch_foreign_claims(*store);
  }
  if (!stopping_ && children_.size() < opt_.max_runs) {
    std::set<std::string> ours;
    for (const auto& [pid, c] : children_) ours.insert(c.run_id);
    // Only the head of the queue: a run waiting for another (overlap =
    // queue) may hold its place while later ones start.
    for (const reg::QueueRow& row : store->unclaimed_runs(64)) {
      if (children_.size() >= opt_.max_runs) break;
      if (ours.count(row.run_id)) continue;  // spawned, not claimed yet
      if (!row.after_run.empty()) {
        auto before = store->run(row.after_run);
        if (before && !reg::is_final(before->status)) continue;
      }
      auto run = store->run(row.run_id);
      if (!run || run->status != reg::RunStatus::Queued) {
        writer_.apply({reg::DequeueRun{.run_id = row.run_id}});  // cancelled or finished elsewhere
        continue;
      }
      std::string error;
      if (!spawn(row.run_id, Spawn::Queued, error))
        writer_.apply({reg::SetRunStatus{.run_id = row.run_id, .status = reg::RunStatus::Failed, .at = reg::now_ms(),
                                         .error = "the run could not start: " + error},
                       reg::DequeueRun{.run_id = row.run_id}});
    }
  }
  queued_.store(static_cast<size_t>(store->count_unclaimed()));
}

bool RunQueue::spawn(const std::string& run_id, Spawn what, std::string& error) {
  auto store = pool_.lease();
  auto run = store->run(run_id);
  auto wf = run ? store->workflow(run->workflow_id) : std::nullopt;
  // The run starts where its workflow file is, as `sluice run FILE` there would.
  std::string cwd = wf && !wf->path.empty() ? fs::path(wf->path).parent_path().string() : opt_.home;
  std::error_code ec;
  if (!fs::is_directory(cwd, ec)) cwd = opt_.home;
  const std::string dir = opt_.home + "/runs/" + run_id;
  fs::create_directories(dir, ec);
  if (ec) {
    error = "cannot create " + dir + ": " + ec.message();
    return false;
  }
  const std::string log = dir + "/sluice-run.log";

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own session: no signal meant for the server (a terminal's ^C, a
  // process-group kill) reaches the run, which outlives the server. The
  // server's blocked signals are unblocked and its handlers reset.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  std::vector<std::string> args =
      what == Spawn::Queued
          ? std::vector<std::string>{opt_.exe, "run", "--queued", run_id, "--home", opt_.home, "--workflows", opt_.workflows_dir}
          : std::vector<std::string>{opt_.exe, "resume", run_id, "--home", opt_.home, "--workflows", opt_.workflows_dir};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, opt_.exe.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    error = "cannot start " + opt_.exe + ": " + std::strerror(rc);
    return false;
  }
  children_[pid] = Child{run_id, false, {}};
  ++started_total_;
  return true;
}

std::variant<std::string, ApiError> RunQueue::cancel(const std::string& run_id) {
  std::variant<std::string, ApiError> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out = cancel_locked(run_id);
  }
  notify();
  return out;
}

std::variant<std::string, ApiError> RunQueue::cancel_locked(const std::string& run_id) {
  auto store = pool_.lease();
  auto run = store->run(run_id);
  if (!run) return ApiError{404, "not_found", "no run '" + run_id + "'", 0};
  if (reg::is_final(run->status))
    return ApiError{409, "conflict", "run " + run_id + " already " + reg::to_string(run->status), 0};
  auto row = store->queued_run(run_id);
  if (!row)
    return ApiError{409, "conflict",
                    "run " + run_id + " was not started by this server; cancel it with 'sluice cancel' where it runs", 0};
  if (!row->pid) {
    // Not claimed yet: cancelling and dequeuing in one transaction makes a
    // process that was just spawned for it fail its claim and exit.
    writer_.apply({reg::SetRunStatus{.run_id = run_id, .status = reg::RunStatus::Cancelled, .at = reg::now_ms(),
                                     .error = "cancelled before it started"},
                   reg::DequeueRun{.run_id = run_id}});
    return std::string("cancelled");
  }
  const int pid = static_cast<int>(*row->pid);
  if (!live_claimer(*store, *row))
    return ApiError{409, "conflict", "run " + run_id + "'s process (pid " + std::to_string(pid) + ") is gone", 0};
  // `sluice run` takes SIGTERM as an interrupt: it cancels its steps and
  // records the run as cancelled.
  ::kill(pid, SIGTERM);
  return std::string("cancelling");
}

}  // namespace sluice::engine
