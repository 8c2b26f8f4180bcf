// Runs whose engine died are found by their owner process and marked failed.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/recovery.h"
#include "registry/sha256.h"
#include "registry/sqlite_store.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::engine;
namespace reg = sluice::registry;

namespace {

// A pid that existed and is gone: a child that exited and was reaped.
int64_t dead_pid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

std::vector<reg::Write> running_run(const std::string& id, int64_t pid, const std::string& start, const std::string& log) {
  const int64_t T = 1'795'748'573'000;
  return {reg::PutWorkflow{.name = "wf", .digest = "sha256:w", .source = "x", .at = T},
          reg::CreateRun{.id = id, .workflow_name = "wf", .workflow_digest = "sha256:w", .status = reg::RunStatus::Running,
                         .at = T, .sluice_version = "0.1.0", .owner_pid = pid, .owner_start = start},
          reg::SetStepStatus{.run_id = id, .node = "done", .status = reg::StepStatus::Succeeded, .at = T},
          reg::SetStepStatus{.run_id = id, .node = "busy", .status = reg::StepStatus::Running, .at = T},
          reg::StartAttempt{.run_id = id, .node = "busy", .number = 1, .at = T, .log_path = log}};
}

}  // namespace

TEST_CASE("recovery: a process's start id tells it apart from a later process with its pid") {
  std::string me = process_start_id(getpid());
  REQUIRE_FALSE(me.empty());
  CHECK(me == process_start_id(getpid()));
  CHECK(owner_alive(getpid(), me));
  CHECK(owner_alive(getpid(), ""));
  CHECK_FALSE(owner_alive(getpid(), me + "0"));  // same pid, another life
  int64_t gone = dead_pid();
  CHECK(process_start_id(gone).empty());
  CHECK_FALSE(owner_alive(gone, ""));
  CHECK_FALSE(owner_alive(0, ""));
  // A child that exited but is not reaped yet (a zombie) runs nothing.
  pid_t zombie = fork();
  if (zombie == 0) _exit(0);
  const std::string start = process_start_id(zombie);  // may be read before or after it exits
  for (int i = 0; i < 500 && !process_start_id(zombie).empty(); ++i) usleep(2000);
  CHECK(process_start_id(zombie).empty());
  CHECK_FALSE(owner_alive(zombie, start));
  CHECK_FALSE(owner_alive(zombie, ""));
  int status = 0;
  waitpid(zombie, &status, 0);
}

TEST_CASE("recovery: runs whose owner is gone are failed, live ones are left alone") {
  sluice::test::ScratchDir dir;
  const std::string home = dir.path;
  auto store = reg::open_sqlite_store(home + "/sluice.db");
  const std::string log = home + "/busy.log";
  std::ofstream(log) << "half a log\n";
  int64_t gone = dead_pid();
  std::vector<reg::Write> batch = running_run("r-dead", gone, "boot 1", log);
  auto live = running_run("r-live", getpid(), process_start_id(getpid()), log);
  auto reused = running_run("r-reused", getpid(), "another life", log);
  batch.insert(batch.end(), live.begin() + 1, live.end());
  batch.insert(batch.end(), reused.begin() + 1, reused.end());
  store->apply(batch);

  std::vector<std::string> recovered = recover_dead_runs(*store, home);
  CHECK(recovered == std::vector<std::string>{"r-dead", "r-reused"});
  const std::string why = "engine died (pid " + std::to_string(gone) + ")";
  auto run = store->run("r-dead");
  CHECK(run->status == reg::RunStatus::Failed);
  CHECK(run->error == why);
  CHECK(store->step("r-dead", "done")->status == reg::StepStatus::Succeeded);  // what finished stays finished
  auto busy = store->step("r-dead", "busy");
  CHECK(busy->status == reg::StepStatus::Failed);
  CHECK(busy->error == why);
  auto attempt = store->attempts("r-dead", "busy").at(0);
  CHECK(attempt.status == reg::AttemptStatus::Failed);
  CHECK(attempt.error == why);
  CHECK(attempt.log_digest == "sha256:" + sluice::registry::sha256_hex("half a log\n"));  // the log is kept
  CHECK(store->events("r-dead").back().kind == "run_recovered");
  CHECK(store->run("r-live")->status == reg::RunStatus::Running);
  CHECK(store->run("r-reused")->error == "engine died (pid " + std::to_string(getpid()) + ")");
  // Idempotent: nothing left to recover.
  CHECK(recover_dead_runs(*store, home).empty());
}

TEST_CASE("recovery: engine_died tells a dead run from a live or an ordinarily finished one") {
  sluice::test::ScratchDir dir;
  const std::string home = dir.path;
  auto store = reg::open_sqlite_store(home + "/sluice.db");
  const int64_t gone = dead_pid();
  store->apply(running_run("dead", gone, "", ""));
  store->apply(running_run("alive", getpid(), process_start_id(getpid()), ""));
  store->apply(running_run("failed", gone, "", ""));
  store->apply({reg::SetRunStatus{.run_id = "failed", .status = reg::RunStatus::Failed, .at = 2, .error = "x"},
                reg::AddEvent{.run_id = "failed", .at = 2, .kind = "run_finished"}});
  CHECK(engine_died(*store, *store->run("dead")));  // running, owner gone
  CHECK_FALSE(engine_died(*store, *store->run("alive")));
  CHECK_FALSE(engine_died(*store, *store->run("failed")));  // failed by itself
  // Recovery fails the dead run; it still counts as dead (its last event says so).
  CHECK(recover_dead_runs(*store, home) == std::vector<std::string>{"dead"});
  auto dead = store->run("dead");
  CHECK(dead->status == reg::RunStatus::Failed);
  CHECK(dead->error == engine_died_error(gone));
  CHECK(is_engine_died_error(dead->error));
  CHECK_FALSE(is_engine_died_error("exit code 1"));
  CHECK(engine_died(*store, *dead));
  // Once a run was taken over (here: by this live process), recovery leaves it.
  store->apply(running_run("taken", gone, "", ""));
  store->apply({reg::ResumeRun{.run_id = "taken", .dead_pid = gone, .pid = getpid(), .start = process_start_id(getpid()),
                               .at = 3}});
  CHECK(recover_dead_runs(*store, home).empty());
  CHECK(store->run("taken")->status == reg::RunStatus::Running);
  CHECK_FALSE(engine_died(*store, *store->run("taken")));
}
