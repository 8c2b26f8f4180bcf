#include "registry/schema.h"

#include <string>

#include "registry/db.h"
#include "sluice/version.h"

namespace sluice::registry {
namespace {

// PRAGMA application_id of a sluice database: "sluc".
constexpr int64_t kApplicationId = 0x736C7563;

// Version 1: the run history. Times are ms since the epoch. A step is named
// by (run_id, node) in the API and by steps.id inside the database, which
// keeps the per-step tables (most of the rows) small; likewise an artifact
// by its digest in the API and by artifacts.id inside. Tables whose rows are
// only ever found by their primary key are WITHOUT ROWID (clustered on it).
constexpr const char* kV1 = R"sql(
PRAGMA application_id = 1936487779;

CREATE TABLE workflows (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  digest     TEXT NOT NULL,     -- sha256 of the file's bytes
  source     TEXT NOT NULL,     -- the file as it was run
  path       TEXT,              -- where it was first seen
  first_seen INTEGER NOT NULL,
  UNIQUE (name, digest)
);

CREATE TABLE runs (
  id             TEXT PRIMARY KEY,  -- "20261127-040253-3fa9c1": sorts by creation time
  workflow_id    INTEGER NOT NULL REFERENCES workflows (id),
  workflow_name  TEXT NOT NULL,     -- = workflows.name, for the listing index
  params_json    TEXT NOT NULL DEFAULT '{}',
  triggered_by   TEXT NOT NULL CHECK (triggered_by IN
                   ('cli', 'api', 'schedule', 'webhook', 'retry', 'rerun', 'resume', 'child')),
  status         TEXT NOT NULL CHECK (status IN
                   ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  status_at      INTEGER NOT NULL,  -- when status was set: later writes win
  created_at     INTEGER NOT NULL,
  started_at     INTEGER,
  finished_at    INTEGER,
  sluice_version TEXT NOT NULL,
  git_commit     TEXT,
  parent_run     TEXT REFERENCES runs (id),
  error          TEXT
) WITHOUT ROWID;
CREATE INDEX runs_by_workflow ON runs (workflow_name, id);
CREATE INDEX runs_by_status ON runs (status, id);

CREATE TABLE steps (
  id          INTEGER PRIMARY KEY,
  run_id      TEXT NOT NULL REFERENCES runs (id),
  node        TEXT NOT NULL,      -- instance name, "train[lr=0.1]"
  step        TEXT NOT NULL,      -- the workflow's step, "train"
  matrix_json TEXT NOT NULL DEFAULT '{}',
  status      TEXT NOT NULL CHECK (status IN
                ('waiting', 'running', 'retrying', 'succeeded', 'cached', 'failed', 'skipped', 'cancelled')),
  status_at   INTEGER NOT NULL,
  attempts    INTEGER NOT NULL DEFAULT 0,
  cache_key   TEXT,
  skip_reason TEXT,
  error       TEXT,
  started_at  INTEGER,
  finished_at INTEGER,
  UNIQUE (run_id, node)
);

-- Every status change of a step, with its time; id keeps the order of
-- changes within one millisecond.
CREATE TABLE step_transitions (
  id      INTEGER PRIMARY KEY,
  step_id INTEGER NOT NULL REFERENCES steps (id),
  at      INTEGER NOT NULL,
  status  TEXT NOT NULL CHECK (status IN
            ('waiting', 'running', 'retrying', 'succeeded', 'cached', 'failed', 'skipped', 'cancelled')),
  UNIQUE (step_id, at, status)
);

CREATE TABLE attempts (
  step_id     INTEGER NOT NULL REFERENCES steps (id),
  number      INTEGER NOT NULL,  -- 1, 2, ...
  status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  exit_code   INTEGER,
  signal      INTEGER,
  log_path    TEXT,
  log_digest  TEXT,              -- the log in the artifact store
  error       TEXT,
  PRIMARY KEY (step_id, number)
) WITHOUT ROWID;

CREATE TABLE step_values (
  step_id INTEGER NOT NULL REFERENCES steps (id),
  key     TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (step_id, key)
) WITHOUT ROWID;

CREATE TABLE metrics (
  step_id INTEGER NOT NULL REFERENCES steps (id),
  seq     INTEGER NOT NULL,  -- ordinal within the step
  name    TEXT NOT NULL,
  value   REAL,              -- NULL = NaN (SQLite stores NaN as NULL)
  step    INTEGER,           -- e.g. a training round
  at      INTEGER NOT NULL,
  PRIMARY KEY (step_id, seq)
) WITHOUT ROWID;

CREATE TABLE artifacts (
  id         INTEGER PRIMARY KEY,
  digest     TEXT NOT NULL UNIQUE,  -- as the artifact store writes it, "sha256:<hex>[.tree]"
  kind       TEXT NOT NULL CHECK (kind IN ('file', 'tree')),
  size       INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);

-- Lineage: which step produced and which consumed each artifact.
CREATE TABLE step_outputs (
  step_id     INTEGER NOT NULL REFERENCES steps (id),
  name        TEXT NOT NULL,
  artifact_id INTEGER NOT NULL REFERENCES artifacts (id),
  path        TEXT NOT NULL,  -- relative to the step's work dir
  PRIMARY KEY (step_id, name)
) WITHOUT ROWID;
CREATE INDEX step_outputs_by_artifact ON step_outputs (artifact_id);

CREATE TABLE step_inputs (
  step_id     INTEGER NOT NULL REFERENCES steps (id),
  name        TEXT NOT NULL,
  artifact_id INTEGER NOT NULL REFERENCES artifacts (id),
  from_step   INTEGER REFERENCES steps (id),  -- NULL: not produced by a step
  from_output TEXT,
  PRIMARY KEY (step_id, name)
) WITHOUT ROWID;
CREATE INDEX step_inputs_by_artifact ON step_inputs (artifact_id);

-- The cache: a key's latest successful producer, and the parts each step's
-- key was made of (for `sluice why`).
CREATE TABLE cache_entries (
  cache_key  TEXT PRIMARY KEY,
  step_id    INTEGER NOT NULL REFERENCES steps (id),
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE cache_key_parts (
  step_id INTEGER NOT NULL REFERENCES steps (id),
  part    TEXT NOT NULL,  -- "definition", "input:data", "plugin:storage", ...
  digest  TEXT NOT NULL,
  PRIMARY KEY (step_id, part)
) WITHOUT ROWID;

CREATE TABLE events (
  id      INTEGER PRIMARY KEY,  -- increases across runs: a cursor for tailing
  run_id  TEXT NOT NULL REFERENCES runs (id),
  seq     INTEGER NOT NULL,     -- ordinal within the run
  at      INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  node    TEXT,
  message TEXT,
  UNIQUE (run_id, seq)
);
)sql";

// Version 2: what `sluice serve` keeps. Tokens are stored as the SHA-256 of
// their secret. A schedule's fires are keyed by (workflow, nominal time) and
// the watermark moves in the transaction that records a fire, so a restart
// neither repeats nor loses one. The run queue holds runs the server will
// start (pid NULL) or has started (pid of the claiming `sluice run`).
constexpr const char* kV2 = R"sql(
CREATE TABLE api_tokens (
  id          TEXT PRIMARY KEY,      -- public: "tok_3fa9c1d2"
  hash        TEXT NOT NULL UNIQUE,  -- sha256 hex of the secret
  scope       TEXT NOT NULL CHECK (scope IN ('read', 'trigger', 'admin')),
  workflow    TEXT,                  -- NULL: every workflow
  description TEXT,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER,
  revoked_at  INTEGER
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
  token_id     TEXT NOT NULL REFERENCES api_tokens (id),
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status       INTEGER NOT NULL,
  response     TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (token_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);

CREATE TABLE webhook_deliveries (
  id          TEXT PRIMARY KEY,  -- X-GitHub-Delivery
  event       TEXT NOT NULL,
  response    TEXT NOT NULL,
  received_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE schedules (
  workflow      TEXT PRIMARY KEY,
  cron          TEXT NOT NULL,
  timezone      TEXT NOT NULL,
  on_dst_gap    TEXT NOT NULL,
  on_dst_repeat TEXT NOT NULL,
  watermark     INTEGER NOT NULL,  -- every fire time up to here has been handled
  last_fire     INTEGER,
  last_run      TEXT REFERENCES runs (id),
  fires         INTEGER NOT NULL DEFAULT 0,
  missed        INTEGER NOT NULL DEFAULT 0,
  updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE schedule_fires (
  workflow TEXT NOT NULL REFERENCES schedules (workflow),
  nominal  INTEGER NOT NULL,  -- the scheduled time
  run_id   TEXT REFERENCES runs (id),
  outcome  TEXT NOT NULL CHECK (outcome IN ('queued', 'skipped')),
  missed   INTEGER NOT NULL DEFAULT 0,
  fired_at INTEGER NOT NULL,
  deadline_missed_at INTEGER,  -- when the run was seen unfinished past the schedule's deadline
  PRIMARY KEY (workflow, nominal)
) WITHOUT ROWID;

CREATE TABLE run_queue (
  run_id     TEXT PRIMARY KEY REFERENCES runs (id),
  after_run  TEXT REFERENCES runs (id),  -- overlap = queue: waits for this run to finish
  queued_at  INTEGER NOT NULL,
  pid        INTEGER,                    -- the claiming process; NULL while queued
  pid_start  INTEGER,                    -- its start time, against pid reuse
  claimed_at INTEGER
) WITHOUT ROWID;
)sql";

// Append new versions at the end; never edit a released one. A step that
// must rebuild a table (SQLite cannot alter a CHECK or a foreign key) follows
// https://sqlite.org/lang_altertable.html#otheralter: migrate() runs steps
// with foreign keys off and checks them before each commit.
constexpr Migration kMigrations[] = {
    {1, "run history: workflows, runs, steps, attempts, values, metrics, artifacts, lineage, cache, events", kV1},
    {2, "sluice serve: API tokens, idempotency keys, webhook deliveries, schedules and fires, the run queue", kV2},
};

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

int latest_schema_version() { return static_cast<int>(std::size(kMigrations)); }

int schema_version(Db& db) { return static_cast<int>(db.query_int("PRAGMA user_version")); }

namespace {

void check_is_ours(Db& db, int version, int latest) {
  int64_t app = db.query_int("PRAGMA application_id");
  bool foreign = app != 0 && app != kApplicationId;
  if (app == 0) foreign = version != 0 || db.query_int("SELECT count(*) FROM sqlite_schema") != 0;
  if (foreign)
    throw StoreError(db.path() + ": not a sluice database (application_id " + std::to_string(app) +
                     ", user_version " + std::to_string(version) + ")");
  if (version > latest)
    throw StoreError(db.path() + ": the database has schema version " + std::to_string(version) +
                     ", newer than this sluice " SLUICE_VERSION " knows (" + std::to_string(latest) +
                     "): it was written by a later sluice; use that version or newer");
}

// Foreign keys are off while migrating (a table rebuild would otherwise
// cascade or fail half-way) and back on afterwards, whatever happens.
class ForeignKeysOff {
 public:
  explicit ForeignKeysOff(Db& db) : db_(db) { db_.exec("PRAGMA foreign_keys=OFF"); }
  ~ForeignKeysOff() {
    try {
      db_.exec("PRAGMA foreign_keys=ON");
    } catch (const StoreError&) {
    }
  }
  ForeignKeysOff(const ForeignKeysOff&) = delete;
  ForeignKeysOff& operator=(const ForeignKeysOff&) = delete;

 private:
  Db& db_;
};

}  // namespace

void migrate(Db& db, int target) { migrate(db, migrations(), target); }

void migrate(Db& db, std::span<const Migration> steps, int target) {
  int latest = static_cast<int>(steps.size());
  if (target < 0) target = latest;
  if (target > latest)
    throw StoreError(db.path() + ": no schema version " + std::to_string(target) + " (latest is " +
                     std::to_string(latest) + ")");
  if (db.in_transaction()) throw StoreError(db.path() + ": migrate() called inside a transaction");
  // Read the version and the ownership marks from one snapshot: another
  // process may commit its migration between two separate reads, and a mix of
  // before and after looks like a foreign database.
  int version = 0;
  db.exec("BEGIN");
  try {
    version = schema_version(db);
    check_is_ours(db, version, latest);
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
  db.exec("COMMIT");
  if (version >= target) return;

  ForeignKeysOff fk_off(db);
  for (const Migration& m : steps) {
    if (m.version <= version || m.version > target) continue;
    Tx tx(db);
    // Another process may have migrated while we waited for the write lock.
    int now = schema_version(db);
    check_is_ours(db, now, latest);
    if (now >= m.version) continue;
    if (now != m.version - 1)
      throw StoreError(db.path() + ": schema version " + std::to_string(now) + " cannot take migration " +
                       std::to_string(m.version));
    db.exec(m.sql);
    {
      Stmt check = db.prepare("PRAGMA foreign_key_check");
      if (check.step())
        throw StoreError(db.path() + ": migration to schema version " + std::to_string(m.version) +
                         " breaks a foreign key in table " + check.text(0));
    }
    db.exec("PRAGMA user_version = " + std::to_string(m.version));
    tx.commit();
  }
}

}  // namespace sluice::registry
