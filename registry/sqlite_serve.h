#pragma once
// The SQL behind the Store's `sluice serve` writes and reads (schema version
// 2: tokens, idempotency keys, webhook deliveries, schedules, the run queue).
// Internal to registry/: SqliteStore forwards to these, inside its
// transaction for writes.
#include <optional>
#include <string>
#include <vector>

#include "registry/store.h"

namespace sluice::registry {

class Db;

namespace serve_sql {

void put(Db& db, const PutToken& w);
void put(Db& db, const RevokeToken& w);
void put(Db& db, const PutIdempotencyKey& w);
void put(Db& db, const ExpireIdempotencyKeys& w);
void put(Db& db, const PutDelivery& w);
void put(Db& db, const PutSchedule& w);
void put(Db& db, const FireSchedule& w);
void put(Db& db, const MarkDeadlineMissed& w);
void put(Db& db, const SkipFires& w);
void put(Db& db, const QueueRun& w);
void put(Db& db, const ClaimQueuedRun& w);
void put(Db& db, const DequeueRun& w);

std::optional<TokenRow> token_by_hash(Db& db, const std::string& hash);
std::optional<TokenRow> token(Db& db, const std::string& id);
std::vector<TokenRow> tokens(Db& db);
std::optional<IdempotencyRow> idempotency_key(Db& db, const std::string& token_id, const std::string& key);
std::optional<DeliveryRow> delivery(Db& db, const std::string& id);
std::optional<ScheduleRow> schedule(Db& db, const std::string& workflow);
std::vector<ScheduleRow> schedules(Db& db);
std::vector<FireRow> fires(Db& db, const std::string& workflow, int limit);
std::vector<QueueRow> run_queue(Db& db);
std::vector<QueueRow> unclaimed_runs(Db& db, int limit);
int64_t count_unclaimed(Db& db);
std::optional<QueueRow> queued_run(Db& db, const std::string& run_id);
std::vector<RunCount> count_runs(Db& db);
std::vector<FinishedStep> finished_steps(Db& db, int64_t after, int limit);
// The newest run of `workflow` in which `step` succeeded; "" if none.
std::string last_succeeded_run(Db& db, const std::string& workflow, const std::string& step);

}  // namespace serve_sql
}  // namespace sluice::registry
