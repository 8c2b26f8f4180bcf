#include "engine/worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>
#include <vector>

#include "engine/native_plugin.h"
#include "engine/plugin_protocol.h"

extern char** environ;

namespace sluice::engine {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr auto kNever = Clock::time_point::max();
constexpr std::chrono::milliseconds kCancelPoll{50};  // how often hooks.cancelled() is asked
constexpr size_t kMaxLine = 64 * 1024;

std::mutex g_path_mu;
std::string g_worker_path;

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// posix_spawn's dup2 actions target fds 0..3; a source already sitting there
// would be clobbered (or keep its close-on-exec flag), so move it above.
int lift(int fd) {
  if (fd < 0 || fd > wire::kWorkerFd) return fd;
  int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, wire::kWorkerFd + 1);
  ::close(fd);
  return lifted;
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Cuts the worker's output into lines for hooks.on_output.
struct LineSplitter {
  std::string partial;
  void feed(const char* data, size_t n, const WorkerHooks& hooks) {
    for (size_t i = 0; i < n; ++i) {
      if (data[i] == '\n') {
        flush(hooks);
      } else {
        partial += data[i];
        if (partial.size() >= kMaxLine) flush(hooks);
      }
    }
  }
  void flush(const WorkerHooks& hooks) {
    if (hooks.on_output) hooks.on_output(partial);
    partial.clear();
  }
};

class Worker {
 public:
  Worker(const WorkerHooks& hooks, const WorkerLimits& limits) : hooks_(hooks), limits_(limits) {}
  WorkerOutcome run(const json& request);

 private:
  bool spawn(WorkerOutcome& out);
  void begin_stop(WorkerEnd why, Clock::time_point now);
  void read_socket();
  void read_output();
  bool exited();

  const WorkerHooks& hooks_;
  const WorkerLimits& limits_;
  pid_t pid_ = -1;  // also the process group id
  Fd sock_, out_, pidfd_;
  wire::FrameReader reader_;
  LineSplitter lines_;
  std::optional<json> reply_;
  bool broken_ = false;
  WorkerEnd stop_ = WorkerEnd::Answered;  // Answered = not stopping
  Clock::time_point kill_at_ = kNever;
};

bool Worker::spawn(WorkerOutcome& out) {
  int sv[2], pipe_fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    out.error = std::string("cannot create the plugin worker's socket: ") + std::strerror(errno);
    return false;
  }
  sock_.fd = lift(sv[0]);
  Fd child_sock(lift(sv[1]));
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    out.error = std::string("cannot create the plugin worker's output pipe: ") + std::strerror(errno);
    return false;
  }
  out_.fd = lift(pipe_fds[0]);
  Fd child_out(lift(pipe_fds[1]));

  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  ::posix_spawnattr_setpgroup(&attr, 0);
  sigset_t set;
  sigemptyset(&set);
  ::posix_spawnattr_setsigmask(&attr, &set);
  sigfillset(&set);
  ::posix_spawnattr_setsigdefault(&attr, &set);

  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&fa, child_out.fd, 1);
  ::posix_spawn_file_actions_adddup2(&fa, child_out.fd, 2);
  ::posix_spawn_file_actions_adddup2(&fa, child_sock.fd, wire::kWorkerFd);
  ::posix_spawn_file_actions_addclosefrom_np(&fa, wire::kWorkerFd + 1);

  const std::string exe = plugin_worker_path();
  char* argv[] = {const_cast<char*>("sluice"), const_cast<char*>(wire::kWorkerCommand), nullptr};
  int rc = ::posix_spawn(&pid_, exe.c_str(), &fa, &attr, argv, environ);
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    pid_ = -1;
    out.error = "cannot start the plugin worker " + exe + ": " + std::strerror(rc);
    return false;
  }
  pidfd_.fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));  // -1 on kernels < 5.3: polled instead
  return true;
}

void Worker::begin_stop(WorkerEnd why, Clock::time_point now) {
  stop_ = why;
  wire::send(sock_.fd, {{"t", "cancel"}});  // a cooperative plugin returns promptly
  kill_at_ = limits_.grace.count() > 0 ? now + limits_.grace : now;
}

void Worker::read_socket() {
  for (;;) {
    json m;
    while (reader_.next(m)) {
      const std::string t = m.value("t", "");
      if (t == "log" || t == "metric" || t == "value") {
        if (hooks_.on_callback) hooks_.on_callback(m);
      } else {
        reply_ = std::move(m);
      }
    }
    if (reader_.broken()) {
      broken_ = true;
      sock_.reset();
      return;
    }
    auto r = reader_.fill(sock_.fd);
    if (r == wire::FrameReader::Fill::WouldBlock) return;
    if (r == wire::FrameReader::Fill::Closed) {
      sock_.reset();
      return;
    }
  }
}

void Worker::read_output() {
  char buf[16 * 1024];
  for (int i = 0; i < 64; ++i) {  // bounded: a chatty plugin cannot starve the socket
    ssize_t n = ::read(out_.fd, buf, sizeof buf);
    if (n > 0) {
      lines_.feed(buf, static_cast<size_t>(n), hooks_);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    out_.reset();  // EOF
    return;
  }
}

bool Worker::exited() {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid_;
}

WorkerOutcome Worker::run(const json& request) {
  WorkerOutcome out;
  if (!spawn(out)) return out;
  // A worker that dies before reading shows below, by its exit status.
  (void)wire::send(sock_.fd, request);
  set_nonblocking(sock_.fd);
  set_nonblocking(out_.fd);

  bool done = false;
  while (!done) {
    const auto now = Clock::now();
    if (stop_ == WorkerEnd::Answered) {
      if (now >= limits_.deadline) begin_stop(WorkerEnd::TimedOut, now);
      else if (hooks_.cancelled && hooks_.cancelled()) begin_stop(WorkerEnd::Cancelled, now);
    }
    if (now >= kill_at_) {
      ::kill(-pid_, SIGKILL);
      kill_at_ = kNever;
    }

    std::vector<pollfd> fds;
    if (sock_.fd >= 0) fds.push_back({sock_.fd, POLLIN, 0});
    if (out_.fd >= 0) fds.push_back({out_.fd, POLLIN, 0});
    if (pidfd_.fd >= 0) fds.push_back({pidfd_.fd, POLLIN, 0});
    auto until = std::min({now + kCancelPoll, kill_at_, stop_ == WorkerEnd::Answered ? limits_.deadline : kNever});
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(std::max(until - now, Clock::duration(0)));
    int timeout_ms = static_cast<int>(std::min<int64_t>(wait.count(), INT_MAX));
    if (pidfd_.fd < 0) timeout_ms = std::min(timeout_ms, 10);
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) break;

    for (const auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == sock_.fd) read_socket();
      else if (p.fd == out_.fd) read_output();
      else if (p.fd == pidfd_.fd) done = true;
    }
    if (pidfd_.fd < 0 && exited()) done = true;
  }

  // The leader has exited but is not reaped, so its group id cannot be
  // reused yet: whatever it left running goes now.
  ::kill(-pid_, SIGKILL);
  if (sock_.fd >= 0) read_socket();  // what it sent before it died
  if (out_.fd >= 0) read_output();
  if (!lines_.partial.empty()) lines_.flush(hooks_);

  int status = 0;
  rusage usage{};
  pid_t r;
  do {
    r = ::wait4(pid_, &status, 0, &usage);
  } while (r < 0 && errno == EINTR);
  out.peak_rss = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
  out.reply = std::move(reply_);
  if (r == pid_ && WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  if (r == pid_ && WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);

  if (stop_ != WorkerEnd::Answered) out.end = stop_;
  else if (broken_) out.end = WorkerEnd::Broken;
  else if (out.signal) out.end = WorkerEnd::Crashed;
  else if (out.reply && out.exit_code == 0) out.end = WorkerEnd::Answered;
  else out.end = WorkerEnd::Exited;
  return out;
}

}  // namespace

void set_plugin_worker_path(std::string path) {
  std::lock_guard lock(g_path_mu);
  g_worker_path = std::move(path);
}

std::string plugin_worker_path() {
  std::lock_guard lock(g_path_mu);
  return g_worker_path.empty() ? "/proc/self/exe" : g_worker_path;
}

WorkerOutcome run_worker(const json& request, const WorkerHooks& hooks, const WorkerLimits& limits) {
  Worker w(hooks, limits);
  return w.run(request);
}

std::string signal_name(int sig) {
  const char* name = ::sigabbrev_np(sig);
  return name ? std::string("SIG") + name : "signal " + std::to_string(sig);
}

}  // namespace sluice::engine
