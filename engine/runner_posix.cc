#include "engine/runner_posix.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <utility>

#include "engine/lazy_log.h"

namespace sluice::engine {
namespace {

using Clock = std::chrono::steady_clock;
using Outcome = ProcessResult::Outcome;

constexpr auto kNever = Clock::time_point::max();
constexpr std::size_t kMaxLine = 64 * 1024;  // a longer line is delivered in pieces
constexpr int kFallbackPollMs = 10;          // no pidfd: how often waitid is asked

std::string errno_text(int err) { return std::strerror(err); }

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// posix_spawn file actions dup2 onto 0..2; an fd already sitting there (the
// parent runs with a closed stdin/stdout) would be clobbered first.
int lift_above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return lifted;
}

enum class Stop { None, Timeout, Cancel };

struct Proc {
  Runner::Id id = 0;
  pid_t pid = -1;       // also the process group id
  int pidfd = -1;       // -1: no pidfd, exit found by polling waitid
  int out_fd = -1;      // read end of the output pipe (stdout and stderr)
  LazyLog log;          // the attempt's log, created at the first byte
  bool stream = false;  // hand lines to on_line too
  std::string partial;  // stream: output after the last '\n'
  Clock::time_point deadline = kNever;  // timeout
  Clock::time_point kill_at = kNever;   // SIGKILL escalation, once stopping
  std::chrono::milliseconds grace{0};
  Stop stop = Stop::None;
  bool exited = false;  // scratch within one wait()
  std::chrono::system_clock::time_point started;
};

class PosixRunner final : public Runner {
 public:
  explicit PosixRunner(PosixRunnerOptions options) : use_pidfd_(options.use_pidfd) {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) throw std::runtime_error("eventfd: " + errno_text(errno));
    // The same attributes serve every spawn: own process group, nothing
    // blocked, every signal at its default (a parent ignoring SIGPIPE or
    // handling SIGINT must not pass that on).
    ::posix_spawnattr_init(&attr_);
    ::posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                           POSIX_SPAWN_SETSIGDEF);
    ::posix_spawnattr_setpgroup(&attr_, 0);
    sigset_t set;
    sigemptyset(&set);
    ::posix_spawnattr_setsigmask(&attr_, &set);
    sigfillset(&set);
    ::posix_spawnattr_setsigdefault(&attr_, &set);
  }

  ~PosixRunner() override {
    done_.clear();
    cancel_all();
    while (!procs_.empty()) {
      Id id;
      ProcessResult result;
      wait(id, result, std::chrono::seconds(1));
    }
    ::posix_spawnattr_destroy(&attr_);
    ::close(wake_fd_);
  }

  Id start(const ProcessSpec& spec) override;
  int process_group(Id id) const override {
    for (auto it = procs_.rbegin(); it != procs_.rend(); ++it)  // the newest is last
      if (it->id == id) return it->pid > 0 ? it->pid : 0;
    return 0;
  }
  bool wait(Id& id, ProcessResult& result, std::chrono::milliseconds max_wait) override;
  void cancel(Id id) override;
  void cancel_all() override;
  std::size_t running() const override { return procs_.size() + done_.size(); }
  void wake() override {
    int saved = errno;
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
    errno = saved;
  }

 private:
  Id fail(Id id, std::chrono::system_clock::time_point started, std::string error);
  void begin_stop(Proc& p, Stop why, Clock::time_point now);
  void fire_deadlines(Clock::time_point now);
  Clock::time_point next_deadline() const;
  void pump(Proc& p, int max_reads);
  void deliver(Proc& p, const char* data, std::size_t size);
  void finish(std::size_t index);
  bool pop(Id& id, ProcessResult& result);

  bool use_pidfd_;
  int wake_fd_ = -1;
  posix_spawnattr_t attr_;
  Id next_id_ = 1;
  std::vector<Proc> procs_;                            // running, in no order
  std::deque<std::pair<Id, ProcessResult>> done_;     // finished, not yet returned
  std::vector<pollfd> pollfds_;                        // reused by every wait()
  std::array<char, 64 * 1024> buf_;
};

Runner::Id PosixRunner::fail(Id id, std::chrono::system_clock::time_point started,
                             std::string error) {
  ProcessResult r;
  r.outcome = Outcome::SpawnFailed;
  r.error = std::move(error);
  r.started = started;
  r.finished = std::chrono::system_clock::now();
  done_.emplace_back(id, std::move(r));
  return id;
}

Runner::Id PosixRunner::start(const ProcessSpec& spec) {
  const Id id = next_id_++;
  const auto started = std::chrono::system_clock::now();

  // The child's stdout and stderr are a pipe the runner reads (wait()), so
  // the log file is created only when output arrives (engine/lazy_log.h).
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return fail(id, started, "cannot create output pipe: " + errno_text(errno));
  int out_fd = lift_above_stdio(fds[0]);
  int child_out = lift_above_stdio(fds[1]);
  if (out_fd < 0 || child_out < 0) {
    int err = errno;
    close_fd(out_fd);
    close_fd(child_out);
    return fail(id, started, "cannot create output pipe: " + errno_text(err));
  }
  ::fcntl(out_fd, F_SETFL, O_NONBLOCK);  // only the parent's end

  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  if (!spec.workdir.empty()) ::posix_spawn_file_actions_addchdir_np(&fa, spec.workdir.c_str());
  ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&fa, child_out, 1);
  ::posix_spawn_file_actions_adddup2(&fa, child_out, 2);
  ::posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // fds leaked by other code stay here

  std::vector<char*> envp;
  envp.reserve(spec.env.size() + 1);
  for (const auto& kv : spec.env) envp.push_back(const_cast<char*>(kv.c_str()));
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>("sh"), const_cast<char*>("-c"),
                  const_cast<char*>(spec.command.c_str()), nullptr};

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, "/bin/sh", &fa, &attr_, argv, envp.data());
  ::posix_spawn_file_actions_destroy(&fa);
  ::close(child_out);  // the child has it; EOF on out_fd once the group is gone

  if (rc != 0) {
    close_fd(out_fd);
    // glibc reports the child's errno but not which action failed; the
    // workdir is the usual culprit, so look at it before blaming /bin/sh.
    struct stat st;
    if (!spec.workdir.empty() && ::stat(spec.workdir.c_str(), &st) != 0)
      return fail(id, started, "cannot use workdir '" + spec.workdir + "': " + errno_text(errno));
    if (!spec.workdir.empty() && !S_ISDIR(st.st_mode))
      return fail(id, started, "cannot use workdir '" + spec.workdir + "': Not a directory");
    return fail(id, started,
                "cannot start /bin/sh in '" + spec.workdir + "': " + errno_text(rc));
  }

  Proc p;
  p.id = id;
  p.pid = pid;
  if (use_pidfd_) {
    p.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (p.pidfd < 0 && errno == ENOSYS) use_pidfd_ = false;  // kernel < 5.3
  }
  p.out_fd = out_fd;
  p.log = LazyLog(spec.log_path);
  p.stream = spec.stream;
  p.started = started;
  p.grace = spec.kill_grace;
  if (spec.timeout.count() > 0) p.deadline = Clock::now() + spec.timeout;
  procs_.push_back(std::move(p));
  return id;
}

void PosixRunner::begin_stop(Proc& p, Stop why, Clock::time_point now) {
  p.stop = why;
  ::kill(-p.pid, SIGTERM);
  ::kill(-p.pid, SIGCONT);  // a stopped process acts on SIGTERM only once continued
  if (p.grace.count() <= 0) {
    ::kill(-p.pid, SIGKILL);
  } else {
    p.kill_at = now + p.grace;
  }
}

void PosixRunner::cancel(Id id) {
  for (auto& p : procs_) {
    if (p.id == id) {
      if (p.stop == Stop::None) begin_stop(p, Stop::Cancel, Clock::now());
      return;
    }
  }
}

void PosixRunner::cancel_all() {
  const auto now = Clock::now();
  for (auto& p : procs_)
    if (p.stop == Stop::None) begin_stop(p, Stop::Cancel, now);
}

void PosixRunner::fire_deadlines(Clock::time_point now) {
  for (auto& p : procs_) {
    if (p.stop == Stop::None && now >= p.deadline) begin_stop(p, Stop::Timeout, now);
    if (now >= p.kill_at) {
      ::kill(-p.pid, SIGKILL);
      p.kill_at = kNever;
    }
  }
}

Clock::time_point PosixRunner::next_deadline() const {
  auto next = kNever;
  for (const auto& p : procs_) {
    if (p.stop == Stop::None) next = std::min(next, p.deadline);
    next = std::min(next, p.kill_at);
  }
  return next;
}

// Writes output to the log and cuts it into lines for on_line.
void PosixRunner::deliver(Proc& p, const char* data, std::size_t size) {
  p.log.write(std::string_view(data, size));
  if (!p.stream || !on_line) return;
  const char* end = data + size;
  while (data < end) {
    const char* nl = static_cast<const char*>(std::memchr(data, '\n', end - data));
    if (!nl) {
      p.partial.append(data, end);
      if (p.partial.size() >= kMaxLine) {
        on_line(p.id, p.partial);
        p.partial.clear();
      }
      return;
    }
    if (p.partial.empty()) {
      on_line(p.id, std::string_view(data, nl - data));
    } else {
      p.partial.append(data, nl);
      on_line(p.id, p.partial);
      p.partial.clear();
    }
    data = nl + 1;
  }
}

// Reads what the pipe holds (at most max_reads chunks, so a chatty process
// cannot starve the others); closes it at EOF.
void PosixRunner::pump(Proc& p, int max_reads) {
  for (int i = 0; i < max_reads && p.out_fd >= 0; ++i) {
    ssize_t n = ::read(p.out_fd, buf_.data(), buf_.size());
    if (n > 0) {
      deliver(p, buf_.data(), static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n < 0 && errno == EAGAIN) return;
      close_fd(p.out_fd);  // EOF or a broken pipe
    }
  }
}

// The leader has exited but is not reaped yet, so its pid (= the group id)
// cannot be reused: killing the group now cannot hit a stranger.
void PosixRunner::finish(std::size_t index) {
  Proc& p = procs_[index];
  ::kill(-p.pid, SIGKILL);  // background children do not outlive their step
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(p.pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  const int wait_errno = errno;

  if (p.out_fd >= 0) pump(p, 256);  // what the group wrote before it died; bounded
  if (!p.partial.empty() && on_line) on_line(p.id, p.partial);
  close_fd(p.out_fd);
  p.log.close();  // the log is complete before the result is reported
  close_fd(p.pidfd);

  ProcessResult res;
  res.pid = p.pid;
  res.started = p.started;
  res.finished = std::chrono::system_clock::now();
  res.error = p.log.error();
  if (r == p.pid && WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
  if (r == p.pid && WIFSIGNALED(status)) res.signal = WTERMSIG(status);
  if (p.stop == Stop::Timeout) {
    res.outcome = Outcome::TimedOut;
  } else if (p.stop == Stop::Cancel) {
    res.outcome = Outcome::Cancelled;
  } else if (r != p.pid) {  // someone else reaped it (waitpid(-1) elsewhere)
    res.outcome = Outcome::Exited;  // exit_code stays -1: the step fails
    res.error = "process " + std::to_string(p.pid) + " was reaped by someone else: " +
                errno_text(wait_errno);
  } else {
    res.outcome = res.signal ? Outcome::Signaled : Outcome::Exited;
  }
  done_.emplace_back(p.id, std::move(res));

  if (index + 1 != procs_.size()) procs_[index] = std::move(procs_.back());
  procs_.pop_back();
}

bool PosixRunner::pop(Id& id, ProcessResult& result) {
  id = done_.front().first;
  result = std::move(done_.front().second);
  done_.pop_front();
  return true;
}

bool PosixRunner::wait(Id& id, ProcessResult& result, std::chrono::milliseconds max_wait) {
  if (!done_.empty()) return pop(id, result);
  max_wait = std::clamp(max_wait, std::chrono::milliseconds(0), std::chrono::milliseconds(INT_MAX));
  const auto end = Clock::now() + max_wait;

  for (;;) {
    auto now = Clock::now();
    fire_deadlines(now);

    bool polling = false;  // some process has no pidfd
    pollfds_.clear();
    pollfds_.push_back({wake_fd_, POLLIN, 0});
    for (const auto& p : procs_) {
      if (p.pidfd >= 0) pollfds_.push_back({p.pidfd, POLLIN, 0});
      else polling = true;
      if (p.out_fd >= 0) pollfds_.push_back({p.out_fd, POLLIN, 0});
    }

    auto until = std::min(end, next_deadline());
    auto timeout = std::chrono::ceil<std::chrono::milliseconds>(std::max(until - now, Clock::duration(0)));
    int timeout_ms = static_cast<int>(std::min<std::int64_t>(timeout.count(), INT_MAX));
    if (polling) timeout_ms = std::min(timeout_ms, kFallbackPollMs);

    int n = ::poll(pollfds_.data(), pollfds_.size(), timeout_ms);
    if (n < 0 && errno != EINTR) throw std::runtime_error("poll: " + errno_text(errno));

    bool woken = false;
    if (n > 0 && pollfds_[0].revents) {
      std::uint64_t count;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof count);
      woken = true;
    }
    if (n > 0 || polling) {
      bool any_exited = false;
      std::size_t k = 1;
      for (auto& p : procs_) {
        if (p.pidfd >= 0) {
          p.exited = pollfds_[k++].revents != 0;
        } else {
          siginfo_t info{};
          p.exited = ::waitid(P_PID, static_cast<id_t>(p.pid), &info,
                              WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == p.pid;
        }
        if (p.out_fd >= 0 && pollfds_[k++].revents) pump(p, 16);
        any_exited |= p.exited;
      }
      if (any_exited) {
        for (std::size_t i = procs_.size(); i-- > 0;)
          if (procs_[i].exited) finish(i);
      }
    }

    if (!done_.empty()) return pop(id, result);
    if (woken || Clock::now() >= end) return false;
  }
}

}  // namespace

std::unique_ptr<Runner> make_posix_runner(PosixRunnerOptions options) {
  return std::make_unique<PosixRunner>(options);
}

}  // namespace sluice::engine
