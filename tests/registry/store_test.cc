#include <catch2/catch.hpp>

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "registry/db.h"
#include "registry/sqlite_store.h"
#include "support/fork_children.h"

using namespace sluice::registry;

namespace {

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/sluice-store-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string db() const { return path + "/sluice.db"; }
};

int64_t count(const std::string& db_path, const std::string& table) {
  Db db(db_path);
  return db.query_int("SELECT count(*) FROM " + table);
}

std::string integrity(const std::string& db_path) {
  Db db(db_path);
  Stmt s = db.prepare("PRAGMA integrity_check");
  std::string out;
  while (s.step()) out += s.text(0) + "\n";
  return out;
}

constexpr int64_t T = 1'795'748'573'000;  // 2026-11-27 04:09:33 UTC
const std::string kRun = "20261127-040253-3fa9c1";
const std::string kWf = "sha256:" + std::string(64, 'a');
const std::string kData = "sha256:" + std::string(64, 'd');
const std::string kModel = "sha256:" + std::string(64, 'e') + ".tree";
const std::string kLog = "sha256:" + std::string(64, 'f');

std::vector<Write> workflow_and_run(const std::string& run_id, const std::string& wf = "recommender",
                                    int64_t at = T) {
  return {
      PutWorkflow{.name = wf, .digest = kWf, .source = "name = \"" + wf + "\"\n", .path = "wf.toml", .at = at},
      CreateRun{.id = run_id, .workflow_name = wf, .workflow_digest = kWf, .at = at, .sluice_version = "0.1.0"},
  };
}

// One write of every kind, in the order an executor would produce them.
std::vector<Write> full_batch() {
  return {
      PutWorkflow{.name = "recommender", .digest = kWf, .source = "name = \"recommender\"\n", .path = "wf.toml",
                  .at = T},
      CreateRun{.id = kRun,
                .workflow_name = "recommender",
                .workflow_digest = kWf,
                .params_json = R"({"min_auc":0.75})",
                .trigger = Trigger::Api,
                .status = RunStatus::Queued,
                .at = T,
                .sluice_version = "0.1.0",
                .git_commit = "3f9a1c0"},
      SetRunStatus{.run_id = kRun, .status = RunStatus::Running, .at = T + 1},
      SetStepStatus{.run_id = kRun, .node = "ingest", .step = "ingest", .status = StepStatus::Waiting, .at = T + 1},
      SetStepStatus{.run_id = kRun,
                    .node = "train[lr=0.1]",
                    .step = "train",
                    .matrix_json = R"({"lr":0.1})",
                    .status = StepStatus::Waiting,
                    .at = T + 1},
      SetStepStatus{.run_id = kRun, .node = "ingest", .status = StepStatus::Running, .at = T + 2},
      StartAttempt{.run_id = kRun, .node = "ingest", .number = 1, .at = T + 2, .log_path = "runs/r/ingest/1.log"},
      FinishAttempt{.run_id = kRun,
                    .node = "ingest",
                    .number = 1,
                    .status = AttemptStatus::Failed,
                    .at = T + 3,
                    .exit_code = 1,
                    .error = "exited with 1"},
      SetStepStatus{.run_id = kRun, .node = "ingest", .status = StepStatus::Retrying, .at = T + 3,
                    .error = "exited with 1"},
      SetStepStatus{.run_id = kRun, .node = "ingest", .status = StepStatus::Running, .at = T + 4},
      StartAttempt{.run_id = kRun, .node = "ingest", .number = 2, .at = T + 4, .log_path = "runs/r/ingest/2.log"},
      FinishAttempt{.run_id = kRun,
                    .node = "ingest",
                    .number = 2,
                    .status = AttemptStatus::Succeeded,
                    .at = T + 5,
                    .exit_code = 0,
                    .log_digest = kLog},
      SetValue{.run_id = kRun, .node = "ingest", .key = "rows", .value = "1200"},
      SetValue{.run_id = kRun, .node = "ingest", .key = "rows", .value = "1234"},  // the last write wins
      SetValue{.run_id = kRun, .node = "ingest", .key = "source", .value = "s3"},
      AddMetric{.run_id = kRun, .node = "ingest", .name = "loss", .value = 0.5, .step = 1, .at = T + 4, .seq = 1},
      AddMetric{.run_id = kRun, .node = "ingest", .name = "loss", .value = 0.25, .step = 2, .at = T + 5, .seq = 2},
      AddMetric{.run_id = kRun, .node = "ingest", .name = "auc", .value = 0.81, .at = T + 5, .seq = 3},
      PutArtifact{.digest = kData, .kind = ArtifactKind::File, .size = 4096, .at = T + 5},
      PutArtifact{.digest = kModel, .kind = ArtifactKind::Tree, .size = 1 << 20, .at = T + 5},
      AddOutput{.run_id = kRun, .node = "ingest", .name = "data", .digest = kData, .path = "interactions.csv"},
      AddKeyPart{.run_id = kRun, .node = "ingest", .part = "definition", .digest = "sha256:01"},
      AddKeyPart{.run_id = kRun, .node = "ingest", .part = "plugin:storage", .digest = "sha256:02"},
      SetStepStatus{.run_id = kRun, .node = "ingest", .status = StepStatus::Succeeded, .at = T + 5,
                    .cache_key = "sha256:ck-ingest"},
      PutCacheEntry{.cache_key = "sha256:ck-ingest", .run_id = kRun, .node = "ingest", .at = T + 5},
      SetStepStatus{.run_id = kRun, .node = "train[lr=0.1]", .status = StepStatus::Running, .at = T + 6},
      StartAttempt{.run_id = kRun, .node = "train[lr=0.1]", .number = 1, .at = T + 6},
      AddInput{.run_id = kRun,
               .node = "train[lr=0.1]",
               .name = "data",
               .digest = kData,
               .from_run = kRun,
               .from_node = "ingest",
               .from_output = "data"},
      AddInput{.run_id = kRun, .node = "train[lr=0.1]", .name = "config", .digest = kModel},
      FinishAttempt{.run_id = kRun,
                    .node = "train[lr=0.1]",
                    .number = 1,
                    .status = AttemptStatus::Cancelled,
                    .at = T + 7,
                    .signal = 15,
                    .error = "cancelled"},
      SetStepStatus{.run_id = kRun, .node = "train[lr=0.1]", .status = StepStatus::Cancelled, .at = T + 7,
                    .error = "cancelled"},
      AddEvent{.run_id = kRun, .seq = 1, .at = T + 1, .kind = "run_started"},
      AddEvent{.run_id = kRun, .seq = 2, .at = T + 2, .kind = "step_started", .node = "ingest", .message = "attempt 1"},
      SetRunStatus{.run_id = kRun, .status = RunStatus::Cancelled, .at = T + 8, .error = "interrupted"},
  };
}

// Every row count, to compare before and after a re-apply.
std::string table_counts(const std::string& db_path) {
  std::string out;
  for (const char* t : {"workflows", "runs", "steps", "step_transitions", "attempts", "step_values", "metrics",
                        "artifacts", "step_outputs", "step_inputs", "cache_entries", "cache_key_parts", "events"})
    out += std::string(t) + "=" + std::to_string(count(db_path, t)) + " ";
  return out;
}

// The message of the StoreError a batch raises ("" when it applies).
std::string error_of(Store& store, const std::vector<Write>& batch) {
  try {
    store.apply(batch);
  } catch (const StoreError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("store: every write kind round-trips") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply(full_batch());

  auto run = store->run(kRun);
  REQUIRE(run);
  CHECK(run->id == kRun);
  CHECK(run->workflow_name == "recommender");
  CHECK(run->workflow_digest == kWf);
  CHECK(run->params_json == R"({"min_auc":0.75})");
  CHECK(run->trigger == Trigger::Api);
  CHECK(run->status == RunStatus::Cancelled);
  CHECK(run->created_at == T);
  CHECK(run->started_at == T + 1);
  CHECK(run->finished_at == T + 8);
  CHECK(run->sluice_version == "0.1.0");
  CHECK(run->git_commit == "3f9a1c0");
  CHECK(run->parent_run.empty());
  CHECK(run->error == "interrupted");
  CHECK_FALSE(store->run("no-such-run"));

  auto wf = store->workflow(run->workflow_id);
  REQUIRE(wf);
  CHECK(wf->name == "recommender");
  CHECK(wf->digest == kWf);
  CHECK(wf->source == "name = \"recommender\"\n");
  CHECK(wf->path == "wf.toml");
  CHECK(wf->first_seen == T);

  auto steps = store->steps(kRun);
  REQUIRE(steps.size() == 2);
  CHECK(steps[0].node == "ingest");  // creation order
  CHECK(steps[0].step == "ingest");
  CHECK(steps[0].matrix_json == "{}");
  CHECK(steps[0].status == StepStatus::Succeeded);
  CHECK(steps[0].attempts == 2);
  CHECK(steps[0].cache_key == "sha256:ck-ingest");
  CHECK(steps[0].error.empty());
  CHECK(steps[0].started_at == T + 2);
  CHECK(steps[0].finished_at == T + 5);
  CHECK(steps[1].node == "train[lr=0.1]");
  CHECK(steps[1].step == "train");
  CHECK(steps[1].matrix_json == R"({"lr":0.1})");
  CHECK(steps[1].status == StepStatus::Cancelled);
  CHECK(steps[1].error == "cancelled");
  CHECK(store->step(kRun, "ingest")->attempts == 2);
  CHECK_FALSE(store->step(kRun, "nope"));

  auto tr = store->transitions(kRun, "ingest");
  REQUIRE(tr.size() == 5);
  CHECK(tr[0].status == StepStatus::Waiting);
  CHECK(tr[1].status == StepStatus::Running);
  CHECK(tr[2].status == StepStatus::Retrying);
  CHECK(tr[3].status == StepStatus::Running);
  CHECK(tr[4].status == StepStatus::Succeeded);
  CHECK(tr[4].at == T + 5);

  auto at = store->attempts(kRun, "ingest");
  REQUIRE(at.size() == 2);
  CHECK(at[0].number == 1);
  CHECK(at[0].status == AttemptStatus::Failed);
  CHECK(at[0].started_at == T + 2);
  CHECK(at[0].finished_at == T + 3);
  CHECK(at[0].exit_code == 1);
  CHECK_FALSE(at[0].signal);
  CHECK(at[0].log_path == "runs/r/ingest/1.log");
  CHECK(at[0].error == "exited with 1");
  CHECK(at[1].status == AttemptStatus::Succeeded);
  CHECK(at[1].exit_code == 0);
  CHECK(at[1].log_path == "runs/r/ingest/2.log");  // kept from StartAttempt
  CHECK(at[1].log_digest == kLog);
  auto train_at = store->attempts(kRun, "train[lr=0.1]");
  REQUIRE(train_at.size() == 1);
  CHECK_FALSE(train_at[0].exit_code);
  CHECK(train_at[0].signal == 15);
  CHECK(train_at[0].log_path.empty());

  auto values = store->values(kRun, "ingest");
  REQUIRE(values.size() == 2);
  CHECK(values[0].key == "rows");
  CHECK(values[0].value == "1234");
  CHECK(values[1].key == "source");

  auto metrics = store->metrics(kRun, "ingest");
  REQUIRE(metrics.size() == 3);
  CHECK(metrics[0].name == "loss");
  CHECK(metrics[0].value == 0.5);
  CHECK(metrics[0].step == 1);
  CHECK(metrics[0].at == T + 4);
  CHECK(metrics[1].value == 0.25);
  CHECK(metrics[2].name == "auc");
  CHECK_FALSE(metrics[2].step);
  CHECK(metrics[2].seq == 3);

  auto art = store->artifact(kModel);
  REQUIRE(art);
  CHECK(art->kind == ArtifactKind::Tree);
  CHECK(art->size == 1 << 20);
  CHECK(art->created_at == T + 5);

  auto outs = store->outputs(kRun, "ingest");
  REQUIRE(outs.size() == 1);
  CHECK(outs[0].name == "data");
  CHECK(outs[0].digest == kData);
  CHECK(outs[0].path == "interactions.csv");

  auto ins = store->inputs(kRun, "train[lr=0.1]");
  REQUIRE(ins.size() == 2);
  CHECK(ins[0].name == "config");
  CHECK(ins[0].from_run.empty());
  CHECK(ins[0].from_node.empty());
  CHECK(ins[1].name == "data");
  CHECK(ins[1].digest == kData);
  CHECK(ins[1].from_run == kRun);
  CHECK(ins[1].from_node == "ingest");
  CHECK(ins[1].from_output == "data");

  auto hit = store->find_cache("sha256:ck-ingest");
  REQUIRE(hit);
  CHECK(hit->run_id == kRun);
  CHECK(hit->node == "ingest");
  CHECK(hit->created_at == T + 5);

  auto parts = store->key_parts(kRun, "ingest");
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].part == "definition");
  CHECK(parts[1].part == "plugin:storage");
  CHECK(parts[1].digest == "sha256:02");

  auto events = store->events(kRun);
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == "run_started");
  CHECK(events[0].node.empty());
  CHECK(events[1].seq == 2);
  CHECK(events[1].node == "ingest");
  CHECK(events[1].message == "attempt 1");
  CHECK(events[1].id > events[0].id);
  CHECK(store->events(kRun, 1).size() == 1);
}

TEST_CASE("store: re-applying a batch changes nothing") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply(full_batch());
  std::string before = table_counts(dir.db());
  CHECK(before ==
        "workflows=1 runs=1 steps=2 step_transitions=8 attempts=3 step_values=2 metrics=3 artifacts=2 "
        "step_outputs=1 step_inputs=2 cache_entries=1 cache_key_parts=2 events=2 ");
  store->apply(full_batch());
  CHECK(table_counts(dir.db()) == before);
  // Also from another connection, which knows none of the rows' ids.
  open_sqlite_store(dir.db())->apply(full_batch());
  CHECK(table_counts(dir.db()) == before);
  // And the content is that of one application.
  CHECK(store->run(kRun)->status == RunStatus::Cancelled);
  CHECK(store->step(kRun, "ingest")->status == StepStatus::Succeeded);
  CHECK(store->attempts(kRun, "ingest")[1].status == AttemptStatus::Succeeded);
  CHECK(store->transitions(kRun, "ingest").size() == 5);
}

TEST_CASE("store: a finished run or step is not reopened by a late write") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  auto batch = workflow_and_run(kRun);
  batch.push_back(SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T + 1});
  batch.push_back(SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Succeeded, .at = T + 2});
  batch.push_back(SetRunStatus{.run_id = kRun, .status = RunStatus::Succeeded, .at = T + 3});
  store->apply(batch);
  // An earlier batch re-applied after the later one committed.
  store->apply({SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T + 1},
                SetRunStatus{.run_id = kRun, .status = RunStatus::Running, .at = T + 1}});
  CHECK(store->step(kRun, "a")->status == StepStatus::Succeeded);
  CHECK(store->step(kRun, "a")->finished_at == T + 2);
  CHECK(store->run(kRun)->status == RunStatus::Succeeded);
  CHECK(store->run(kRun)->finished_at == T + 3);
  CHECK(store->transitions(kRun, "a").size() == 2);
  // A later writer deciding another final status wins (e.g. `sluice cancel`).
  store->apply({SetRunStatus{.run_id = kRun, .status = RunStatus::Cancelled, .at = T + 9}});
  CHECK(store->run(kRun)->status == RunStatus::Cancelled);
  CHECK(store->run(kRun)->finished_at == T + 9);
}

TEST_CASE("store: a step another connection created is updated, or left alone when final") {
  TempDir dir;
  auto first = open_sqlite_store(dir.db());
  auto batch = workflow_and_run(kRun);
  batch.push_back(SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T + 1});
  batch.push_back(SetStepStatus{.run_id = kRun, .node = "done", .status = StepStatus::Running, .at = T + 1});
  batch.push_back(SetStepStatus{.run_id = kRun, .node = "done", .status = StepStatus::Succeeded, .at = T + 2});
  first->apply(batch);
  auto second = open_sqlite_store(dir.db());  // knows no step ids
  second->apply({SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Succeeded, .at = T + 3},
                 StartAttempt{.run_id = kRun, .node = "a", .number = 1, .at = T + 3},
                 SetStepStatus{.run_id = kRun, .node = "done", .status = StepStatus::Running, .at = T + 4},
                 SetStepStatus{.run_id = kRun, .node = "b", .status = StepStatus::Cached, .at = T + 4}});
  CHECK(second->step(kRun, "a")->status == StepStatus::Succeeded);
  CHECK(second->step(kRun, "a")->finished_at == T + 3);
  CHECK(second->step(kRun, "a")->attempts == 1);
  CHECK(second->transitions(kRun, "a").size() == 2);
  CHECK(second->step(kRun, "done")->status == StepStatus::Succeeded);  // final: the late write is ignored
  CHECK(second->transitions(kRun, "done").size() == 2);
  CHECK(second->step(kRun, "b")->status == StepStatus::Cached);
  CHECK(second->transitions(kRun, "b").size() == 1);
  REQUIRE(second->steps(kRun).size() == 3);
}

TEST_CASE("store: metrics and events append with seq 0 and NaN survives") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  auto batch = workflow_and_run(kRun);
  batch.push_back(SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T});
  batch.push_back(AddMetric{.run_id = kRun, .node = "a", .name = "loss", .value = std::numeric_limits<double>::quiet_NaN(), .at = T});
  batch.push_back(AddMetric{.run_id = kRun, .node = "a", .name = "loss", .value = std::numeric_limits<double>::infinity(), .at = T});
  batch.push_back(AddMetric{.run_id = kRun, .node = "a", .name = "loss", .value = -0.0, .at = T});
  batch.push_back(AddEvent{.run_id = kRun, .at = T, .kind = "a"});
  batch.push_back(AddEvent{.run_id = kRun, .at = T, .kind = "b"});
  store->apply(batch);
  store->apply({AddEvent{.run_id = kRun, .at = T, .kind = "c"}});
  auto m = store->metrics(kRun, "a");
  REQUIRE(m.size() == 3);
  CHECK(m[0].seq == 1);
  CHECK(std::isnan(m[0].value));
  CHECK(m[1].value == std::numeric_limits<double>::infinity());
  CHECK(m[2].seq == 3);
  auto ev = store->events(kRun);
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].seq == 1);
  CHECK(ev[2].seq == 3);
  CHECK(ev[2].kind == "c");
}

TEST_CASE("store: list_runs pages newest first and filters by workflow and status") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  std::vector<Write> batch;
  auto id_of = [](int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "20261127-04%04d-%06x", i, i);
    return std::string(buf);
  };
  for (const char* wf : {"alpha", "beta"})
    batch.push_back(PutWorkflow{.name = wf, .digest = kWf, .source = "", .at = T});
  for (int i = 0; i < 60; ++i) {
    std::string wf = i % 3 == 0 ? "beta" : "alpha";  // 20 beta, 40 alpha
    batch.push_back(CreateRun{.id = id_of(i), .workflow_name = wf, .workflow_digest = kWf, .at = T + i});
    if (i % 2 == 0)
      batch.push_back(SetRunStatus{.run_id = id_of(i), .status = RunStatus::Failed, .at = T + i});
  }
  store->apply(batch);

  std::vector<std::string> seen;
  RunFilter f;
  f.limit = 25;
  std::vector<size_t> sizes;
  for (int page = 0; page < 10; ++page) {
    RunPage p = store->list_runs(f);
    sizes.push_back(p.runs.size());
    for (auto& r : p.runs) seen.push_back(r.id);
    if (p.next_cursor.empty()) break;
    CHECK(p.next_cursor == p.runs.back().id);
    f.cursor = p.next_cursor;
  }
  CHECK(sizes == std::vector<size_t>{25, 25, 10});
  REQUIRE(seen.size() == 60);
  for (int i = 0; i < 60; ++i) CHECK(seen[i] == id_of(59 - i));

  // Exactly one page: no next cursor.
  f = RunFilter{};
  f.limit = 60;
  CHECK(store->list_runs(f).next_cursor.empty());

  f = RunFilter{};
  f.workflow = "beta";
  f.limit = 7;
  RunPage beta = store->list_runs(f);
  REQUIRE(beta.runs.size() == 7);
  CHECK(beta.runs[0].id == id_of(57));
  CHECK(beta.runs[1].id == id_of(54));
  f.cursor = beta.next_cursor;
  f.limit = 100;
  CHECK(store->list_runs(f).runs.size() == 13);

  f = RunFilter{};
  f.status = RunStatus::Failed;
  f.limit = 100;
  RunPage failed = store->list_runs(f);
  CHECK(failed.runs.size() == 30);
  for (auto& r : failed.runs) CHECK(r.status == RunStatus::Failed);

  f.workflow = "alpha";  // i even and i % 3 != 0: 20 runs
  RunPage both = store->list_runs(f);
  CHECK(both.runs.size() == 20);
  CHECK(both.runs[0].id == id_of(58));
  CHECK(both.next_cursor.empty());

  f = RunFilter{};
  f.workflow = "gamma";
  CHECK(store->list_runs(f).runs.empty());

  auto queued = store->runs_in_status(RunStatus::Queued);
  REQUIRE(queued.size() == 30);
  CHECK(queued.front().id == id_of(1));  // oldest first
  CHECK(queued.back().id == id_of(59));
}

TEST_CASE("store: lineage finds an artifact's producers and consumers") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply(full_batch());
  // A second run consumes the first run's output (a cache hit elsewhere).
  const std::string r2 = "20261128-000000-000002";
  auto batch = workflow_and_run(r2);
  batch.push_back(SetStepStatus{.run_id = r2, .node = "eval", .status = StepStatus::Running, .at = T + 20});
  batch.push_back(AddInput{.run_id = r2,
                           .node = "eval",
                           .name = "train_data",
                           .digest = kData,
                           .from_run = kRun,
                           .from_node = "ingest",
                           .from_output = "data"});
  batch.push_back(AddOutput{.run_id = r2, .node = "eval", .name = "model", .digest = kModel, .path = "m"});
  store->apply(batch);

  auto prod = store->producers(kData);
  REQUIRE(prod.size() == 1);
  CHECK(prod[0].run_id == kRun);
  CHECK(prod[0].node == "ingest");
  CHECK(prod[0].name == "data");
  CHECK(prod[0].path == "interactions.csv");

  auto cons = store->consumers(kData);
  REQUIRE(cons.size() == 2);
  CHECK(cons[0].run_id == kRun);
  CHECK(cons[0].node == "train[lr=0.1]");
  CHECK(cons[0].name == "data");
  CHECK(cons[1].run_id == r2);
  CHECK(cons[1].node == "eval");
  CHECK(cons[1].name == "train_data");
  CHECK(store->inputs(r2, "eval")[0].from_run == kRun);

  CHECK(store->producers(kModel).size() == 1);
  CHECK(store->consumers(kModel).size() == 1);
  CHECK(store->producers("sha256:unknown").empty());
}

TEST_CASE("store: cache lookup, key parts and last_successful") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  // Three runs of "recommender"; "train" succeeds in the first, is cached in
  // the second and fails in the third. Another workflow also has a "train".
  const std::string r1 = "20261127-000000-000001", r2 = "20261127-000000-000002", r3 = "20261127-000000-000003",
                    other = "20261127-000000-000009";
  std::vector<Write> batch;
  for (const auto& r : {r1, r2, r3}) {
    auto w = workflow_and_run(r);
    batch.insert(batch.end(), w.begin(), w.end());
  }
  auto w = workflow_and_run(other, "fraud");
  batch.insert(batch.end(), w.begin(), w.end());
  auto step = [&](const std::string& run, StepStatus s, const std::string& key) {
    batch.push_back(SetStepStatus{.run_id = run, .node = "train", .status = s, .at = T, .cache_key = key});
    batch.push_back(AddKeyPart{.run_id = run, .node = "train", .part = "definition", .digest = "d1"});
    batch.push_back(AddKeyPart{.run_id = run, .node = "train", .part = "input:data", .digest = key});
  };
  step(r1, StepStatus::Succeeded, "k1");
  batch.push_back(PutCacheEntry{.cache_key = "k1", .run_id = r1, .node = "train", .at = T});
  step(r2, StepStatus::Cached, "k1");
  step(r3, StepStatus::Failed, "k3");
  step(other, StepStatus::Succeeded, "k9");
  store->apply(batch);

  auto hit = store->find_cache("k1");
  REQUIRE(hit);
  CHECK(hit->run_id == r1);
  CHECK_FALSE(store->find_cache("k3"));

  auto parts = store->key_parts(r3, "train");
  REQUIRE(parts.size() == 2);
  CHECK(parts[1].part == "input:data");
  CHECK(parts[1].digest == "k3");

  auto last = store->last_successful("recommender", "train");
  REQUIRE(last);
  CHECK(last->run_id == r2);  // cached counts: its key equals its producer's
  CHECK(last->status == StepStatus::Cached);
  auto before = store->last_successful("recommender", "train", r2);
  REQUIRE(before);
  CHECK(before->run_id == r1);
  CHECK_FALSE(store->last_successful("recommender", "train", r1));
  CHECK_FALSE(store->last_successful("recommender", "pick"));
  CHECK(store->last_successful("fraud", "train")->run_id == other);

  // A later producer of the same key replaces the entry.
  store->apply({SetStepStatus{.run_id = r3, .node = "again", .status = StepStatus::Succeeded, .at = T + 1},
                PutCacheEntry{.cache_key = "k1", .run_id = r3, .node = "again", .at = T + 1}});
  CHECK(store->find_cache("k1")->run_id == r3);
  CHECK(store->find_cache("k1")->node == "again");
}

TEST_CASE("store: a batch that fails half-way leaves nothing") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply(workflow_and_run(kRun));
  std::string before = table_counts(dir.db());

  const std::string r2 = "20261127-050000-000002";
  std::vector<Write> batch = workflow_and_run(r2, "other");
  batch.push_back(SetStepStatus{.run_id = r2, .node = "a", .status = StepStatus::Running, .at = T});
  batch.push_back(AddMetric{.run_id = r2, .node = "a", .name = "m", .value = 1, .at = T});
  batch.push_back(AddEvent{.run_id = kRun, .at = T, .kind = "x"});
  batch.push_back(SetValue{.run_id = r2, .node = "nope", .key = "k", .value = "v"});  // no such step
  batch.push_back(SetValue{.run_id = r2, .node = "a", .key = "k", .value = "v"});
  try {
    store->apply(batch);
    FAIL("apply should have thrown");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()) ==
          "write 6 of 7 (SetValue, run 20261127-050000-000002, node nope): no step 'nope' in run "
          "'20261127-050000-000002' (a SetStepStatus must create it first)");
  }
  CHECK(table_counts(dir.db()) == before);
  CHECK_FALSE(store->run(r2));

  // A constraint SQLite finds (an event of an unknown run) names the write
  // and carries SQLite's message and the SQL.
  batch = {SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T},
           AddEvent{.run_id = "nope", .seq = 1, .at = T, .kind = "x"}};
  try {
    store->apply(batch);
    FAIL("apply should have thrown");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()) ==
          "write 2 of 2 (AddEvent, run nope): " + dir.db() +
              ": FOREIGN KEY constraint failed (sqlite error 787) in: INSERT INTO events (run_id, seq, at, kind, "
              "node, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (run_id, seq) DO NOTHING");
    CHECK(e.code() == 787);  // SQLITE_CONSTRAINT_FOREIGNKEY
    CHECK(e.sql().rfind("INSERT INTO events", 0) == 0);
  }
  CHECK(table_counts(dir.db()) == before);

  // The ids of the step and the artifact the failed batch created are not
  // remembered: later writes about them fail as if they never existed.
  batch = {SetStepStatus{.run_id = kRun, .node = "b", .status = StepStatus::Running, .at = T},
           PutArtifact{.digest = kData, .size = 3, .at = T},
           AddOutput{.run_id = kRun, .node = "b", .name = "o", .digest = kData, .path = "o"},
           AddEvent{.run_id = "nope", .seq = 1, .at = T, .kind = "x"}};
  CHECK_THROWS(store->apply(batch));
  CHECK_THROWS_WITH(store->apply({SetValue{.run_id = kRun, .node = "b", .key = "k", .value = "v"}}),
                    "write 1 of 1 (SetValue, run " + kRun + ", node b): no step 'b' in run '" + kRun +
                        "' (a SetStepStatus must create it first)");
  store->apply({SetStepStatus{.run_id = kRun, .node = "c", .status = StepStatus::Running, .at = T}});
  CHECK_THROWS_WITH(store->apply({AddOutput{.run_id = kRun, .node = "c", .name = "o", .digest = kData, .path = "o"}}),
                    "write 1 of 1 (AddOutput, run " + kRun + ", node c): no artifact " + kData +
                        " (a PutArtifact must record it first)");
  CHECK(table_counts(dir.db()) != before);  // step c

  // The store is still usable after a failed batch.
  store->apply({SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T}});
  CHECK(store->steps(kRun).size() == 2);
}

TEST_CASE("store: writes name what they need") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  auto message = [&](std::vector<Write> batch) {
    try {
      store->apply(batch);
    } catch (const StoreError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message({CreateRun{.id = "r", .workflow_name = "wf", .workflow_digest = "d", .at = T}}) ==
        "write 1 of 1 (CreateRun, run r): no workflow 'wf' with digest d (a PutWorkflow must record it first)");
  CHECK(message({SetRunStatus{.run_id = "r", .status = RunStatus::Running, .at = T}}) ==
        "write 1 of 1 (SetRunStatus, run r): no run 'r' (a CreateRun must create it first)");
  store->apply(workflow_and_run("r"));
  store->apply({SetStepStatus{.run_id = "r", .node = "a", .status = StepStatus::Running, .at = T}});
  CHECK(message({FinishAttempt{.run_id = "r", .node = "a", .number = 3, .at = T}}) ==
        "write 1 of 1 (FinishAttempt, run r, node a): attempt 3 was never started (a StartAttempt must come first)");
  CHECK(message({AddInput{.run_id = "r", .node = "a", .name = "x", .digest = "d", .from_run = "r", .from_node = "b"}}) ==
        "write 1 of 1 (AddInput, run r, node a): no step 'b' in run 'r' (a SetStepStatus must create it first)");
  CHECK(message({AddOutput{.run_id = "r", .node = "a", .name = "x", .digest = "sha256:0", .path = "x"}}) ==
        "write 1 of 1 (AddOutput, run r, node a): no artifact sha256:0 (a PutArtifact must record it first)");
}

using sluice::test::run_children;

TEST_CASE("store: several processes write one database") {
  TempDir dir;
  const std::string shared = "20261127-000000-shared";
  {
    auto store = open_sqlite_store(dir.db());
    store->apply(workflow_and_run(shared));
  }  // no connection may cross fork()

  constexpr int kChildren = 4, kBatches = 200;
  std::vector<int> codes = run_children(kChildren, [&](int c) {
    auto store = open_sqlite_store(dir.db());
    for (int b = 0; b < kBatches; ++b) {
      std::string run = "20261127-0" + std::to_string(c) + "0000-" + std::to_string(100000 + b);
      std::vector<Write> batch = workflow_and_run(run);  // the same workflow from every process
      batch.push_back(SetRunStatus{.run_id = run, .status = RunStatus::Running, .at = T + b});
      batch.push_back(SetStepStatus{.run_id = run, .node = "a", .status = StepStatus::Running, .at = T + b});
      batch.push_back(StartAttempt{.run_id = run, .node = "a", .number = 1, .at = T + b});
      batch.push_back(FinishAttempt{.run_id = run, .node = "a", .number = 1, .at = T + b, .exit_code = 0});
      batch.push_back(AddMetric{.run_id = run, .node = "a", .name = "m", .value = double(b), .at = T + b});
      batch.push_back(PutArtifact{.digest = kData, .size = 1, .at = T});  // the same artifact everywhere
      batch.push_back(AddOutput{.run_id = run, .node = "a", .name = "o", .digest = kData, .path = "o"});
      batch.push_back(SetStepStatus{.run_id = run, .node = "a", .status = StepStatus::Succeeded, .at = T + b});
      batch.push_back(SetRunStatus{.run_id = run, .status = RunStatus::Succeeded, .at = T + b});
      // Every process appends to one run's event log: seq must stay dense.
      batch.push_back(AddEvent{.run_id = shared, .at = T + b, .kind = "tick", .message = std::to_string(c)});
      store->apply(batch);
    }
  });
  CHECK(codes == std::vector<int>(kChildren, 0));

  CHECK(count(dir.db(), "workflows") == 1);
  CHECK(count(dir.db(), "runs") == 1 + kChildren * kBatches);
  CHECK(count(dir.db(), "steps") == kChildren * kBatches);
  CHECK(count(dir.db(), "step_transitions") == 2 * kChildren * kBatches);
  CHECK(count(dir.db(), "metrics") == kChildren * kBatches);
  CHECK(count(dir.db(), "artifacts") == 1);
  CHECK(count(dir.db(), "events") == kChildren * kBatches);
  CHECK(integrity(dir.db()) == "ok\n");
  auto store = open_sqlite_store(dir.db());
  auto events = store->events(shared);
  REQUIRE(events.size() == kChildren * kBatches);
  for (size_t i = 0; i < events.size(); ++i) REQUIRE(events[i].seq == static_cast<int64_t>(i + 1));
  CHECK(store->runs_in_status(RunStatus::Succeeded).size() == kChildren * kBatches);
  CHECK(store->producers(kData).size() == kChildren * kBatches);
}

TEST_CASE("store: processes opening a new database at once agree on its schema") {
  for (int round = 0; round < 3; ++round) {
    TempDir dir;
    std::vector<int> codes = run_children(4, [&](int c) {
      auto store = open_sqlite_store(dir.db());  // creates, switches to WAL and migrates, racing the others
      store->apply(workflow_and_run("20261127-000000-00000" + std::to_string(c)));
    });
    CHECK(codes == std::vector<int>(4, 0));
    CHECK(count(dir.db(), "runs") == 4);
    CHECK(integrity(dir.db()) == "ok\n");
  }
}

TEST_CASE("store: the database is in WAL mode with full sync and foreign keys") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  Db db(dir.db());
  Stmt s = db.prepare("PRAGMA journal_mode");
  REQUIRE(s.step());
  CHECK(s.text(0) == "wal");
  CHECK(db.query_int("PRAGMA synchronous") == 2);  // FULL
  CHECK(db.query_int("PRAGMA foreign_keys") == 1);
}

TEST_CASE("store: closing the last connection keeps the WAL, and what it holds is read back") {
  TempDir dir;
  open_sqlite_store(dir.db())->apply(workflow_and_run(kRun));  // opened, written and closed
  const std::string wal = dir.db() + "-wal";
  REQUIRE(std::filesystem::exists(wal));
  const auto size = std::filesystem::file_size(wal);
  CHECK(size > 0);  // not checkpointed away on close
  auto store = open_sqlite_store(dir.db());
  REQUIRE(store->run(kRun));
  CHECK(store->run(kRun)->workflow_name == "recommender");
}

TEST_CASE("store: prepared statements are cached and may nest") {
  Db db(":memory:");
  db.exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);");
  int64_t sum = 0;
  {
    Stmt outer = db.prepare("SELECT x FROM t ORDER BY x");
    while (outer.step()) {
      // The same SQL while it is borrowed: a second, uncached statement.
      Stmt inner = db.prepare("SELECT x FROM t ORDER BY x");
      REQUIRE(inner.step());
      sum += outer.int64(0) * 10 + inner.int64(0);
    }
  }
  CHECK(sum == 63);
  Stmt named = db.prepare("SELECT :a + :b");
  named.bind(":a", 2).bind(":b", std::optional<int>(40));
  REQUIRE(named.step());
  CHECK(named.int64(0) == 42);
  CHECK_THROWS_AS(db.prepare("SELECT 1; SELECT 2"), StoreError);
  try {
    db.exec("INSERT INTO nope VALUES (1)");
    FAIL("exec should have thrown");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()) == ":memory:: no such table: nope (sqlite error 1) in: INSERT INTO nope VALUES (1)");
    CHECK(e.sql() == "INSERT INTO nope VALUES (1)");
  }
  {
    Tx tx(db);
    db.exec("INSERT INTO t VALUES (4)");
  }  // not committed: rolled back
  CHECK(db.query_int("SELECT count(*) FROM t") == 3);
  {
    Tx tx(db);
    db.exec("INSERT INTO t VALUES (4)");
    tx.commit();
  }
  CHECK(db.query_int("SELECT count(*) FROM t") == 4);
}

TEST_CASE("store: clear_cache forgets entries by workflow and step, nothing else") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  const std::string r1 = "20261127-000000-000001", r2 = "20261127-000000-000002";
  std::vector<Write> batch = workflow_and_run(r1);
  auto w = workflow_and_run(r2, "fraud");
  batch.insert(batch.end(), w.begin(), w.end());
  auto entry = [&](const std::string& run, const std::string& node, const std::string& step, const std::string& key) {
    batch.push_back(SetStepStatus{.run_id = run, .node = node, .step = step, .status = StepStatus::Succeeded, .at = T,
                                  .cache_key = key});
    batch.push_back(AddKeyPart{.run_id = run, .node = node, .part = "command", .digest = key});
    batch.push_back(PutCacheEntry{.cache_key = key, .run_id = run, .node = node, .at = T});
  };
  entry(r1, "train[lr=0.1]", "train", "k1");
  entry(r1, "train[lr=0.2]", "train", "k2");
  entry(r1, "prep", "prep", "k3");
  entry(r2, "train", "train", "k4");
  store->apply(batch);

  CHECK(store->clear_cache("recommender", "train") == 2);  // both instances of the matrix step
  CHECK_FALSE(store->find_cache("k1"));
  CHECK_FALSE(store->find_cache("k2"));
  CHECK(store->find_cache("k3"));
  CHECK(store->find_cache("k4"));  // another workflow's "train"
  CHECK(store->clear_cache("recommender", "train") == 0);
  CHECK(store->key_parts(r1, "train[lr=0.1]").size() == 1);  // key parts stay for `sluice why`
  CHECK(store->clear_cache("recommender", "") == 1);
  CHECK(store->find_cache("k4"));
  CHECK(store->clear_cache("", "") == 1);
  CHECK_FALSE(store->find_cache("k4"));
}

TEST_CASE("store: a run's owner, --no-cache and the cache note are recorded") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply({PutWorkflow{.name = "wf", .digest = kWf, .source = "x", .at = T},
                CreateRun{.id = kRun, .workflow_name = "wf", .workflow_digest = kWf, .status = RunStatus::Running,
                          .at = T, .sluice_version = "0.1.0", .owner_pid = 31337, .owner_start = "b 12",
                          .no_cache = true},
                SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T, .cache_note = "miss"},
                SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Succeeded, .at = T + 1}});
  auto run = store->run(kRun);
  REQUIRE(run);
  CHECK(run->owner_pid == 31337);
  CHECK(run->owner_start == "b 12");
  CHECK(run->no_cache);
  CHECK(store->step(kRun, "a")->cache_note == "miss");  // a later write without a note keeps it
  store->apply({PutArtifact{.digest = kData, .size = 3, .at = T}, PutArtifact{.digest = kModel, .kind = ArtifactKind::Tree,
                                                                               .size = 9, .at = T + 5}});
  auto all = store->list_artifacts();
  REQUIRE(all.size() == 2);
  CHECK(all[0].digest == kModel);  // newest first
  CHECK(all[0].kind == ArtifactKind::Tree);
  CHECK(all[1].digest == kData);
  CHECK(all[1].size == 3);
}

TEST_CASE("store: a run's options and each attempt's process group are recorded") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  // A queued run (sluice serve) has the default options until the process
  // that claimed it creates it running with its own.
  store->apply({PutWorkflow{.name = "wf", .digest = kWf, .source = "x", .at = T},
                CreateRun{.id = kRun, .workflow_name = "wf", .workflow_digest = kWf, .status = RunStatus::Queued,
                          .at = T, .sluice_version = "0.1.0"}});
  CHECK(store->run(kRun)->options_json == "{}");
  CHECK_FALSE(store->run(kRun)->no_cache);
  const CreateRun claimed{.id = kRun, .workflow_name = "wf", .workflow_digest = kWf, .status = RunStatus::Running,
                          .at = T + 1, .sluice_version = "0.1.0", .no_cache = true,
                          .options_json = R"({"keep_going":true})"};
  store->apply({claimed, SetRunStatus{.run_id = kRun, .status = RunStatus::Running, .at = T + 1}});
  auto run = store->run(kRun);
  CHECK(run->options_json == R"({"keep_going":true})");
  CHECK(run->no_cache);
  CHECK(run->created_at == T);  // the rest as the queue created it
  // Once it runs, creating it again changes nothing.
  CreateRun again = claimed;
  again.options_json = R"({"only":"a"})";
  again.no_cache = false;
  store->apply({again});
  CHECK(store->run(kRun)->options_json == R"({"keep_going":true})");
  CHECK(store->run(kRun)->no_cache);

  store->apply({SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T + 2},
                StartAttempt{.run_id = kRun, .node = "a", .number = 1, .at = T + 2, .pgid = 4242,
                             .pgid_start = "boot 99"},
                StartAttempt{.run_id = kRun, .node = "a", .number = 2, .at = T + 3}});
  auto attempts = store->attempts(kRun, "a");
  REQUIRE(attempts.size() == 2);
  CHECK(attempts[0].pgid == 4242);
  CHECK(attempts[0].pgid_start == "boot 99");
  CHECK(attempts[1].pgid == 0);  // none recorded (a `uses` step)
  CHECK(attempts[1].pgid_start == "");
}

TEST_CASE("store: cached_result reads an entry with its outputs and values in one go") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  std::vector<Write> batch = workflow_and_run(kRun);
  batch.push_back(SetStepStatus{.run_id = kRun, .node = "train", .status = StepStatus::Succeeded, .at = T});
  batch.push_back(PutArtifact{.digest = kData, .size = 3, .at = T});
  batch.push_back(PutArtifact{.digest = kModel, .kind = ArtifactKind::Tree, .size = 9, .at = T});
  batch.push_back(AddOutput{.run_id = kRun, .node = "train", .name = "model", .digest = kModel, .path = "m"});
  batch.push_back(AddOutput{.run_id = kRun, .node = "train", .name = "data", .digest = kData, .path = "d.csv"});
  batch.push_back(SetValue{.run_id = kRun, .node = "train", .key = "auc", .value = "0.9"});
  batch.push_back(PutCacheEntry{.cache_key = "k", .run_id = kRun, .node = "train", .at = T + 1});
  batch.push_back(SetStepStatus{.run_id = kRun, .node = "bare", .status = StepStatus::Succeeded, .at = T});
  batch.push_back(PutCacheEntry{.cache_key = "k2", .run_id = kRun, .node = "bare", .at = T + 2});
  store->apply(batch);
  auto r = store->cached_result("k");
  REQUIRE(r);
  CHECK(r->entry.run_id == kRun);
  CHECK(r->entry.node == "train");
  CHECK(r->entry.created_at == T + 1);
  REQUIRE(r->outputs.size() == 2);
  CHECK(r->outputs[0].name == "data");
  CHECK(r->outputs[0].digest == kData);
  CHECK(r->outputs[0].path == "d.csv");
  CHECK(r->outputs[1].digest == kModel);
  REQUIRE(r->values.size() == 1);
  CHECK(r->values[0].value == "0.9");
  auto bare = store->cached_result("k2");  // an entry with no outputs or values
  REQUIRE(bare);
  CHECK(bare->entry.node == "bare");
  CHECK(bare->outputs.empty());
  CHECK_FALSE(store->cached_result("nope"));
}

TEST_CASE("store: cached_results_of_run reads the entries under the keys a run's steps recorded") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  const std::string first = "20261127-040253-000001", second = "20261127-040253-000002", third = "20261127-040253-000003";
  // The first run executes train (key k1, outputs and a value) and eval (k2).
  std::vector<Write> batch = workflow_and_run(first);
  batch.push_back(PutArtifact{.digest = kData, .size = 3, .at = T});
  batch.push_back(PutArtifact{.digest = kModel, .kind = ArtifactKind::Tree, .size = 9, .at = T});
  batch.push_back(SetStepStatus{.run_id = first, .node = "train", .status = StepStatus::Succeeded, .at = T, .cache_key = "k1"});
  batch.push_back(AddOutput{.run_id = first, .node = "train", .name = "model", .digest = kModel, .path = "m"});
  batch.push_back(AddOutput{.run_id = first, .node = "train", .name = "data", .digest = kData, .path = "d.csv"});
  batch.push_back(SetValue{.run_id = first, .node = "train", .key = "auc", .value = "0.9"});
  batch.push_back(PutCacheEntry{.cache_key = "k1", .run_id = first, .node = "train", .at = T + 1});
  batch.push_back(SetStepStatus{.run_id = first, .node = "eval", .status = StepStatus::Succeeded, .at = T, .cache_key = "k2"});
  batch.push_back(PutCacheEntry{.cache_key = "k2", .run_id = first, .node = "eval", .at = T + 2});
  store->apply(batch);
  // The second run restores train from the cache (its key points at the first
  // run's entry) and runs eval under a new key with no entry.
  batch = workflow_and_run(second, "recommender", T + 10);
  batch.push_back(SetStepStatus{.run_id = second, .node = "train", .status = StepStatus::Cached, .at = T + 10, .cache_key = "k1"});
  batch.push_back(SetStepStatus{.run_id = second, .node = "eval", .status = StepStatus::Failed, .at = T + 10, .cache_key = "k3"});
  // Another instance with train's key: the entry, its outputs and values once.
  batch.push_back(SetStepStatus{.run_id = second, .node = "train2", .status = StepStatus::Cached, .at = T + 10, .cache_key = "k1"});
  store->apply(batch);
  store->apply(workflow_and_run(third, "other", T + 20));

  CHECK(store->previous_run("recommender", third) == second);
  CHECK(store->previous_run("recommender", second) == first);
  CHECK(store->previous_run("recommender", first) == "");
  CHECK(store->previous_run("other", third) == "");

  auto of_second = store->cached_results_of_run(second);
  REQUIRE(of_second.size() == 1);  // k3 has no entry
  CHECK(of_second[0].entry.cache_key == "k1");
  CHECK(of_second[0].entry.run_id == first);
  CHECK(of_second[0].entry.node == "train");
  CHECK(of_second[0].entry.created_at == T + 1);
  REQUIRE(of_second[0].outputs.size() == 2);
  CHECK(of_second[0].outputs[0].name == "data");
  CHECK(of_second[0].outputs[0].digest == kData);
  CHECK(of_second[0].outputs[0].path == "d.csv");
  CHECK(of_second[0].outputs[1].digest == kModel);
  REQUIRE(of_second[0].values.size() == 1);
  CHECK(of_second[0].values[0].key == "auc");
  CHECK(of_second[0].values[0].value == "0.9");

  auto of_first = store->cached_results_of_run(first);
  REQUIRE(of_first.size() == 2);
  std::map<std::string, CachedResult> by_key;
  for (auto& r : of_first) by_key[r.entry.cache_key] = r;
  CHECK(by_key["k1"].outputs.size() == 2);
  CHECK(by_key["k2"].entry.node == "eval");
  CHECK(by_key["k2"].outputs.empty());
  CHECK(by_key["k2"].values.empty());
  CHECK(store->cached_results_of_run(third).empty());
}

// The entries' outputs and values are read by step id range when the
// entries' steps lie close together, and entry by entry when other steps lie
// between them: both ways give the same results, and never another step's.
TEST_CASE("store: cached_results_of_run gives the same entries whether their steps are close together or far apart") {
  for (int fillers : {3, 600}) {
    CAPTURE(fillers);
    TempDir dir;
    auto store = open_sqlite_store(dir.db());
    const std::string a = "20261127-040253-000001", b = "20261127-040253-000002", c = "20261127-040253-000003";
    std::vector<Write> batch = workflow_and_run(a);
    batch.push_back(PutArtifact{.digest = kData, .size = 3, .at = T});
    batch.push_back(PutArtifact{.digest = kModel, .kind = ArtifactKind::Tree, .size = 9, .at = T});
    batch.push_back(SetStepStatus{.run_id = a, .node = "early", .status = StepStatus::Succeeded, .at = T, .cache_key = "k1"});
    batch.push_back(AddOutput{.run_id = a, .node = "early", .name = "data", .digest = kData, .path = "d.csv"});
    batch.push_back(SetValue{.run_id = a, .node = "early", .key = "rows", .value = "3"});
    batch.push_back(PutCacheEntry{.cache_key = "k1", .run_id = a, .node = "early", .at = T + 1});
    // Steps between the two entries' steps, with outputs and values of their own.
    for (int i = 0; i < fillers; ++i) {
      const std::string node = "filler" + std::to_string(i);
      batch.push_back(SetStepStatus{.run_id = a, .node = node, .status = StepStatus::Succeeded, .at = T});
      batch.push_back(AddOutput{.run_id = a, .node = node, .name = "data", .digest = kModel, .path = "x"});
      batch.push_back(SetValue{.run_id = a, .node = node, .key = "rows", .value = "0"});
    }
    store->apply(batch);
    batch = workflow_and_run(b, "recommender", T + 10);
    batch.push_back(SetStepStatus{.run_id = b, .node = "late", .status = StepStatus::Succeeded, .at = T + 10, .cache_key = "k2"});
    batch.push_back(AddOutput{.run_id = b, .node = "late", .name = "model", .digest = kModel, .path = "m"});
    batch.push_back(AddOutput{.run_id = b, .node = "late", .name = "data", .digest = kData, .path = "d.csv"});
    batch.push_back(SetValue{.run_id = b, .node = "late", .key = "auc", .value = "0.9"});
    batch.push_back(SetValue{.run_id = b, .node = "late", .key = "acc", .value = "0.8"});
    batch.push_back(PutCacheEntry{.cache_key = "k2", .run_id = b, .node = "late", .at = T + 11});
    store->apply(batch);
    // The run whose keys are read: both steps restored from the two entries.
    batch = workflow_and_run(c, "recommender", T + 20);
    batch.push_back(SetStepStatus{.run_id = c, .node = "early", .status = StepStatus::Cached, .at = T + 20, .cache_key = "k1"});
    batch.push_back(SetStepStatus{.run_id = c, .node = "late", .status = StepStatus::Cached, .at = T + 20, .cache_key = "k2"});
    store->apply(batch);

    std::map<std::string, CachedResult> by_key;
    for (CachedResult& r : store->cached_results_of_run(c)) by_key[r.entry.cache_key] = r;
    REQUIRE(by_key.size() == 2);
    const CachedResult& early = by_key["k1"];
    CHECK(early.entry.run_id == a);
    CHECK(early.entry.node == "early");
    REQUIRE(early.outputs.size() == 1);
    CHECK(early.outputs[0].name == "data");
    CHECK(early.outputs[0].digest == kData);
    CHECK(early.outputs[0].path == "d.csv");
    REQUIRE(early.values.size() == 1);
    CHECK(early.values[0].key == "rows");
    CHECK(early.values[0].value == "3");
    const CachedResult& late = by_key["k2"];
    CHECK(late.entry.run_id == b);
    CHECK(late.entry.created_at == T + 11);
    REQUIRE(late.outputs.size() == 2);  // in name order
    CHECK(late.outputs[0].name == "data");
    CHECK(late.outputs[0].digest == kData);
    CHECK(late.outputs[1].name == "model");
    CHECK(late.outputs[1].digest == kModel);
    CHECK(late.outputs[1].path == "m");
    REQUIRE(late.values.size() == 2);
    CHECK(late.values[0].key == "acc");
    CHECK(late.values[1].key == "auc");
    CHECK(late.values[1].value == "0.9");
  }
}

TEST_CASE("store: resume takes a dead run over once and reopens its interrupted steps") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply({PutWorkflow{.name = "wf", .digest = kWf, .source = "x", .at = T},
                CreateRun{.id = kRun, .workflow_name = "wf", .workflow_digest = kWf, .status = RunStatus::Running,
                          .at = T, .sluice_version = "0.1.0", .owner_pid = 500, .owner_start = "b 1"},
                SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T + 1},
                StartAttempt{.run_id = kRun, .node = "a", .number = 1, .at = T + 1},
                SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Failed, .at = T + 2,
                              .error = "engine died (pid 500)"},
                SetRunStatus{.run_id = kRun, .status = RunStatus::Failed, .at = T + 2, .error = "engine died (pid 500)"},
                AddEvent{.run_id = kRun, .at = T + 2, .kind = "run_recovered"}});
  CHECK(store->last_event(kRun)->kind == "run_recovered");
  CHECK_FALSE(store->last_event("no-such-run"));

  // A batch guarded by the wrong owner applies nothing.
  CHECK(error_of(*store, {ExpectOwner{.run_id = kRun, .pid = 500, .start = "b 2"},
                          AddEvent{.run_id = kRun, .at = T + 3, .kind = "x"}}) ==
        "write 1 of 2 (ExpectOwner, run " + kRun + "): run '" + kRun + "' has another owner (pid 500)");
  CHECK(store->count_events(kRun, "x") == 0);

  store->apply({ResumeRun{.run_id = kRun, .dead_pid = 500, .dead_start = "b 1", .pid = 600, .start = "b 9", .at = T + 5},
                FinishAttempt{.run_id = kRun, .node = "a", .number = 1, .status = AttemptStatus::Failed, .at = T + 5,
                              .error = "engine died (pid 500)"},
                ReopenStep{.run_id = kRun, .node = "a", .at = T + 5},
                AddEvent{.run_id = kRun, .at = T + 5, .kind = "run_resumed"}});
  auto run = store->run(kRun);
  CHECK(run->status == RunStatus::Running);
  CHECK(run->owner_pid == 600);
  CHECK(run->owner_start == "b 9");
  CHECK(run->error.empty());
  CHECK_FALSE(run->finished_at);
  CHECK(run->started_at == T);
  auto a = store->step(kRun, "a");
  CHECK(a->status == StepStatus::Waiting);
  CHECK(a->error.empty());
  CHECK_FALSE(a->finished_at);
  CHECK(a->attempts == 1);
  auto tr = store->transitions(kRun, "a");
  REQUIRE(tr.size() == 3);
  CHECK(tr[2].status == StepStatus::Waiting);
  CHECK(tr[2].at == T + 5);
  CHECK(store->count_events(kRun, "run_resumed") == 1);

  // A second process that read the same dead owner loses: nothing of its batch applies.
  CHECK(error_of(*store, {ResumeRun{.run_id = kRun, .dead_pid = 500, .dead_start = "b 1", .pid = 700, .start = "b 3",
                                    .at = T + 6},
                          AddEvent{.run_id = kRun, .at = T + 6, .kind = "run_resumed"}}) ==
        "write 1 of 2 (ResumeRun, run " + kRun + "): run '" + kRun + "' has another owner (pid 600)");
  CHECK(store->run(kRun)->owner_pid == 600);
  CHECK(store->count_events(kRun, "run_resumed") == 1);

  // The resumed step runs a new attempt and finishes; the run too.
  store->apply({SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Running, .at = T + 7},
                StartAttempt{.run_id = kRun, .node = "a", .number = 2, .at = T + 7},
                FinishAttempt{.run_id = kRun, .node = "a", .number = 2, .at = T + 8},
                SetStepStatus{.run_id = kRun, .node = "a", .status = StepStatus::Succeeded, .at = T + 8},
                SetRunStatus{.run_id = kRun, .status = RunStatus::Succeeded, .at = T + 9}});
  CHECK(store->step(kRun, "a")->attempts == 2);
  CHECK(store->attempts(kRun, "a")[0].error == "engine died (pid 500)");
  // A finished run is not taken over, whoever asks.
  CHECK(error_of(*store, {ResumeRun{.run_id = kRun, .dead_pid = 600, .dead_start = "b 9", .pid = 800, .start = "b 4",
                                    .at = T + 10}}) ==
        "write 1 of 1 (ResumeRun, run " + kRun + "): run '" + kRun + "' is neither running nor failed");
  CHECK(store->run(kRun)->status == RunStatus::Succeeded);
}
