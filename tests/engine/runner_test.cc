// The POSIX runner against real processes in a temp dir. Every wait is bounded.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/runner_posix.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using sluice::engine::make_posix_runner;
using sluice::engine::PosixRunnerOptions;
using sluice::engine::ProcessResult;
using sluice::engine::ProcessSpec;
using sluice::engine::Runner;
using Outcome = ProcessResult::Outcome;
using Clock = std::chrono::steady_clock;

namespace {

using TempDir = sluice::test::ScratchDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ProcessSpec spec_in(const TempDir& dir, std::string command) {
  ProcessSpec s;
  s.command = std::move(command);
  s.workdir = dir.path;
  s.env = {"PATH=/usr/bin:/bin"};
  s.log_path = dir / "log";
  return s;
}

struct Done {
  Runner::Id id = 0;
  ProcessResult result;
};

// The next result, or a test failure after `limit`.
Done wait_one(Runner& runner, std::chrono::milliseconds limit = 10s) {
  Done d;
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (runner.wait(d.id, d.result, 200ms)) return d;
  }
  FAIL("no process finished within " << limit.count() << " ms");
  return d;
}

Done run_one(Runner& runner, const ProcessSpec& spec) {
  Runner::Id id = runner.start(spec);
  Done d = wait_one(runner);
  REQUIRE(d.id == id);
  return d;
}

// Polls `pred` until true or `limit` passes.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 3s) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

// /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces.
bool read_stat(const std::string& pid, char& state, long& pgrp) {
  std::string stat = slurp("/proc/" + pid + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(stat.substr(close + 1));
  long ppid = 0;
  return static_cast<bool>(rest >> state >> ppid >> pgrp);
}

// Zombies count as gone: PID 1 in some containers never reaps orphans.
bool pid_alive(long pid) {
  char state = 0;
  long pgrp = 0;
  return read_stat(std::to_string(pid), state, pgrp) && state != 'Z';
}

bool group_alive(long pgid) {
  if (::kill(static_cast<pid_t>(-pgid), 0) == -1 && errno == ESRCH) return false;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    char state = 0;
    long pgrp = 0;
    if (read_stat(name, state, pgrp) && pgrp == pgid && state != 'Z') return true;
  }
  return false;
}

long read_pid(const std::string& path) {
  long pid = 0;
  std::ifstream(path) >> pid;
  return pid;
}

long long read_ns(const std::string& path) {
  long long ns = 0;
  std::ifstream(path) >> ns;
  return ns;
}

}  // namespace

TEST_CASE("runner: exit codes are reported") {
  TempDir dir;
  auto runner = make_posix_runner();
  for (int code : {0, 1, 3, 255}) {
    Done d = run_one(*runner, spec_in(dir, "exit " + std::to_string(code)));
    CHECK(d.result.outcome == Outcome::Exited);
    CHECK(d.result.exit_code == code);
    CHECK(d.result.signal == 0);
    CHECK(d.result.pid > 0);
    CHECK(d.result.started <= d.result.finished);
  }
  CHECK(runner->running() == 0);
}

TEST_CASE("runner: a signal death is Signaled with the signal") {
  TempDir dir;
  auto runner = make_posix_runner();
  Done d = run_one(*runner, spec_in(dir, "ulimit -c 0; kill -SEGV $$"));
  CHECK(d.result.outcome == Outcome::Signaled);
  CHECK(d.result.signal == SIGSEGV);
}

TEST_CASE("runner: stdout and stderr go to the log file") {
  TempDir dir;
  auto runner = make_posix_runner();
  std::ofstream(dir / "log") << "old content that must be truncated away\n";
  Done d = run_one(*runner, spec_in(dir, "echo out; echo err >&2; cat"));  // cat: stdin is /dev/null
  CHECK(d.result.outcome == Outcome::Exited);
  CHECK(d.result.exit_code == 0);
  CHECK(slurp(dir / "log") == "out\nerr\n");
}

TEST_CASE("runner: the child sees exactly spec.env and no inherited fds") {
  TempDir dir;
  auto runner = make_posix_runner();
  ::setenv("SLUICE_RUNNER_TEST_LEAK", "leaked", 1);
  int leak_fd = ::fcntl(::open("/dev/null", O_RDONLY), F_DUPFD, 200);  // no O_CLOEXEC
  REQUIRE(leak_fd >= 200);
  auto spec = spec_in(dir, "env; test -e /proc/$$/fd/" + std::to_string(leak_fd) +
                               " && echo FD_LEAKED || echo FD_CLEAN");
  spec.env.push_back("GREETING=hello world");
  Done d = run_one(*runner, spec);
  ::close(leak_fd);
  ::unsetenv("SLUICE_RUNNER_TEST_LEAK");
  CHECK(d.result.outcome == Outcome::Exited);
  std::string log = slurp(dir / "log");
  CHECK(log.find("GREETING=hello world\n") != std::string::npos);
  CHECK(log.find("SLUICE_RUNNER_TEST_LEAK") == std::string::npos);
  CHECK(log.find("FD_CLEAN") != std::string::npos);
}

TEST_CASE("runner: signal mask and dispositions of the parent do not leak") {
  TempDir dir;
  auto runner = make_posix_runner();
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  ::pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  auto old_int = ::signal(SIGINT, SIG_IGN);
  auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
  Done d = run_one(*runner, spec_in(dir, "grep -E '^Sig(Blk|Ign)' /proc/self/status"));
  ::signal(SIGPIPE, old_pipe);
  ::signal(SIGINT, old_int);
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  CHECK(d.result.exit_code == 0);
  std::istringstream log(slurp(dir / "log"));
  std::string blk_label, ign_label;
  unsigned long long blk = ~0ULL, ign = ~0ULL;
  log >> blk_label >> std::hex >> blk >> ign_label >> ign;
  CHECK(blk_label == "SigBlk:");
  CHECK(blk == 0);
  CHECK(ign_label == "SigIgn:");
  CHECK(ign == 0);  // every signal at its default, the real-time ones too
}

TEST_CASE("runner: the workdir is the child's cwd") {
  TempDir dir;
  std::filesystem::create_directory(dir / "sub");
  auto runner = make_posix_runner();
  auto spec = spec_in(dir, "pwd; echo made > here.txt");
  spec.workdir = dir / "sub";
  Done d = run_one(*runner, spec);
  CHECK(d.result.exit_code == 0);
  CHECK(slurp(dir / "log") == dir / "sub\n");
  CHECK(slurp(dir / "sub/here.txt") == "made\n");
}

TEST_CASE("runner: a missing workdir is SpawnFailed naming it") {
  TempDir dir;
  auto runner = make_posix_runner();
  auto spec = spec_in(dir, "true");
  spec.workdir = dir / "does/not/exist";
  Runner::Id id = runner->start(spec);
  CHECK(runner->running() == 1);  // the pending failure counts until wait() returns it
  Done d = wait_one(*runner);
  CHECK(d.id == id);
  CHECK(d.result.outcome == Outcome::SpawnFailed);
  CHECK(d.result.error == "cannot use workdir '" + spec.workdir + "': No such file or directory");
  CHECK(d.result.pid == 0);
  CHECK(runner->running() == 0);

  // The runner is still usable.
  CHECK(run_one(*runner, spec_in(dir, "exit 4")).result.exit_code == 4);
}

TEST_CASE("runner: a workdir that is a file is SpawnFailed naming it, for every way of watching") {
  TempDir dir;
  for (bool use_pidfd : {true, false}) {
    DYNAMIC_SECTION("use_pidfd=" << use_pidfd) {
      auto runner = make_posix_runner(PosixRunnerOptions{use_pidfd});
      std::ofstream(dir / "plain") << "x";
      auto spec = spec_in(dir, "echo should-not-run > ran");
      spec.workdir = dir / "plain";
      Done d = run_one(*runner, spec);
      CHECK(d.result.outcome == Outcome::SpawnFailed);
      CHECK(d.result.error == "cannot use workdir '" + spec.workdir + "': Not a directory");
      CHECK(d.result.pid == 0);
      CHECK_FALSE(std::filesystem::exists(dir / "ran"));
      // The failed child was reaped, and the runner goes on.
      CHECK(runner->running() == 0);
      CHECK(run_one(*runner, spec_in(dir, "exit 6")).result.exit_code == 6);
    }
  }
}

TEST_CASE("runner: a silent process leaves no log file, a retry's log is its own") {
  TempDir dir;
  auto runner = make_posix_runner();
  for (bool stream : {false, true}) {
    DYNAMIC_SECTION("stream=" << stream) {
      runner->on_line = [](Runner::Id, std::string_view) {};
      auto spec = spec_in(dir, "echo 1 > out.txt");
      spec.stream = stream;
      spec.log_path = dir / ("silent-" + std::to_string(stream) + ".log");
      Done d = run_one(*runner, spec);
      CHECK(d.result.outcome == Outcome::Exited);
      CHECK(d.result.exit_code == 0);
      CHECK(d.result.error.empty());
      CHECK(slurp(dir / "out.txt") == "1\n");
      CHECK_FALSE(std::filesystem::exists(spec.log_path));

      // A later attempt that writes creates its own log; the earlier one is untouched.
      auto talk = spec_in(dir, "echo said; exit 3");
      talk.stream = stream;
      talk.log_path = dir / ("talk-" + std::to_string(stream) + ".log");
      std::ofstream(talk.log_path) << "an earlier attempt's log under this name is truncated\n";
      Done t = run_one(*runner, talk);
      CHECK(t.result.exit_code == 3);
      CHECK(slurp(talk.log_path) == "said\n");
      CHECK_FALSE(std::filesystem::exists(spec.log_path));
    }
  }
}

TEST_CASE("runner: the log is created at the first byte, while the process runs") {
  TempDir dir;
  auto runner = make_posix_runner();
  // The process waits for the log to exist before it goes on: the runner must
  // create it from the first output, not at the end.
  auto spec = spec_in(dir, "echo first; i=0; while [ ! -e log ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; "
                           "[ -e log ] && echo saw-log");
  Done d = run_one(*runner, spec);
  CHECK(d.result.exit_code == 0);
  CHECK(slurp(dir / "log") == "first\nsaw-log\n");
}

TEST_CASE("runner: a log that cannot be created loses the output, not the process, and says why") {
  TempDir dir;
  auto runner = make_posix_runner();
  auto spec = spec_in(dir, "true");
  spec.log_path = dir / "no/such/dir/log";
  Done silent = run_one(*runner, spec);  // nothing written: nothing to create, no error
  CHECK(silent.result.outcome == Outcome::Exited);
  CHECK(silent.result.exit_code == 0);
  CHECK(silent.result.error.empty());

  spec.command = "echo lost; echo ran > ran.txt";
  Done d = run_one(*runner, spec);
  CHECK(d.result.outcome == Outcome::Exited);
  CHECK(d.result.exit_code == 0);
  CHECK(d.result.pid > 0);
  CHECK(d.result.error == "cannot open log file '" + spec.log_path + "': No such file or directory");
  CHECK(slurp(dir / "ran.txt") == "ran\n");  // the process ran to its end
  CHECK(runner->running() == 0);
}

TEST_CASE("runner: output of a process that ended before wait() was called is all in the log") {
  TempDir dir;
  auto runner = make_posix_runner();
  auto spec = spec_in(dir, "echo shell; (echo child >&2); sh -c 'echo grandchild'; exit 5");
  Runner::Id id = runner->start(spec);
  const long pid = runner->process_group(id);
  REQUIRE(pid > 0);
  // Nobody reads the pipe until the shell is a zombie: finishing must still
  // pump what it holds into the log before the result is reported.
  REQUIRE(eventually([&] {
    char state = 0;
    long pgrp = 0;
    return read_stat(std::to_string(pid), state, pgrp) && state == 'Z';
  }));
  Done d = wait_one(*runner);
  CHECK(d.id == id);
  CHECK(d.result.exit_code == 5);
  CHECK(slurp(dir / "log") == "shell\nchild\ngrandchild\n");
}

TEST_CASE("runner: a timeout kills the whole process group") {
  TempDir dir;
  for (bool use_pidfd : {true, false}) {
    DYNAMIC_SECTION("use_pidfd=" << use_pidfd) {
      auto runner = make_posix_runner(PosixRunnerOptions{use_pidfd});
      auto spec = spec_in(dir, "echo $$ > pgid; sleep 1000 & echo $! > p1; "
                               "sleep 1000 & echo $! > p2; wait");
      spec.timeout = 300ms;
      spec.kill_grace = 200ms;
      const auto t0 = Clock::now();
      Done d = run_one(*runner, spec);
      const auto elapsed = Clock::now() - t0;
      CHECK(d.result.outcome == Outcome::TimedOut);
      CHECK(d.result.signal == SIGTERM);  // sh does not ignore SIGTERM: no escalation needed
      CHECK(elapsed >= 300ms);
      CHECK(elapsed < 3s);

      const long pgid = d.result.pid;
      CHECK(eventually([&] { return !group_alive(pgid); }));
      // On a badly overloaded host the shell may not have got this far in 300 ms.
      if (std::filesystem::exists(dir / "p2")) {
        CHECK(read_pid(dir / "pgid") == pgid);
        CHECK_FALSE(pid_alive(read_pid(dir / "p1")));
        CHECK_FALSE(pid_alive(read_pid(dir / "p2")));
      } else {
        WARN("the shell did not record its children's pids before the timeout");
      }
    }
  }
}

TEST_CASE("runner: SIGKILL follows SIGTERM after the grace") {
  TempDir dir;
  auto runner = make_posix_runner();
  auto spec = spec_in(dir, "trap '' TERM; touch ready; sleep 1000; echo not reached");
  spec.kill_grace = 300ms;
  Runner::Id id = runner->start(spec);
  // Cancel only once the trap is set, or SIGTERM alone would do.
  REQUIRE(eventually([&] { return std::filesystem::exists(dir / "ready"); }, 10s));
  const auto t0 = Clock::now();
  runner->cancel(id);
  Done d = wait_one(*runner);
  const auto elapsed = Clock::now() - t0;
  CHECK(d.result.outcome == Outcome::Cancelled);
  CHECK(d.result.signal == SIGKILL);
  CHECK(elapsed >= 300ms);
  CHECK(elapsed < 3s);
  CHECK(eventually([&] { return !group_alive(d.result.pid); }));
}

TEST_CASE("runner: cancel ends a running process") {
  TempDir dir;
  auto runner = make_posix_runner();
  Runner::Id other = runner->start(spec_in(dir, "sleep 0.5"));
  auto spec = spec_in(dir, "echo $$ > pgid; sleep 1000 & wait");
  Runner::Id id = runner->start(spec);
  Done early;
  CHECK_FALSE(runner->wait(early.id, early.result, 100ms));
  runner->cancel(id);
  runner->cancel(12345);  // unknown: ignored
  const auto t0 = Clock::now();
  Done d = wait_one(*runner);
  CHECK(d.id == id);
  CHECK(d.result.outcome == Outcome::Cancelled);
  CHECK(Clock::now() - t0 < 2s);
  CHECK(eventually([&] { return !group_alive(d.result.pid); }));

  Done rest = wait_one(*runner);  // the other process is untouched
  CHECK(rest.id == other);
  CHECK(rest.result.outcome == Outcome::Exited);
  CHECK(rest.result.exit_code == 0);
}

TEST_CASE("runner: background children do not outlive a step that exits normally") {
  TempDir dir;
  auto runner = make_posix_runner();
  Done d = run_one(*runner, spec_in(dir, "sleep 1000 & echo $! > bg; exit 0"));
  CHECK(d.result.outcome == Outcome::Exited);
  CHECK(d.result.exit_code == 0);
  const long bg = read_pid(dir / "bg");
  REQUIRE(bg > 0);
  CHECK(eventually([&] { return !pid_alive(bg); }));
}

TEST_CASE("runner: stream delivers lines in order and logs them") {
  TempDir dir;
  auto runner = make_posix_runner();
  std::vector<std::pair<Runner::Id, std::string>> lines;
  runner->on_line = [&](Runner::Id id, std::string_view line) { lines.emplace_back(id, line); };
  auto spec = spec_in(dir, "echo one; echo two >&2; i=0; while [ $i -lt 200 ]; do echo n$i; "
                           "i=$((i+1)); done; printf 'last\\nno newline'");
  spec.stream = true;
  Done d = run_one(*runner, spec);
  CHECK(d.result.exit_code == 0);

  std::vector<std::string> want = {"one", "two"};
  for (int i = 0; i < 200; ++i) want.push_back("n" + std::to_string(i));
  want.push_back("last");
  want.push_back("no newline");
  std::vector<std::string> got;
  std::string joined;
  for (auto& [id, line] : lines) {
    CHECK(id == d.id);
    got.push_back(line);
  }
  CHECK(got == want);
  for (size_t i = 0; i < want.size(); ++i) joined += want[i] + (i + 1 < want.size() ? "\n" : "");
  CHECK(slurp(dir / "log") == joined);
}

TEST_CASE("runner: stream cuts an overlong line into pieces and loses no output") {
  TempDir dir;
  auto runner = make_posix_runner();
  std::vector<std::string> lines;
  runner->on_line = [&](Runner::Id, std::string_view line) { lines.emplace_back(line); };
  auto spec = spec_in(dir, "head -c 300000 /dev/zero | tr '\\0' x; echo; echo after");
  spec.stream = true;
  Done d = run_one(*runner, spec);
  CHECK(d.result.exit_code == 0);
  REQUIRE(lines.size() >= 3);
  size_t long_total = 0;
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    CHECK(lines[i].find_first_not_of('x') == std::string::npos);
    CHECK(lines[i].size() <= 128 * 1024);
    long_total += lines[i].size();
  }
  CHECK(long_total == 300000);
  CHECK(lines.back() == "after");
  CHECK(std::filesystem::file_size(dir / "log") == 300000 + 1 + 6);
}

TEST_CASE("runner: a stream whose background child holds the pipe still finishes") {
  TempDir dir;
  auto runner = make_posix_runner();
  std::vector<std::string> lines;
  runner->on_line = [&](Runner::Id, std::string_view line) { lines.emplace_back(line); };
  auto spec = spec_in(dir, "sleep 1000 & echo $! > bg; echo hi");
  spec.stream = true;
  const auto t0 = Clock::now();
  Done d = run_one(*runner, spec);
  CHECK(Clock::now() - t0 < 3s);
  CHECK(d.result.outcome == Outcome::Exited);
  CHECK(lines == std::vector<std::string>{"hi"});
  CHECK(eventually([&] { return !pid_alive(read_pid(dir / "bg")); }));
}

TEST_CASE("runner: two processes run concurrently") {
  TempDir dir;
  auto runner = make_posix_runner();
  runner->start(spec_in(dir, "date +%s%N > a.start; sleep 0.5; date +%s%N > a.end"));
  runner->start(spec_in(dir, "date +%s%N > b.start; sleep 0.5; date +%s%N > b.end"));
  CHECK(runner->running() == 2);
  for (int i = 0; i < 2; ++i) CHECK(wait_one(*runner).result.exit_code == 0);
  const auto as = read_ns(dir / "a.start"), ae = read_ns(dir / "a.end");
  const auto bs = read_ns(dir / "b.start"), be = read_ns(dir / "b.end");
  REQUIRE(as > 0);
  REQUIRE(bs > 0);
  CHECK(as < be);
  CHECK(bs < ae);
}

TEST_CASE("runner: wake interrupts wait") {
  TempDir dir;
  auto runner = make_posix_runner();
  Runner::Id id = runner->start(spec_in(dir, "sleep 1000"));
  Done d;

  std::atomic<bool> woke{false};
  std::thread waker([&] {
    std::this_thread::sleep_for(100ms);
    woke = true;
    runner->wake();
  });
  auto t0 = Clock::now();
  bool got = runner->wait(d.id, d.result, 10s);
  waker.join();
  CHECK_FALSE(got);
  CHECK(woke);
  CHECK(Clock::now() - t0 < 5s);

  // A wake before wait() is not lost, and is consumed once.
  runner->wake();
  t0 = Clock::now();
  CHECK_FALSE(runner->wait(d.id, d.result, 10s));
  CHECK(Clock::now() - t0 < 1s);
  t0 = Clock::now();
  CHECK_FALSE(runner->wait(d.id, d.result, 100ms));
  CHECK(Clock::now() - t0 >= 100ms);

  runner->cancel(id);
  CHECK(wait_one(*runner).result.outcome == Outcome::Cancelled);
}

TEST_CASE("runner: wait with nothing running returns after max_wait") {
  auto runner = make_posix_runner();
  Done d;
  const auto t0 = Clock::now();
  CHECK_FALSE(runner->wait(d.id, d.result, 50ms));
  CHECK(Clock::now() - t0 >= 50ms);
}

TEST_CASE("runner: the destructor cancels and reaps what still runs") {
  TempDir dir;
  std::vector<std::string> pidfiles;
  {
    auto runner = make_posix_runner();
    for (int i = 0; i < 3; ++i) {
      pidfiles.push_back(dir / ("p" + std::to_string(i)));
      runner->start(spec_in(dir, "echo $$ > p" + std::to_string(i) + "; sleep 1000"));
    }
    REQUIRE(eventually([&] {
      for (auto& f : pidfiles)
        if (read_pid(f) == 0) return false;
      return true;
    }));
  }
  for (auto& f : pidfiles) {  // SIGKILL was sent; dying takes the victim a moment
    const long pid = read_pid(f);
    CHECK(eventually([&] { return !pid_alive(pid) && !group_alive(pid); }));
  }
}

TEST_CASE("runner: 1,000 processes run through it at -j2") {
  TempDir dir;
  for (bool use_pidfd : {true, false}) {
    DYNAMIC_SECTION("use_pidfd=" << use_pidfd) {
      auto runner = make_posix_runner(PosixRunnerOptions{use_pidfd});
      const int total = use_pidfd ? 1000 : 200;  // the fallback polls every 10 ms
      int started = 0, finished = 0, failed = 0;
      const auto end = Clock::now() + 120s;
      while (finished < total && Clock::now() < end) {
        while (started < total && runner->running() < 2) {
          runner->start(spec_in(dir, "true"));
          ++started;
        }
        Done d;
        if (runner->wait(d.id, d.result, 1s)) {
          ++finished;
          if (d.result.outcome != Outcome::Exited || d.result.exit_code != 0) ++failed;
        }
      }
      CHECK(finished == total);
      CHECK(failed == 0);
      CHECK(runner->running() == 0);
    }
  }
}

TEST_CASE("runner: no file descriptor outlives the runner") {
  auto count_fds = [] {
    int n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  TempDir dir;
  const int before = count_fds();
  {
    auto runner = make_posix_runner();
    runner->on_line = [](Runner::Id, std::string_view) {};
    auto streamed = spec_in(dir, "echo hi");
    streamed.stream = true;
    auto timed = spec_in(dir, "sleep 1000");
    timed.timeout = 50ms;
    auto missing = spec_in(dir, "true");
    missing.workdir = dir / "missing";
    for (const auto& s : {spec_in(dir, "true"), streamed, timed, missing}) runner->start(s);
    for (int i = 0; i < 4; ++i) wait_one(*runner);
    runner->start(streamed);
    runner->start(timed);  // still running when the runner dies
  }
  CHECK(count_fds() == before);
}
