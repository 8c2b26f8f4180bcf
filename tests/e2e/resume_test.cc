// End-to-end: `sluice resume RUN` after kill -9 of `sluice run` at several
// moments: finished steps are not run again, interrupted ones get a new
// attempt, the same run completes, and no step is ever recorded running twice
// at once (step_transitions and attempts in sluice.db). Refusals, and two
// concurrent resumes of one run.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "e2e/crash_helpers.h"
#include "e2e/harness.h"
#include "e2e/store_helpers.h"

using namespace sluice::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// a -> b -> c. Every step appends its name to $TRACE when it starts (so a
// step that ran twice shows twice). a and b write their shell's pid (their
// process group) to $GATES/pg_STEP and wait until the file $GATES/STEP exists.
const char* kWorkflow = R"(name = "crash"
[steps.a]
run = "echo a >> $TRACE; echo $$$$ > $GATES/pg_a; while [ ! -e $GATES/a ]; do sleep 0.02; done; echo hello > ${outputs.o}; echo v=1 >> $SLUICE_VALUES"
outputs = { o = "a.txt" }

[steps.b]
run = "echo b >> $TRACE; echo $$$$ > $GATES/pg_b; while [ ! -e $GATES/b ]; do sleep 0.02; done; cat ${inputs.i} > ${outputs.o}; echo ${steps.a.values.v} >> ${outputs.o}"
inputs = { i = "${steps.a.outputs.o}" }
outputs = { o = "b.txt" }

[steps.c]
run = "echo c >> $TRACE; cat ${inputs.i} > ${outputs.o}"
inputs = { i = "${steps.b.outputs.o}" }
outputs = { o = "c.txt" }
)";

struct Crash {
  TempDir dir;
  std::vector<std::string> env;

  Crash() {
    dir.write("wf.toml", kWorkflow);
    fs::create_directories(dir / "gates");
    env = {"TRACE=" + (dir / "trace"), "GATES=" + (dir / "gates")};
  }

  void open_gate(const std::string& step) const { dir.write("gates/" + step, ""); }

  int spawn_run(const std::vector<std::string>& extra_env = {}, bool no_cache = false) const {
    std::vector<std::string> e = env;
    e.insert(e.end(), extra_env.begin(), extra_env.end());
    std::vector<std::string> args = {"run", "wf.toml"};
    if (no_cache) args.push_back("--no-cache");
    return spawn_sluice(args, dir.path(), dir / "run.out", dir / "run.err", e);
  }

  // Polls `sluice show` until step `node` of the newest run (newer than
  // `after`, when given) is recorded running.
  std::string wait_running(const std::string& node, const std::string& after = {}) const {
    std::string id = wait_for_run(dir);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!after.empty() && id == after && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      id = newest_run(dir);
    }
    while (std::chrono::steady_clock::now() < deadline) {
      auto statuses = step_statuses(show_run(dir, id));
      if (statuses.count(node) && statuses[node] == "running") return id;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("step " << node << " of run " << id << " never recorded running: " << show_run(dir, id).dump());
    return id;
  }

  // kill -9 of the engine and of the step it left running (its process group).
  void kill_engine(int pid, const std::string& running_step) const {
    ::kill(pid, SIGKILL);
    CHECK(wait_sluice(pid) == 128 + SIGKILL);
    if (!running_step.empty()) {
      const int pg = std::stoi(read_file(dir / ("gates/pg_" + running_step)));
      ::kill(-pg, SIGKILL);
    }
  }

  RunResult resume(const std::string& id) const { return run_sluice({"resume", id}, dir.path(), env); }

  std::string trace() const { return dir.exists("trace") ? read_file(dir / "trace") : std::string(); }
};

// The run finished: c's output is what a, b and c make together.
void check_outputs(const Crash& c, const std::string& id) {
  CHECK(read_file(c.dir / (".sluice/runs/" + id + "/c/c.txt")) == "hello\n1\n");
  auto show = show_run(c.dir, id);
  for (const std::string node : {"a", "b", "c"})
    CHECK(fs::exists(object_path(c.dir, step_of(show, node)["outputs"]["o"]["digest"])));
}

}  // namespace

TEST_CASE("resume: kill -9 while a step runs, then resume finishes the same run without re-running what finished") {
  Crash c;
  c.open_gate("a");
  const int pid = c.spawn_run();
  const std::string id = c.wait_running("b");
  c.kill_engine(pid, "b");
  CHECK(c.trace() == "a\nb\n");
  c.open_gate("b");

  const int resumer = spawn_sluice({"resume", id}, c.dir.path(), c.dir / "resume.out", c.dir / "resume.err", c.env);
  REQUIRE(wait_sluice(resumer) == 0);
  CHECK(read_file(c.dir / "resume.out").rfind("resuming run " + id + ": 1 finished step restored, 1 interrupted step runs again\n", 0) == 0);
  CHECK(read_file(c.dir / "resume.err").empty());
  // The summary: a was restored, b ran its second attempt, c ran.
  const std::string out = read_file(c.dir / "resume.out");
  CHECK(out.find("3 steps: 3 succeeded (") != std::string::npos);
  CHECK(out.find("\na     succeeded          -   restored\n") != std::string::npos);
  CHECK(out.find("\nb     succeeded          2  ") != std::string::npos);  // the interrupted attempt and this one
  // a ran once; b ran again (attempt 2); c ran once.
  CHECK(c.trace() == "a\nb\nb\nc\n");

  auto runs = list_runs(c.dir);
  REQUIRE(runs.size() == 1);  // the same run, no new one
  CHECK(runs[0]["id"] == id);
  CHECK(runs[0]["status"] == "succeeded");
  CHECK(runs[0]["error"] == "");
  auto show = show_run(c.dir, id);
  CHECK(step_statuses(show) == std::map<std::string, std::string>{{"a", "succeeded"}, {"b", "succeeded"}, {"c", "succeeded"}});
  json a = step_of(show, "a"), b = step_of(show, "b");
  REQUIRE(a["attempts"].size() == 1);
  CHECK(a["attempts"][0]["status"] == "succeeded");
  REQUIRE(b["attempts"].size() == 2);
  CHECK(b["attempts"][0]["number"] == 1);
  CHECK(b["attempts"][0]["status"] == "failed");
  CHECK(b["attempts"][0]["error"] == "engine died (pid " + std::to_string(pid) + ")");
  // The interrupted attempt wrote nothing: it has no log (docs/running.md,
  // "Logs"). tests/engine/recovery_test.cc: a crashed attempt's log is stored.
  CHECK(b["attempts"][0]["log_digest"] == "");
  CHECK(b["attempts"][1]["number"] == 2);
  CHECK(b["attempts"][1]["status"] == "succeeded");
  CHECK(b["attempts"][1]["exit_code"] == 0);
  check_outputs(c, id);
  check_never_running_twice(c.dir, id);

  // No command marked the run failed in between: resume took it over as it
  // was. b's transitions: running, waiting (resume), running, succeeded.
  CHECK(query(c.dir / ".sluice/sluice.db",
              "SELECT t.status FROM step_transitions t JOIN steps s ON s.id = t.step_id WHERE s.node = 'b' "
              "ORDER BY t.at, t.id") == std::vector<std::string>{"running", "waiting", "running", "succeeded"});
  // The events: the first engine's, run_resumed, then the resumed run's own.
  auto kinds = query(c.dir / ".sluice/sluice.db", "SELECT kind FROM events ORDER BY seq");
  CHECK(kinds == std::vector<std::string>{"run_started", "step_started", "step_finished", "step_started", "run_resumed",
                                          "step_started", "step_finished", "step_started", "step_finished",
                                          "run_finished"});
  CHECK(query(c.dir / ".sluice/sluice.db", "SELECT message FROM events WHERE kind = 'run_resumed'") ==
        std::vector<std::string>{"resumed by pid " + std::to_string(resumer) + " after the engine died (pid " +
                                 std::to_string(pid) + "): 1 finished step restored, 1 interrupted step runs again"});

  // `sluice show` lists both attempts of b.
  RunResult shown = run_sluice({"show", id}, c.dir.path());
  CHECK(shown.out.find("    attempt 1 failed: engine died (pid " + std::to_string(pid) + ")\n    attempt 2 succeeded\n") !=
        std::string::npos);
}

TEST_CASE("resume: a kill at several moments resumes to success and runs no finished step again") {
  SECTION("after the run was created, before any step finished") {
    Crash c;
    c.open_gate("a");
    c.open_gate("b");
    const int pid = c.spawn_run({"SLUICE_TEST_KILL_AT=after-run-started"});
    CHECK(wait_sluice(pid) == 128 + SIGKILL);
    const std::string id = newest_run(c.dir);
    CHECK(c.trace().empty());  // it died before starting a step
    RunResult r = c.resume(id);
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.rfind("resuming run " + id + ": 0 finished steps restored, 0 interrupted steps run again\n", 0) == 0);
    CHECK(list_runs(c.dir)[0]["status"] == "succeeded");
    CHECK(list_runs(c.dir).size() == 1);
    auto show = show_run(c.dir, id);
    for (const std::string node : {"a", "b", "c"}) CHECK(step_of(show, node)["status"] == "succeeded");
    CHECK(c.trace() == "a\nb\nc\n");
    check_outputs(c, id);
    check_never_running_twice(c.dir, id);
  }
  SECTION("while the first step runs") {
    Crash c;
    c.open_gate("b");
    const int pid = c.spawn_run();
    const std::string id = c.wait_running("a");
    c.kill_engine(pid, "a");
    c.open_gate("a");
    // A command that reads the history first marks the dead run failed.
    auto dead = list_runs(c.dir)[0];
    CHECK(dead["status"] == "failed");
    CHECK(dead["error"] == "engine died (pid " + std::to_string(pid) + ")");
    RunResult r = c.resume(id);
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.rfind("resuming run " + id + ": 0 finished steps restored, 1 interrupted step runs again\n", 0) == 0);
    CHECK(c.trace() == "a\na\nb\nc\n");
    auto show = show_run(c.dir, id);
    CHECK(step_of(show, "a")["attempts"].size() == 2);
    CHECK(step_of(show, "a")["attempts"][0]["error"] == "engine died (pid " + std::to_string(pid) + ")");
    CHECK(step_of(show, "b")["attempts"].size() == 1);
    // a: running, failed (recovery), waiting (resume), running, succeeded.
    CHECK(query(c.dir / ".sluice/sluice.db",
                "SELECT t.status FROM step_transitions t JOIN steps s ON s.id = t.step_id WHERE s.node = 'a' "
                "ORDER BY t.at, t.id") ==
          std::vector<std::string>{"running", "failed", "waiting", "running", "succeeded"});
    auto kinds = query(c.dir / ".sluice/sluice.db", "SELECT kind FROM events WHERE kind LIKE 'run_%' ORDER BY seq");
    CHECK(kinds == std::vector<std::string>{"run_started", "run_recovered", "run_resumed", "run_finished"});
    CHECK(list_runs(c.dir)[0]["status"] == "succeeded");
    check_outputs(c, id);
    check_never_running_twice(c.dir, id);
  }
  SECTION("after every step finished, before the run was marked done") {
    Crash c;
    c.open_gate("a");
    c.open_gate("b");
    const int pid = c.spawn_run({"SLUICE_TEST_KILL_AT=before-run-finished"});
    CHECK(wait_sluice(pid) == 128 + SIGKILL);
    const std::string id = newest_run(c.dir);
    CHECK(c.trace() == "a\nb\nc\n");
    RunResult r = c.resume(id);
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.rfind("resuming run " + id + ": 3 finished steps restored, 0 interrupted steps run again\n", 0) == 0);
    CHECK(c.trace() == "a\nb\nc\n");  // nothing ran again
    CHECK(list_runs(c.dir)[0]["status"] == "succeeded");
    auto show = show_run(c.dir, id);
    for (const std::string node : {"a", "b", "c"}) CHECK(step_of(show, node)["attempts"].size() == 1);
    check_outputs(c, id);
    check_never_running_twice(c.dir, id);
  }
}

TEST_CASE("resume: a run that is not dead is refused with the reason") {
  Crash c;
  c.open_gate("a");
  // Running, its engine alive.
  const int pid = c.spawn_run();
  const std::string id = c.wait_running("b");
  RunResult r = c.resume(id);
  CHECK(r.status == 2);
  CHECK(r.err == "sluice resume: error: run " + id + " is running in process " + std::to_string(pid) +
                     ": only a run whose engine died can be resumed\n");
  c.open_gate("b");
  REQUIRE(wait_sluice(pid) == 0);
  // Succeeded.
  r = c.resume(id);
  CHECK(r.status == 2);
  CHECK(r.err == "sluice resume: error: run " + id + " succeeded: there is nothing to resume (sluice rerun " + id +
                     " runs it again)\n");
  // Failed by itself.
  c.dir.write("fail.toml", "name = \"fails\"\n[steps.x]\nrun = \"exit 3\"\n");
  REQUIRE(run_sluice({"run", "fail.toml"}, c.dir.path()).status == 1);
  const std::string failed = newest_run(c.dir);
  r = c.resume(failed);
  CHECK(r.status == 2);
  CHECK(r.err == "sluice resume: error: run " + failed + " failed: only a run whose engine died can be resumed (sluice retry " +
                     failed + " runs its unfinished steps as a new run)\n");
  // Cancelled (Ctrl-C).
  fs::remove(c.dir / "gates/a");
  const int cancelled_pid = c.spawn_run({}, true);  // not from the cache of the first run
  const std::string cancelled = c.wait_running("a", failed);
  ::kill(cancelled_pid, SIGINT);
  REQUIRE(wait_sluice(cancelled_pid) == 130);
  r = c.resume(cancelled);
  CHECK(r.status == 2);
  CHECK(r.err == "sluice resume: error: run " + cancelled +
                     " was cancelled: only a run whose engine died can be resumed (sluice retry " + cancelled +
                     " runs its unfinished steps as a new run)\n");
  // Unknown.
  r = c.resume("nope");
  CHECK(r.status == 2);
  CHECK(r.err == "sluice resume: error: no run 'nope'\n");
}

TEST_CASE("resume: of two concurrent resumes of one run exactly one runs it") {
  Crash c;
  c.open_gate("a");
  const int pid = c.spawn_run();
  const std::string id = c.wait_running("b");
  c.kill_engine(pid, "b");
  fs::remove(c.dir / "gates/pg_b");
  // Both start while b's gate is shut, so the winner is still running b
  // when the loser looks.
  const int first = spawn_sluice({"resume", id}, c.dir.path(), c.dir / "r1.out", c.dir / "r1.err", c.env);
  const int second = spawn_sluice({"resume", id}, c.dir.path(), c.dir / "r2.out", c.dir / "r2.err", c.env);
  REQUIRE(wait_for_file(c.dir / "gates/pg_b", 30000));
  // The loser has exited (or is about to): wait for the first to end.
  int loser = 0, winner = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!loser && std::chrono::steady_clock::now() < deadline) {
    if (!process_alive(first)) loser = first, winner = second;
    else if (!process_alive(second)) loser = second, winner = first;
    else std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE(loser != 0);
  CHECK(wait_sluice(loser) == 2);
  const std::string err = read_file(c.dir / (loser == first ? "r1.err" : "r2.err"));
  CHECK(err == "sluice resume: error: run " + id + " is running in process " + std::to_string(winner) +
                   ": only a run whose engine died can be resumed\n");
  c.open_gate("b");
  CHECK(wait_sluice(winner) == 0);
  CHECK(c.trace() == "a\nb\nb\nc\n");  // b ran once more, not twice
  auto show = show_run(c.dir, id);
  CHECK(step_of(show, "b")["attempts"].size() == 2);
  CHECK(list_runs(c.dir)[0]["status"] == "succeeded");
  auto resumed = query(c.dir / ".sluice/sluice.db", "SELECT count(*) FROM events WHERE kind = 'run_resumed'");
  CHECK(resumed == std::vector<std::string>{"1"});
  check_never_running_twice(c.dir, id);
}

TEST_CASE("resume: kill -9 at many points of a 25-step run, then resume finishes it with nothing finished run again") {
  TempDir dir;
  dir.write("wf.toml", chains_workflow());
  const std::vector<std::string> env = {"EXEC_LOG=" + (dir / "exec.log")};
  // Kill after this many steps were reported done: early, in the middle, late.
  for (size_t kill_after : {1u, 8u, 17u, 24u}) {
    DYNAMIC_SECTION("kill after " << kill_after << " steps") {
      fs::remove_all(dir / ".sluice");
      fs::remove(dir / "exec.log");
      const auto [pid, told] = kill_run_after(dir, kill_after, env);
      const std::string id = newest_run(dir);
      // What the store says finished before the resume (the terminal was
      // told of a subset of it).
      std::set<std::string> finished;
      const json before = show_run(dir, id);
      for (const auto& st : before["steps"])
        if (st["status"] == "succeeded") finished.insert(st["node"].get<std::string>());
      for (const std::string& node : told) CHECK(finished.count(node) == 1);

      fs::remove(dir / "exec.log");
      RunResult r = run_sluice({"resume", "-j", "3", id}, dir.path(), env);
      INFO(r.out << r.err);
      REQUIRE(r.status == 0);
      CHECK(list_runs(dir).size() == 1);
      CHECK(list_runs(dir)[0]["status"] == "succeeded");
      // Exactly the steps that had not finished ran, once each.
      const std::set<std::string> ran = lines(dir.read("exec.log"));
      auto show = show_run(dir, id);
      REQUIRE(show["steps"].size() == 25);
      for (const auto& st : show["steps"]) {
        const std::string node = st["node"];
        INFO(node);
        CHECK(st["status"] == "succeeded");
        CHECK(ran.count(node) == (finished.count(node) ? 0u : 1u));
        if (finished.count(node)) CHECK(st["attempts"].size() == 1);
        CHECK(st["attempts"].back()["status"] == "succeeded");
        for (size_t i = 0; i + 1 < st["attempts"].size(); ++i)
          CHECK(st["attempts"][i]["error"] == "engine died (pid " + std::to_string(pid) + ")");
        CHECK(fs::exists(object_path(dir, st["outputs"]["o"]["digest"])));
      }
      CHECK(read_file(dir / (".sluice/runs/" + id + "/all/all.txt")) == expected_all());
      check_never_running_twice(dir, id);
      CHECK(quick_check(dir / ".sluice/sluice.db") == "ok\n");
      RunResult verify = run_sluice({"artifacts", "verify"}, dir.path());
      CHECK(verify.status == 0);
    }
  }
}

TEST_CASE("resume: with --workflows, as sluice serve resumes its runs, workflow.trigger queues its run") {
  Crash c;
  // a -> notify: once a is done, notify triggers `other`, a workflow of the
  // served folder flows/.
  c.dir.write("wf.toml", R"(name = "crash"
[steps.a]
run = "echo a >> $TRACE; echo $$$$ > $GATES/pg_a; while [ ! -e $GATES/a ]; do sleep 0.02; done; echo v=1 >> $SLUICE_VALUES"

[steps.notify]
uses = "workflow.trigger"
with = { workflow = "other", params = { why = "a said ${steps.a.values.v}" } }
)");
  c.dir.write("flows/other.toml", R"(name = "other"
[params]
why = ""
[steps.say]
run = "echo ${params.why}"
)");
  const int pid = c.spawn_run();
  const std::string id = c.wait_running("a");
  c.kill_engine(pid, "a");
  c.open_gate("a");

  RunResult r = run_sluice({"resume", id, "--workflows", "flows"}, c.dir.path(), c.env);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  // Nothing serves the queue here, so the triggered run waits, queued, as
  // the child of the resumed run.
  auto runs = list_runs(c.dir);
  REQUIRE(runs.size() == 2);
  const json& child = runs[0];
  CHECK(child["workflow"] == "other");
  CHECK(child["status"] == "queued");
  CHECK(child["trigger"] == "child");
  CHECK(child["parent_run"] == id);
  CHECK(child["params"] == json({{"why", "a said 1"}}));
  CHECK(runs[1]["id"] == id);
  CHECK(runs[1]["status"] == "succeeded");
  auto values = step_of(show_run(c.dir, id), "notify")["values"];
  CHECK(values["status"] == "queued");
  CHECK(values["run_id"] == child["id"]);
}
