#include "registry/sqlite_serve.h"

#include "registry/db.h"

namespace sluice::registry::serve_sql {
namespace {

std::optional<std::string_view> opt(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return std::string_view(s);
}

template <class E>
E decode(std::optional<E> value, const std::string& text, const char* what) {
  if (!value) throw StoreError("unknown " + std::string(what) + " '" + text + "' in the database");
  return *value;
}

constexpr const char* kTokenCols =
    "SELECT id, scope, workflow, description, created_at, expires_at, revoked_at FROM api_tokens";

TokenRow read_token(const Stmt& s) {
  return TokenRow{s.text(0),     decode(parse_token_scope(s.text(1)), s.text(1), "token scope"),
                  s.text(2),     s.text(3),
                  s.int64(4),    s.opt_int64(5),
                  s.opt_int64(6)};
}

constexpr const char* kScheduleCols =
    "SELECT workflow, cron, timezone, on_dst_gap, on_dst_repeat, watermark, last_fire, last_run, fires, missed, "
    "updated_at, (SELECT count(*) FROM schedule_fires f WHERE f.workflow = schedules.workflow AND "
    "f.deadline_missed_at IS NOT NULL) FROM schedules";

ScheduleRow read_schedule(const Stmt& s) {
  ScheduleRow r;
  r.workflow = s.text(0);
  r.cron = s.text(1);
  r.timezone = s.text(2);
  r.on_dst_gap = s.text(3);
  r.on_dst_repeat = s.text(4);
  r.watermark = s.int64(5);
  r.last_fire = s.opt_int64(6);
  r.last_run = s.text(7);
  r.fires = s.int64(8);
  r.missed = s.int64(9);
  r.updated_at = s.int64(10);
  r.deadline_misses = s.int64(11);
  return r;
}

// run_queue.pid_start (schema version 4) is no longer written: the claiming
// process's identity is the run's owner_start.
constexpr const char* kQueueCols = "SELECT run_id, after_run, queued_at, pid, claimed_at FROM run_queue";

QueueRow read_queue(const Stmt& s) {
  return QueueRow{s.text(0), s.text(1), s.int64(2), s.opt_int64(3), s.opt_int64(4)};
}

}  // namespace

void put(Db& db, const PutToken& w) {
  Stmt s = db.prepare(
      "INSERT INTO api_tokens (id, hash, scope, workflow, description, created_at, expires_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING");
  s.bind(1, w.id).bind(2, w.hash).bind(3, to_string(w.scope)).bind(4, opt(w.workflow)).bind(5, opt(w.description));
  s.bind(6, w.at).bind(7, w.expires_at).run();
}

void put(Db& db, const RevokeToken& w) {
  Stmt s = db.prepare("UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1");
  s.bind(1, w.id).bind(2, w.at).run();
  if (db.changes() == 0) throw StoreError("no token '" + w.id + "'");
}

void put(Db& db, const PutIdempotencyKey& w) {
  Stmt s = db.prepare(
      "INSERT INTO idempotency_keys (token_id, key, request_hash, status, response, created_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (token_id, key) DO NOTHING");
  s.bind(1, w.token_id).bind(2, w.key).bind(3, w.request_hash).bind(4, w.status).bind(5, w.response).bind(6, w.at);
  s.run();
}

void put(Db& db, const ExpireIdempotencyKeys& w) {
  Stmt s = db.prepare("DELETE FROM idempotency_keys WHERE created_at < ?1");
  s.bind(1, w.before).run();
}

void put(Db& db, const PutDelivery& w) {
  Stmt s = db.prepare(
      "INSERT INTO webhook_deliveries (id, event, response, received_at) VALUES (?1, ?2, ?3, ?4) "
      "ON CONFLICT (id) DO NOTHING");
  s.bind(1, w.id).bind(2, w.event).bind(3, w.response).bind(4, w.at).run();
}

void put(Db& db, const PutSchedule& w) {
  Stmt s = db.prepare(
      "INSERT INTO schedules (workflow, cron, timezone, on_dst_gap, on_dst_repeat, watermark, updated_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (workflow) DO UPDATE SET cron = excluded.cron, "
      "timezone = excluded.timezone, on_dst_gap = excluded.on_dst_gap, on_dst_repeat = excluded.on_dst_repeat, "
      "updated_at = excluded.updated_at");
  s.bind(1, w.workflow).bind(2, w.cron).bind(3, w.timezone).bind(4, w.on_dst_gap).bind(5, w.on_dst_repeat);
  s.bind(6, w.watermark).bind(7, w.at).run();
}

void put(Db& db, const FireSchedule& w) {
  {
    Stmt s = db.prepare("SELECT 1 FROM schedules WHERE workflow = ?1");
    s.bind(1, w.workflow);
    if (!s.step())
      throw StoreError("no schedule for workflow '" + w.workflow + "' (a PutSchedule must create it first)");
  }
  {
    Stmt s = db.prepare(
        "INSERT INTO schedule_fires (workflow, nominal, run_id, outcome, missed, fired_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (workflow, nominal) DO NOTHING");
    s.bind(1, w.workflow).bind(2, w.nominal).bind(3, opt(w.run_id)).bind(4, to_string(w.outcome));
    s.bind(5, w.missed).bind(6, w.at).run();
  }
  if (db.changes() == 0) {
    Stmt s = db.prepare("SELECT coalesce(run_id, '') FROM schedule_fires WHERE workflow = ?1 AND nominal = ?2");
    s.bind(1, w.workflow).bind(2, w.nominal);
    std::string recorded = s.step() ? s.text(0) : std::string();
    if (recorded == w.run_id) return;  // this very fire, re-applied
    throw StoreError("the schedule of workflow '" + w.workflow + "' already fired for " + std::to_string(w.nominal) +
                     (recorded.empty() ? std::string(" (skipped)") : " (run " + recorded + ")"));
  }
  Stmt u = db.prepare(
      "UPDATE schedules SET watermark = max(watermark, ?2), "
      "last_run = CASE WHEN ?3 IS NOT NULL AND ?2 >= coalesce(last_fire, ?2) THEN ?3 ELSE last_run END, "
      "last_fire = max(coalesce(last_fire, ?2), ?2), fires = fires + 1, missed = missed + ?4, updated_at = ?5 "
      "WHERE workflow = ?1");
  u.bind(1, w.workflow).bind(2, w.nominal).bind(3, opt(w.run_id)).bind(4, w.missed).bind(5, w.at).run();
}

void put(Db& db, const MarkDeadlineMissed& w) {
  Stmt s = db.prepare(
      "UPDATE schedule_fires SET deadline_missed_at = coalesce(deadline_missed_at, ?3) "
      "WHERE workflow = ?1 AND nominal = ?2");
  s.bind(1, w.workflow).bind(2, w.nominal).bind(3, w.at).run();
}

void put(Db& db, const SkipFires& w) {
  Stmt s = db.prepare(
      "UPDATE schedules SET watermark = ?2, missed = missed + ?3, updated_at = ?4 "
      "WHERE workflow = ?1 AND watermark < ?2");
  s.bind(1, w.workflow).bind(2, w.watermark).bind(3, w.missed).bind(4, w.at).run();
}

void put(Db& db, const QueueRun& w) {
  Stmt s = db.prepare(
      "INSERT INTO run_queue (run_id, after_run, queued_at) VALUES (?1, ?2, ?3) ON CONFLICT (run_id) DO NOTHING");
  s.bind(1, w.run_id).bind(2, opt(w.after_run)).bind(3, w.at).run();
}

void put(Db& db, const ClaimQueuedRun& w) {
  Stmt s = db.prepare(
      "UPDATE run_queue SET pid = ?2, claimed_at = coalesce(claimed_at, ?4) "
      "WHERE run_id = ?1 AND (pid IS NULL OR "
      "(pid = ?2 AND EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND owner_pid = ?2 AND owner_start IS ?3)))");
  s.bind(1, w.run_id).bind(2, w.pid).bind(3, opt(w.start)).bind(4, w.at).run();
  if (db.changes() > 0) {
    Stmt o = db.prepare("UPDATE runs SET owner_pid = ?2, owner_start = ?3 WHERE id = ?1");
    o.bind(1, w.run_id).bind(2, w.pid).bind(3, opt(w.start)).run();
    return;
  }
  auto row = queued_run(db, w.run_id);
  if (!row) throw StoreError("run '" + w.run_id + "' is not on the queue (cancelled, or already done)");
  throw StoreError("run '" + w.run_id + "' was already claimed by process " + std::to_string(row->pid.value_or(0)));
}

void put(Db& db, const DequeueRun& w) {
  Stmt s = db.prepare("DELETE FROM run_queue WHERE run_id = ?1");
  s.bind(1, w.run_id).run();
}

std::optional<TokenRow> token_by_hash(Db& db, const std::string& hash) {
  Stmt s = db.prepare(std::string(kTokenCols) + " WHERE hash = ?1");
  s.bind(1, hash);
  if (!s.step()) return std::nullopt;
  return read_token(s);
}

std::optional<TokenRow> token(Db& db, const std::string& id) {
  Stmt s = db.prepare(std::string(kTokenCols) + " WHERE id = ?1");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_token(s);
}

std::vector<TokenRow> tokens(Db& db) {
  Stmt s = db.prepare(std::string(kTokenCols) + " ORDER BY created_at, id");
  std::vector<TokenRow> out;
  while (s.step()) out.push_back(read_token(s));
  return out;
}

std::optional<IdempotencyRow> idempotency_key(Db& db, const std::string& token_id, const std::string& key) {
  Stmt s = db.prepare(
      "SELECT request_hash, status, response, created_at FROM idempotency_keys WHERE token_id = ?1 AND key = ?2");
  s.bind(1, token_id).bind(2, key);
  if (!s.step()) return std::nullopt;
  return IdempotencyRow{s.text(0), static_cast<int>(s.int64(1)), s.text(2), s.int64(3)};
}

std::optional<DeliveryRow> delivery(Db& db, const std::string& id) {
  Stmt s = db.prepare("SELECT id, event, response, received_at FROM webhook_deliveries WHERE id = ?1");
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return DeliveryRow{s.text(0), s.text(1), s.text(2), s.int64(3)};
}

std::optional<ScheduleRow> schedule(Db& db, const std::string& workflow) {
  Stmt s = db.prepare(std::string(kScheduleCols) + " WHERE workflow = ?1");
  s.bind(1, workflow);
  if (!s.step()) return std::nullopt;
  return read_schedule(s);
}

std::vector<ScheduleRow> schedules(Db& db) {
  Stmt s = db.prepare(std::string(kScheduleCols) + " ORDER BY workflow");
  std::vector<ScheduleRow> out;
  while (s.step()) out.push_back(read_schedule(s));
  return out;
}

std::vector<FireRow> fires(Db& db, const std::string& workflow, int limit) {
  Stmt s = db.prepare(
      "SELECT workflow, nominal, run_id, outcome, missed, fired_at, deadline_missed_at FROM schedule_fires "
      "WHERE workflow = ?1 "
      "ORDER BY nominal DESC LIMIT ?2");
  s.bind(1, workflow).bind(2, limit);
  std::vector<FireRow> out;
  while (s.step())
    out.push_back(FireRow{s.text(0), s.int64(1), s.text(2),
                          decode(parse_fire_outcome(s.text(3)), s.text(3), "fire outcome"), s.int64(4), s.int64(5),
                          s.opt_int64(6)});
  return out;
}

std::vector<QueueRow> run_queue(Db& db) {
  Stmt s = db.prepare(std::string(kQueueCols) + " ORDER BY queued_at, run_id");
  std::vector<QueueRow> out;
  while (s.step()) out.push_back(read_queue(s));
  return out;
}

std::vector<QueueRow> unclaimed_runs(Db& db, int limit) {
  // Run ids sort by creation time, and the primary key keeps them in order:
  // no sort, and the scan stops after `limit` rows.
  Stmt s = db.prepare(std::string(kQueueCols) + " WHERE pid IS NULL ORDER BY run_id LIMIT ?1");
  s.bind(1, limit);
  std::vector<QueueRow> out;
  while (s.step()) out.push_back(read_queue(s));
  return out;
}

int64_t count_unclaimed(Db& db) {
  Stmt s = db.prepare("SELECT count(*) FROM run_queue WHERE pid IS NULL");
  s.step();
  return s.int64(0);
}

std::optional<QueueRow> queued_run(Db& db, const std::string& run_id) {
  Stmt s = db.prepare(std::string(kQueueCols) + " WHERE run_id = ?1");
  s.bind(1, run_id);
  if (!s.step()) return std::nullopt;
  return read_queue(s);
}

std::vector<RunCount> count_runs(Db& db) {
  Stmt s = db.prepare(
      "SELECT workflow_name, status, count(*) FROM runs GROUP BY workflow_name, status ORDER BY workflow_name, status");
  std::vector<RunCount> out;
  while (s.step())
    out.push_back(RunCount{s.text(0), decode(parse_run_status(s.text(1)), s.text(1), "run status"), s.int64(2)});
  return out;
}

std::vector<FinishedStep> finished_steps(Db& db, int64_t after, int limit) {
  Stmt s = db.prepare(
      "SELECT t.id, r.workflow_name, st.step, t.status, st.started_at, t.at FROM step_transitions t "
      "JOIN steps st ON st.id = t.step_id JOIN runs r ON r.id = st.run_id "
      "WHERE t.id > ?1 AND t.status IN ('succeeded', 'failed') AND st.started_at IS NOT NULL "
      "ORDER BY t.id LIMIT ?2");
  s.bind(1, after).bind(2, limit);
  std::vector<FinishedStep> out;
  while (s.step())
    out.push_back(FinishedStep{s.int64(0), s.text(1), s.text(2),
                               decode(parse_step_status(s.text(3)), s.text(3), "step status"), s.int64(4),
                               s.int64(5)});
  return out;
}

std::string last_succeeded_run(Db& db, const std::string& workflow, const std::string& step) {
  Stmt s = db.prepare(
      "SELECT r.id FROM runs r JOIN steps st ON st.run_id = r.id "
      "WHERE r.workflow_name = ?1 AND st.step = ?2 AND st.status = 'succeeded' ORDER BY r.id DESC LIMIT 1");
  s.bind(1, workflow).bind(2, step);
  return s.step() ? s.text(0) : std::string();
}

}  // namespace sluice::registry::serve_sql
