#include "engine/runner_posix.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
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

// The child dup2s onto 0..2; an fd already sitting there (the parent runs
// with a closed stdin/stdout) would be clobbered first.
int lift_above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return lifted;
}

// What the child of spawn() needs, all prepared by the parent. The child
// runs on the runner's own stack inside the parent's memory
// (CLONE_VM|CLONE_VFORK: the parent is suspended until it execs or exits), so
// it makes only async-signal-safe calls and reports a failure through `err`.
struct ChildArgs {
  enum class Stage : int { None, Setup, Chdir, Exec };
  const char* workdir = nullptr;  // nullptr: stay in the parent's
  int stdin_fd = -1, out_fd = -1;  // above 2 (lift_above_stdio)
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int max_fd = 0;                  // without close_range, close up to here
  Stage stage = Stage::None;       // set by the child when a stage fails
  int err = 0;                     // ... with its errno
};

// What posix_spawn does with POSIX_SPAWN_SETPGROUP, SETSIGMASK (empty),
// SETSIGDEF (every signal) and the file actions stdin, stdout+stderr,
// closefrom(3) and chdir; see docs/running.md, "Processes".
int child_main(void* raw) {
  auto* a = static_cast<ChildArgs*>(raw);
  // Every signal at its default before any is unblocked: a handler of the
  // parent must never run in this child, which shares the parent's memory.
  // (glibc refuses its two internal signals here; a handler of theirs is
  // reset by execve like any other.)
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  auto fail = [a](ChildArgs::Stage stage) {
    a->err = errno;
    a->stage = stage;
    ::_exit(127);
  };
  if (::setpgid(0, 0) != 0) fail(ChildArgs::Stage::Setup);
  if (a->workdir && ::chdir(a->workdir) != 0) fail(ChildArgs::Stage::Chdir);
  if (::dup2(a->stdin_fd, 0) < 0 || ::dup2(a->out_fd, 1) < 0 || ::dup2(a->out_fd, 2) < 0)
    fail(ChildArgs::Stage::Setup);
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {  // fds leaked by other code stay here
    for (int fd = 3; fd < a->max_fd; ++fd) ::close(fd);  // kernel < 5.9
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve("/bin/sh", a->argv, a->envp);
  fail(ChildArgs::Stage::Exec);
  return 127;
}

constexpr std::size_t kChildStack = 64 * 1024;  // the child's frames are small; one guard page below

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
    // Every child's stdin, dup2ed rather than opened per spawn.
    devnull_fd_ = lift_above_stdio(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (devnull_fd_ < 0) {
      int err = errno;
      ::close(wake_fd_);
      throw std::runtime_error("cannot open /dev/null: " + errno_text(err));
    }
    const long page = ::sysconf(_SC_PAGESIZE);
    stack_size_ = kChildStack + static_cast<std::size_t>(page);
    void* stack = ::mmap(nullptr, stack_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
      int err = errno;
      ::close(devnull_fd_);
      ::close(wake_fd_);
      throw std::runtime_error("cannot map the spawn stack: " + errno_text(err));
    }
    ::mprotect(stack, static_cast<std::size_t>(page), PROT_NONE);  // a guard page below it
    stack_ = static_cast<char*>(stack);
    const long open_max = ::sysconf(_SC_OPEN_MAX);
    max_fd_ = open_max > 0 && open_max < (1 << 20) ? static_cast<int>(open_max) : (1 << 20);
  }

  ~PosixRunner() override {
    done_.clear();
    cancel_all();
    while (!procs_.empty()) {
      Id id;
      ProcessResult result;
      wait(id, result, std::chrono::seconds(1));
    }
    ::munmap(stack_, stack_size_);
    ::close(devnull_fd_);
    ::close(wake_fd_);
  }

  PosixRunner(const PosixRunner&) = delete;  // owns fds and the spawn stack
  PosixRunner& operator=(const PosixRunner&) = delete;

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
  pid_t spawn(ChildArgs& args, int& pidfd);
  void begin_stop(Proc& p, Stop why, Clock::time_point now);
  void fire_deadlines(Clock::time_point now);
  Clock::time_point next_deadline() const;
  void pump(Proc& p, int max_reads);
  void deliver(Proc& p, const char* data, std::size_t size);
  void finish(std::size_t index);
  bool pop(Id& id, ProcessResult& result);

  bool use_pidfd_;
  int wake_fd_ = -1;
  int devnull_fd_ = -1;
  char* stack_ = nullptr;  // the child's stack, reused by every spawn (top = stack_ + stack_size_)
  std::size_t stack_size_ = 0;
  int max_fd_ = 0;
  bool clone_pidfd_ = true;  // CLONE_PIDFD works (Linux >= 5.2)
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

  std::vector<char*> envp;
  envp.reserve(spec.env.size() + 1);
  for (const auto& kv : spec.env) envp.push_back(const_cast<char*>(kv.c_str()));
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>("sh"), const_cast<char*>("-c"),
                  const_cast<char*>(spec.command.c_str()), nullptr};

  ChildArgs args;
  args.workdir = spec.workdir.empty() ? nullptr : spec.workdir.c_str();
  args.stdin_fd = devnull_fd_;
  args.out_fd = child_out;
  args.argv = argv;
  args.envp = envp.data();
  args.max_fd = max_fd_;
  int pidfd = -1;
  const pid_t pid = spawn(args, pidfd);
  const int spawn_errno = errno;
  ::close(child_out);  // the child has it; EOF on out_fd once the group is gone

  if (pid < 0 || args.stage != ChildArgs::Stage::None) {
    close_fd(out_fd);
    if (pid < 0)
      return fail(id, started, "cannot start /bin/sh in '" + spec.workdir + "': " + errno_text(spawn_errno));
    close_fd(pidfd);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (args.stage == ChildArgs::Stage::Chdir)
      return fail(id, started, "cannot use workdir '" + spec.workdir + "': " + errno_text(args.err));
    return fail(id, started, "cannot start /bin/sh in '" + spec.workdir + "': " + errno_text(args.err));
  }

  Proc p;
  p.id = id;
  p.pid = pid;
  p.pidfd = pidfd;
  if (use_pidfd_ && p.pidfd < 0) {
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

// Starts the child like vfork() (no copy of the page tables, and unlike
// posix_spawn no stack mapped and unmapped per spawn), with every signal
// blocked in the parent while the child shares its memory. Returns the pid
// (the child has exec'd /bin/sh, or failed at args.stage), or -1 with errno.
// `pidfd` comes with it (CLONE_PIDFD) when pidfds are used, else stays -1.
pid_t PosixRunner::spawn(ChildArgs& args, int& pidfd) {
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const int saved_errno = errno;
  const int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
  pid_t pid = -1;
  if (use_pidfd_ && clone_pidfd_) {
    pid = ::clone(child_main, stack_ + stack_size_, flags | CLONE_PIDFD, &args, &pidfd);
    if (pid < 0 && errno == EINVAL) clone_pidfd_ = false;  // kernel < 5.2: pidfd_open is missing too
  }
  if (pid < 0 && (!use_pidfd_ || !clone_pidfd_)) {
    pidfd = -1;
    pid = ::clone(child_main, stack_ + stack_size_, flags, &args);
  }
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = pid < 0 ? clone_errno : saved_errno;  // the child wrote this thread's errno
  return pid;
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
