// End-to-end: kill -9 of `sluice run` at many points of a real run, then the
// store's invariants, the artifact store, PRAGMA quick_check and `sluice
// retry`; `sluice cancel`, `retry` and `rerun` on their own.
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

TEST_CASE("recovery: kill -9 at many points loses nothing reported done, and retry finishes the run") {
  TempDir dir;
  dir.write("wf.toml", chains_workflow());
  const std::vector<std::string> env = {"EXEC_LOG=" + (dir / "exec.log")};
  // Kill after this many steps were reported done: early, in the middle, late.
  for (size_t kill_after : {1u, 8u, 17u, 24u}) {
    DYNAMIC_SECTION("kill after " << kill_after << " steps") {
      fs::remove(dir / "exec.log");
      const auto [pid, told] = kill_run_after(dir, kill_after, env);

      // The next command finds the dead engine and closes the run.
      const std::string dead = newest_run(dir);
      auto run = list_runs(dir)[0];
      CHECK(run["status"] == "failed");
      CHECK(run["error"] == "engine died (pid " + std::to_string(pid) + ")");
      auto show = show_run(dir, dead);
      std::set<std::string> succeeded;
      for (const auto& s : show["steps"]) {
        CHECK(s["status"] != "running");  // nothing stays running
        CHECK(s["status"] != "waiting");
        CHECK(s["attempts"].size() <= 1);  // and nothing ran twice
        if (s["status"] == "succeeded") {
          succeeded.insert(s["node"]);
          CHECK(s["attempts"][0]["status"] == "succeeded");
          CHECK(std::string(s["attempts"][0]["log_digest"]).rfind("sha256:", 0) == 0);
          REQUIRE(s["outputs"].contains("o"));
          CHECK(fs::exists(object_path(dir, s["outputs"]["o"]["digest"])));
        } else {
          CHECK(s["status"] == "failed");
          CHECK(s["error"] == "engine died (pid " + std::to_string(pid) + ")");
        }
      }
      // Everything the terminal reported done is recorded done.
      for (const std::string& node : told) CHECK(succeeded.count(node) == 1);
      CHECK(quick_check(dir / ".sluice/sluice.db") == "ok\n");
      RunResult verify = run_sluice({"artifacts", "verify"}, dir.path());
      CHECK(verify.status == 0);

      // retry: what succeeded is reused, not run again; the rest runs.
      fs::remove(dir / "exec.log");
      RunResult retry = run_sluice({"retry", "-j", "3", dead}, dir.path(), env);
      INFO(retry.out << retry.err);
      REQUIRE(retry.status == 0);
      const std::string again = newest_run(dir);
      CHECK(list_runs(dir)[0]["trigger"] == "retry");
      CHECK(list_runs(dir)[0]["parent_run"] == dead);
      auto retried = show_run(dir, again);
      std::set<std::string> ran = lines(dir.read("exec.log"));
      for (const auto& s : retried["steps"]) {
        const std::string node = s["node"];
        if (succeeded.count(node)) {
          CHECK(s["status"] == "cached");
          CHECK(ran.count(node) == 0);
          CHECK(s["outputs"]["o"]["digest"] == step_of(show, node)["outputs"]["o"]["digest"]);
        } else {
          CHECK(s["status"] == "succeeded");
          CHECK(ran.count(node) == 1);
        }
      }
      CHECK(retried["steps"].size() == 25);
      CHECK(read_file(dir / (".sluice/runs/" + again + "/all/all.txt")) == expected_all());
      CHECK(quick_check(dir / ".sluice/sluice.db") == "ok\n");
    }
  }
}

TEST_CASE("recovery: sluice cancel stops a running run through its engine") {
  TempDir dir;
  dir.write("wf.toml", "name = \"long\"\n[steps.quick]\nrun = \"true\"\n[steps.slow]\nrun = \"touch $MARK; sleep 30\"\n");
  int pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err", {"MARK=" + (dir / "mark")});
  REQUIRE(wait_for_file(dir / "mark"));
  const std::string id = wait_for_run(dir);
  RunResult c = run_sluice({"cancel", id}, dir.path());
  INFO(c.err);
  CHECK(c.status == 0);
  CHECK(c.out == "cancelling run " + id + " (pid " + std::to_string(pid) + ")\nrun " + id + " cancelled\n");
  CHECK(wait_sluice(pid) == 130);
  auto show = show_run(dir, id);
  CHECK(show["status"] == "cancelled");
  CHECK(step_of(show, "slow")["status"] == "cancelled");
  CHECK(step_of(show, "slow")["attempts"][0]["status"] == "cancelled");
  RunResult again = run_sluice({"cancel", id}, dir.path());
  CHECK(again.status == 2);
  CHECK(again.err == "sluice cancel: error: run " + id + " has already finished: cancelled (interrupted)\n");
  CHECK(run_sluice({"cancel", "nope"}, dir.path()).err == "sluice cancel: error: no run 'nope'\n");
}

TEST_CASE("recovery: retry runs a failed run's unfinished steps again and reuses the rest") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "flaky"
[params]
n = 1
[steps.a]
run = "echo a${params.n} > ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG"
outputs = { o = "a.txt" }
cache = false
[steps.b]
run = "test -f $FLAG && cat ${inputs.x} > ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG; test -f $FLAG"
inputs = { x = "${steps.a.outputs.o}" }
outputs = { o = "b.txt" }
[steps.c]
run = "echo c >> $EXEC_LOG"
needs = ["b"]
)");
  const std::vector<std::string> env = {"EXEC_LOG=" + (dir / "exec.log"), "FLAG=" + (dir / "flag")};
  RunResult first = run_sluice({"run", "-p", "n=7", "wf.toml"}, dir.path(), env);
  CHECK(first.status == 1);
  const std::string failed = newest_run(dir);
  dir.write("flag", "");
  fs::remove(dir / "exec.log");
  RunResult retry = run_sluice({"retry", failed}, dir.path(), env);
  INFO(retry.out << retry.err);
  REQUIRE(retry.status == 0);
  const std::string id = newest_run(dir);
  CHECK(retry.out.rfind("retrying " + failed + " (1 succeeded steps reused) as run " + id + "\n", 0) == 0);
  CHECK(dir.read("exec.log") == "b\nc\n");  // a was reused even though it has cache = false
  auto show = show_run(dir, id);
  CHECK(show["params"]["n"] == 7);
  CHECK(step_statuses(show) == std::map<std::string, std::string>{{"a", "cached"}, {"b", "succeeded"}, {"c", "succeeded"}});
  CHECK(read_file(dir / (".sluice/runs/" + id + "/b/b.txt")) == "a7\n");
  RunResult why = run_sluice({"why", id, "a"}, dir.path());
  CHECK(why.out == "a: reused: sluice retry reused its result from run " + failed + "\n");
  RunResult done = run_sluice({"retry", id}, dir.path());
  CHECK(done.status == 2);
  CHECK(done.err == "sluice retry: error: run " + id + " succeeded: nothing to retry (sluice rerun runs it again)\n");
}

TEST_CASE("recovery: rerun uses the recorded workflow source, params and input bytes") {
  TempDir dir;
  dir.write("data.txt", "version 1\n");
  dir.write("wf.toml", R"(name = "again"
[params]
tag = "x"
[steps.read]
run = "cat ${inputs.d} > ${outputs.o}; echo ${params.tag} >> ${outputs.o}"
inputs = { d = "data.txt" }
outputs = { o = "o.txt" }
)");
  REQUIRE(run_sluice({"run", "-p", "tag=first", "wf.toml"}, dir.path()).status == 0);
  const std::string original = newest_run(dir);
  // The file and the workflow change afterwards; the rerun does not see either.
  dir.write("data.txt", "version 2\n");
  dir.write("wf.toml", "name = \"again\"\n[steps.other]\nrun = \"true\"\n");
  RunResult r = run_sluice({"rerun", "--no-cache", original}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  const std::string id = newest_run(dir);
  auto run = list_runs(dir)[0];
  CHECK(run["trigger"] == "rerun");
  CHECK(run["parent_run"] == original);
  CHECK(run["params"]["tag"] == "first");
  CHECK(step_statuses(show_run(dir, id)) == std::map<std::string, std::string>{{"read", "succeeded"}});
  CHECK(read_file(dir / (".sluice/runs/" + id + "/read/o.txt")) == "version 1\nfirst\n");
  CHECK(step_of(show_run(dir, id), "read")["outputs"]["o"]["digest"] ==
        step_of(show_run(dir, original), "read")["outputs"]["o"]["digest"]);
}
