// End-to-end: the step processes an engine left running when it was kill -9'd
// are ended by `sluice resume` before the step runs again (found by the
// process group recorded with the attempt), SIGKILL after the grace period
// for one that ignores SIGTERM; and a recorded group whose id now belongs to
// an unrelated process (pid reuse) is left alone.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "e2e/crash_helpers.h"
#include "e2e/harness.h"
#include "e2e/store_helpers.h"

extern char** environ;

using namespace sluice::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A `sleep` argument no other process on the machine has: 1000.<pid><n>.
std::string unique_sleep() {
  static std::atomic<int> n{0};
  return "1000." + std::to_string(::getpid()) + std::to_string(++n);
}

// "pid (comm) state ppid pgrp ..." of a process: its state and group.
bool proc_stat(const std::string& pid, std::string& state, long& pgrp) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(stat.substr(close + 1));
  long ppid = 0;
  return static_cast<bool>(fields >> state >> ppid >> pgrp);
}

// Pids of the processes that are not zombies and match `want`.
std::vector<int> live_processes(const std::function<bool(const std::string& pid, long pgrp)>& want) {
  std::vector<int> out;
  DIR* proc = ::opendir("/proc");
  REQUIRE(proc);
  while (const dirent* d = ::readdir(proc)) {
    const std::string pid = d->d_name;
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string state;
    long pgrp = 0;
    if (!proc_stat(pid, state, pgrp) || state == "Z" || state == "X") continue;
    if (want(pid, pgrp)) out.push_back(std::stoi(pid));
  }
  ::closedir(proc);
  return out;
}

// Live processes with `arg` among their arguments.
std::vector<int> live_with_arg(const std::string& arg) {
  return live_processes([&](const std::string& pid, long) {
    std::ifstream args("/proc/" + pid + "/cmdline");
    for (std::string a; std::getline(args, a, '\0');)
      if (a == arg) return true;
    return false;
  });
}

// Live processes of process group `pgid`.
std::vector<int> live_in_group(long pgid) {
  return live_processes([&](const std::string&, long pgrp) { return pgrp == pgid; });
}

// A step that, on its first attempt only, starts a background `sleep ARG`
// and waits for it; it writes its shell's pid to $GATES/pg and the sleep's
// to $GATES/child. Later attempts record the state the first attempt's
// sleep is in when they start ("gone", or Z: ended, not reaped) and finish.
std::string sleeper_workflow(const std::string& sleep_arg, bool ignore_term) {
  const std::string trap = ignore_term ? "trap '' TERM; " : "";
  return "name = \"sleeper\"\n[steps.sleeper]\nrun = \"" + trap +
         "echo s >> $TRACE; echo $$$$ > $GATES/pg; "
         "if [ $(wc -l < $TRACE) -eq 1 ]; then sleep " + sleep_arg +
         " & echo $! > $GATES/child; wait; fi; "
         "st=$(cut -d' ' -f3 /proc/$(cat $GATES/child)/stat 2>/dev/null || echo gone); echo $st > $GATES/old_state; "
         "echo done > ${outputs.o}\"\noutputs = { o = \"out.txt\" }\n";
}

struct Sleeper {
  TempDir dir;
  std::vector<std::string> env;
  std::string arg = unique_sleep();

  explicit Sleeper(bool ignore_term) {
    dir.write("wf.toml", sleeper_workflow(arg, ignore_term));
    fs::create_directories(dir / "gates");
    env = {"TRACE=" + (dir / "trace"), "GATES=" + (dir / "gates")};
  }

  // Starts the run and kill -9s its engine once the sleep runs.
  std::pair<int, std::string> run_and_kill() const {
    const int pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "run.out", dir / "run.err", env);
    REQUIRE(wait_for_file(dir / "gates/child", 30000));
    const std::string id = wait_for_run(dir);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (step_statuses(show_run(dir, id))["sleeper"] != "running" && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    REQUIRE(step_statuses(show_run(dir, id))["sleeper"] == "running");
    ::kill(pid, SIGKILL);
    CHECK(wait_sluice(pid) == 128 + SIGKILL);
    return {pid, id};
  }

  std::string db() const { return dir / ".sluice/sluice.db"; }
};

}  // namespace

TEST_CASE("resume: the step processes the dead engine left running are ended before the step runs again") {
  for (bool ignore_term : {false, true}) {
    DYNAMIC_SECTION((ignore_term ? "a step that ignores SIGTERM gets SIGKILL" : "SIGTERM ends them")) {
      Sleeper s(ignore_term);
      const auto [pid, id] = s.run_and_kill();
      // The engine is gone; its step's shell and the sleep it started are not.
      const long pg = std::stol(read_file(s.dir / "gates/pg"));
      REQUIRE(live_with_arg(s.arg).size() == 1);
      REQUIRE(live_in_group(pg).size() == 2);
      // The attempt recorded that group, and its leader's life.
      auto recorded = query(s.db(),
                            "SELECT a.pgid, a.pgid_start FROM attempts a JOIN steps t ON t.id = a.step_id "
                            "WHERE t.run_id = '" + id + "' AND a.number = 1");
      REQUIRE(recorded.size() == 1);
      CHECK(recorded[0].substr(0, recorded[0].find('|')) == std::to_string(pg));
      CHECK(recorded[0].size() > std::to_string(pg).size() + 1);  // a start id

      RunResult r = run_sluice({"resume", id}, s.dir.path(), s.env);
      INFO(r.out << r.err);
      REQUIRE(r.status == 0);
      const std::string ended = "ended the processes of sleeper's attempt 1 (process group " + std::to_string(pg) +
                                "), still running after the engine died (pid " + std::to_string(pid) + ")";
      CHECK(r.out.rfind("resuming run " + id + ": 0 finished steps restored, 1 interrupted step runs again\n" +
                            ended + "\n",
                        0) == 0);
      // Nothing of the old attempt is left, and it was gone before the new
      // attempt started; the step ran again exactly once.
      CHECK(live_with_arg(s.arg).empty());
      CHECK(live_in_group(pg).empty());
      const std::string old_state = read_file(s.dir / "gates/old_state");
      CHECK((old_state == "gone\n" || old_state == "Z\n"));
      CHECK(read_file(s.dir / "trace") == "s\ns\n");
      auto show = show_run(s.dir, id);
      CHECK(show["status"] == "succeeded");
      json attempts = step_of(show, "sleeper")["attempts"];
      REQUIRE(attempts.size() == 2);
      CHECK(attempts[0]["error"] == "engine died (pid " + std::to_string(pid) + ")");
      CHECK(attempts[1]["status"] == "succeeded");
      CHECK(query(s.db(), "SELECT node, message FROM events WHERE kind = 'step_processes_ended'") ==
            std::vector<std::string>{"sleeper|" + ended + ": " + (ignore_term ? "SIGKILL after 5.0s" : "SIGTERM")});
      check_never_running_twice(s.dir, id);
    }
  }
}

TEST_CASE("resume: a recorded process group whose id now belongs to another process is left alone") {
  Sleeper s(false);
  const auto [pid, id] = s.run_and_kill();
  // The step's own group goes, as if it had ended long ago ...
  const long pg = std::stol(read_file(s.dir / "gates/pg"));
  ::kill(static_cast<pid_t>(-pg), SIGKILL);
  // ... and an unrelated process now leads a group: as if its id had been
  // reused. The attempt's record names it, with the start id the step's
  // leader had (which the unrelated process does not have).
  const std::string decoy_arg = unique_sleep();
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::string sleep_cmd = "sleep";
  char* argv[] = {sleep_cmd.data(), const_cast<char*>(decoy_arg.c_str()), nullptr};
  pid_t decoy = 0;
  REQUIRE(posix_spawnp(&decoy, "sleep", nullptr, &attr, argv, environ) == 0);
  posix_spawnattr_destroy(&attr);
  REQUIRE(wait_for_file("/proc/" + std::to_string(decoy) + "/stat", 5000));
  exec_sql(s.db(), "UPDATE attempts SET pgid = " + std::to_string(decoy) + " WHERE number = 1");

  RunResult r = run_sluice({"resume", id}, s.dir.path(), s.env);
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("ended the processes") == std::string::npos);
  CHECK(query(s.db(), "SELECT count(*) FROM events WHERE kind = 'step_processes_ended'") ==
        std::vector<std::string>{"0"});
  // The unrelated process still runs.
  CHECK(live_with_arg(decoy_arg) == std::vector<int>{decoy});
  CHECK(read_file(s.dir / "trace") == "s\ns\n");
  ::kill(decoy, SIGKILL);
  int status = 0;
  ::waitpid(decoy, &status, 0);
}
