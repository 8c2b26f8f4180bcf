// The store's `sluice serve` part: tokens, idempotency keys, deliveries,
// schedules with their fires, the run queue, and the reads behind /metrics.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>

#include "registry/sqlite_store.h"

using namespace sluice::registry;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/sluice-serve-store-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string db() const { return path + "/sluice.db"; }
};

constexpr int64_t T = 1'795'748'573'000;
const std::string kDigest = "sha256:" + std::string(64, 'a');

std::vector<Write> run_writes(const std::string& run_id, const std::string& wf = "nightly") {
  return {PutWorkflow{.name = wf, .digest = kDigest, .source = "name = \"" + wf + "\"", .at = T},
          CreateRun{.id = run_id, .workflow_name = wf, .workflow_digest = kDigest, .trigger = Trigger::Schedule,
                    .at = T, .sluice_version = "0.1.0"}};
}

std::vector<Write> fire_batch(const std::string& run_id, int64_t nominal, int64_t missed = 0) {
  std::vector<Write> b = run_writes(run_id);
  b.push_back(FireSchedule{.workflow = "nightly", .nominal = nominal, .run_id = run_id, .missed = missed, .at = T});
  b.push_back(QueueRun{.run_id = run_id, .at = T});
  return b;
}

std::string error_of(Store& store, const std::vector<Write>& batch) {
  try {
    store.apply(batch);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("serve store: tokens are found by hash, listed, and revoked once") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply({PutToken{.id = "tok_a", .hash = "h-a", .scope = TokenScope::Admin, .at = T},
                PutToken{.id = "tok_b", .hash = "h-b", .scope = TokenScope::Read, .workflow = "nightly",
                         .description = "dashboards", .at = T + 1, .expires_at = T + 1000}});
  auto b = store->token_by_hash("h-b");
  REQUIRE(b);
  CHECK(b->id == "tok_b");
  CHECK(b->scope == TokenScope::Read);
  CHECK(b->workflow == "nightly");
  CHECK(b->description == "dashboards");
  CHECK(b->expires_at == T + 1000);
  CHECK_FALSE(b->revoked_at);
  CHECK_FALSE(store->token_by_hash("h-c"));
  REQUIRE(store->tokens().size() == 2);
  CHECK(store->tokens()[0].id == "tok_a");

  store->apply({RevokeToken{.id = "tok_b", .at = T + 5}});
  store->apply({RevokeToken{.id = "tok_b", .at = T + 9}});
  CHECK(store->token("tok_b")->revoked_at == T + 5);
  CHECK(error_of(*store, {RevokeToken{.id = "tok_zz", .at = T}}) == "write 1 of 1 (RevokeToken, token tok_zz): no token 'tok_zz'");
}

TEST_CASE("serve store: an idempotency key keeps its first response until it expires") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply({PutToken{.id = "tok_a", .hash = "h-a", .scope = TokenScope::Trigger, .at = T},
                PutIdempotencyKey{.token_id = "tok_a", .key = "k", .request_hash = "r1", .status = 202,
                                  .response = "{\"run_id\":\"1\"}", .at = T}});
  store->apply({PutIdempotencyKey{.token_id = "tok_a", .key = "k", .request_hash = "r2", .status = 202,
                                  .response = "{\"run_id\":\"2\"}", .at = T + 1}});
  auto row = store->idempotency_key("tok_a", "k");
  REQUIRE(row);
  CHECK(row->request_hash == "r1");
  CHECK(row->response == "{\"run_id\":\"1\"}");
  CHECK_FALSE(store->idempotency_key("tok_b", "k"));
  store->apply({ExpireIdempotencyKeys{.before = T}});
  CHECK(store->idempotency_key("tok_a", "k"));
  store->apply({ExpireIdempotencyKeys{.before = T + 1}});
  CHECK_FALSE(store->idempotency_key("tok_a", "k"));
}

TEST_CASE("serve store: a delivery is recorded once") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply({PutDelivery{.id = "d1", .event = "push", .response = "first", .at = T}});
  store->apply({PutDelivery{.id = "d1", .event = "push", .response = "second", .at = T + 1}});
  CHECK(store->delivery("d1")->response == "first");
  CHECK(store->delivery("d1")->received_at == T);
  CHECK_FALSE(store->delivery("d2"));
}

TEST_CASE("serve store: a fire commits with its run, once per nominal time") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  store->apply({PutSchedule{.workflow = "nightly", .cron = "0 3 * * *", .timezone = "UTC", .on_dst_gap = "shift",
                            .on_dst_repeat = "first", .watermark = T, .at = T}});
  // A later load updates the definition, never the watermark.
  store->apply({PutSchedule{.workflow = "nightly", .cron = "0 4 * * *", .timezone = "Europe/Berlin",
                            .on_dst_gap = "skip", .on_dst_repeat = "both", .watermark = T + 99'000, .at = T + 1}});
  auto s = store->schedule("nightly");
  REQUIRE(s);
  CHECK(s->cron == "0 4 * * *");
  CHECK(s->timezone == "Europe/Berlin");
  CHECK(s->watermark == T);
  CHECK(s->fires == 0);

  const int64_t n1 = T + 3'600'000;
  store->apply(fire_batch("run-1", n1, 2));
  s = store->schedule("nightly");
  CHECK(s->watermark == n1);
  CHECK(s->last_fire == n1);
  CHECK(s->last_run == "run-1");
  CHECK(s->fires == 1);
  CHECK(s->missed == 2);

  // The same batch again (a retry after a crash at commit) changes nothing.
  store->apply(fire_batch("run-1", n1, 2));
  CHECK(store->schedule("nightly")->fires == 1);
  CHECK(store->schedule("nightly")->missed == 2);

  // A second run for a fire already recorded fails the whole batch: no run.
  CHECK(error_of(*store, fire_batch("run-2", n1)) ==
        "write 3 of 4 (FireSchedule, schedule nightly): the schedule of workflow 'nightly' already fired for " +
            std::to_string(n1) + " (run run-1)");
  CHECK_FALSE(store->run("run-2"));
  CHECK_FALSE(store->queued_run("run-2"));

  // A skipped fire (overlap = skip) records no run and keeps last_run.
  const int64_t n2 = n1 + 3'600'000;
  store->apply({FireSchedule{.workflow = "nightly", .nominal = n2, .outcome = FireOutcome::Skipped, .at = n2}});
  s = store->schedule("nightly");
  CHECK(s->watermark == n2);
  CHECK(s->last_fire == n2);
  CHECK(s->last_run == "run-1");
  auto fires = store->fires("nightly", 10);
  REQUIRE(fires.size() == 2);
  CHECK(fires[0].nominal == n2);
  CHECK(fires[0].outcome == FireOutcome::Skipped);
  CHECK(fires[0].run_id.empty());
  CHECK(fires[1].run_id == "run-1");
  CHECK(fires[1].missed == 2);
  CHECK_FALSE(fires[1].deadline_missed_at);

  // A deadline miss is marked once, at the first time it was seen.
  store->apply({MarkDeadlineMissed{.workflow = "nightly", .nominal = n1, .at = n1 + 50}});
  store->apply({MarkDeadlineMissed{.workflow = "nightly", .nominal = n1, .at = n1 + 90}});
  CHECK(store->fires("nightly", 10)[1].deadline_missed_at == n1 + 50);
  CHECK(store->schedule("nightly")->deadline_misses == 1);

  // Skipping past missed times counts them once and never moves back.
  store->apply({SkipFires{.workflow = "nightly", .watermark = n2 + 10'000, .missed = 3, .at = n2}});
  store->apply({SkipFires{.workflow = "nightly", .watermark = n2 + 10'000, .missed = 3, .at = n2}});
  store->apply({SkipFires{.workflow = "nightly", .watermark = n1, .missed = 5, .at = n2}});
  CHECK(store->schedule("nightly")->watermark == n2 + 10'000);
  CHECK(store->schedule("nightly")->missed == 5);

  CHECK(error_of(*store, {FireSchedule{.workflow = "weekly", .nominal = n1, .outcome = FireOutcome::Skipped}})
            .find("a PutSchedule must create it first") != std::string::npos);
}

TEST_CASE("serve store: a queued run is claimed by one process only") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  std::vector<Write> b = run_writes("run-1");
  auto more = run_writes("run-2");
  b.push_back(more[1]);
  b.push_back(QueueRun{.run_id = "run-1", .at = T});
  b.push_back(QueueRun{.run_id = "run-2", .after_run = "run-1", .at = T + 1});
  store->apply(b);
  auto q = store->run_queue();
  REQUIRE(q.size() == 2);
  CHECK(q[0].run_id == "run-1");
  CHECK(q[1].after_run == "run-1");
  CHECK_FALSE(q[0].pid);

  store->apply({ClaimQueuedRun{.run_id = "run-1", .pid = 100, .start = "boot 7", .at = T + 2}});
  store->apply({ClaimQueuedRun{.run_id = "run-1", .pid = 100, .start = "boot 7", .at = T + 3}});  // the same process again
  auto row = store->queued_run("run-1");
  REQUIRE(row);
  CHECK(row->pid == 100);
  CHECK(row->claimed_at == T + 2);
  // The claiming process owns the run.
  CHECK(store->run("run-1")->owner_pid == 100);
  CHECK(store->run("run-1")->owner_start == "boot 7");
  // The same pid in another life (a reused pid) is another process.
  CHECK(error_of(*store, {ClaimQueuedRun{.run_id = "run-1", .pid = 100, .start = "boot 8", .at = T + 4}}) ==
        "write 1 of 1 (ClaimQueuedRun, run run-1): run 'run-1' was already claimed by process 100");
  CHECK(store->run("run-1")->owner_start == "boot 7");

  store->apply({DequeueRun{.run_id = "run-2"}});
  CHECK(error_of(*store, {ClaimQueuedRun{.run_id = "run-2", .pid = 101, .start = "boot 1", .at = T}}) ==
        "write 1 of 1 (ClaimQueuedRun, run run-2): run 'run-2' is not on the queue (cancelled, or already done)");
  CHECK(store->run_queue().size() == 1);
}

TEST_CASE("serve store: run counts, finished steps and a step's last success feed /metrics") {
  TempDir dir;
  auto store = open_sqlite_store(dir.db());
  std::vector<Write> b = run_writes("run-1");
  auto r2 = run_writes("run-2");
  b.push_back(r2[1]);
  auto other = run_writes("run-3", "weekly");
  b.insert(b.end(), other.begin(), other.end());
  b.push_back(SetRunStatus{.run_id = "run-1", .status = RunStatus::Succeeded, .at = T + 10});
  b.push_back(SetStepStatus{.run_id = "run-1", .node = "drift", .status = StepStatus::Running, .at = T + 1});
  b.push_back(SetStepStatus{.run_id = "run-1", .node = "drift", .status = StepStatus::Succeeded, .at = T + 1501});
  b.push_back(SetStepStatus{.run_id = "run-1", .node = "never", .status = StepStatus::Failed, .at = T + 2});
  b.push_back(SetStepStatus{.run_id = "run-2", .node = "drift", .status = StepStatus::Running, .at = T + 3});
  b.push_back(SetStepStatus{.run_id = "run-2", .node = "drift", .status = StepStatus::Failed, .at = T + 4003});
  store->apply(b);

  auto counts = store->count_runs();
  REQUIRE(counts.size() == 3);
  CHECK(counts[0].workflow == "nightly");
  CHECK(counts[0].status == RunStatus::Queued);
  CHECK(counts[0].count == 1);
  CHECK(counts[1].status == RunStatus::Succeeded);
  CHECK(counts[2].workflow == "weekly");

  auto done = store->finished_steps(0, 10);
  REQUIRE(done.size() == 2);  // "never" never started
  CHECK(done[0].workflow == "nightly");
  CHECK(done[0].step == "drift");
  CHECK(done[0].finished_at - done[0].started_at == 1500);
  CHECK(done[1].status == StepStatus::Failed);
  CHECK(store->finished_steps(done[0].transition_id, 10).size() == 1);
  CHECK(store->finished_steps(done[1].transition_id, 10).empty());

  auto last = store->last_succeeded_instances("nightly", "drift");
  REQUIRE(last.size() == 1);
  CHECK(last[0].run_id == "run-1");  // run-2 is newer, but failed
  CHECK(store->last_succeeded_instances("weekly", "drift").empty());
}
