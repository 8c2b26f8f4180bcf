#include "registry/schema.h"

#include <optional>
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

// Version 2: the model registry. A model's versions count from 1; each keeps
// its artifact (never garbage-collected while the row exists), metrics, tags,
// params and lineage. An alias's whole life is in model_aliases: one row per
// holding (since .. until; until NULL = holds it now), appended and closed,
// never edited otherwise or deleted. The partial unique index makes "one
// holder per alias" a property of the database; triggers keep aliases off
// archived versions and the history append-only.
constexpr const char* kV2 = R"sql(
CREATE TABLE models (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
);

CREATE TABLE model_versions (
  id              INTEGER PRIMARY KEY,
  model_id        INTEGER NOT NULL REFERENCES models (id),
  version         INTEGER NOT NULL CHECK (version >= 1),  -- 1, 2, ... per model
  artifact_id     INTEGER NOT NULL REFERENCES artifacts (id),
  filename        TEXT NOT NULL,   -- the artifact's file or folder name when registered
  format          TEXT,            -- e.g. "xgboost-json"
  description     TEXT,
  params_json     TEXT NOT NULL DEFAULT '{}',
  -- lineage: the step that produced the artifact (NULL: not produced by a step)
  run_id          TEXT REFERENCES runs (id),
  node            TEXT,
  workflow_digest TEXT,
  git_commit      TEXT,
  -- who registered it: a step (run, node) or a person (actor)
  registered_run  TEXT REFERENCES runs (id),
  registered_node TEXT,
  actor           TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  archived_at     INTEGER,         -- NULL: not archived
  archived_by     TEXT,
  UNIQUE (model_id, version)
);
CREATE INDEX model_versions_by_artifact ON model_versions (artifact_id);

CREATE TABLE model_version_metrics (
  version_id INTEGER NOT NULL REFERENCES model_versions (id),
  name       TEXT NOT NULL,
  value      REAL,                 -- NULL = NaN
  PRIMARY KEY (version_id, name)
) WITHOUT ROWID;

CREATE TABLE model_version_tags (
  version_id INTEGER NOT NULL REFERENCES model_versions (id),
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  PRIMARY KEY (version_id, key)
) WITHOUT ROWID;

-- Lineage: the artifacts the producing step read (the data version).
CREATE TABLE model_version_inputs (
  version_id  INTEGER NOT NULL REFERENCES model_versions (id),
  name        TEXT NOT NULL,
  artifact_id INTEGER NOT NULL REFERENCES artifacts (id),
  PRIMARY KEY (version_id, name)
) WITHOUT ROWID;
CREATE INDEX model_version_inputs_by_artifact ON model_version_inputs (artifact_id);

CREATE TABLE model_aliases (
  id          INTEGER PRIMARY KEY,  -- orders an alias's history
  model_id    INTEGER NOT NULL REFERENCES models (id),
  alias       TEXT NOT NULL,
  version_id  INTEGER NOT NULL REFERENCES model_versions (id),
  since       INTEGER NOT NULL,
  until       INTEGER,              -- NULL: holds the alias now
  actor       TEXT NOT NULL,
  reason      TEXT,
  action      TEXT NOT NULL CHECK (action IN ('promote', 'rollback')),
  rollback_to INTEGER REFERENCES model_aliases (id),  -- the holding a rollback from this one returns to
  run_id      TEXT REFERENCES runs (id),              -- the step that moved it, if one did
  node        TEXT,
  CHECK (until IS NULL OR until >= since)
);
CREATE UNIQUE INDEX model_aliases_holder ON model_aliases (model_id, alias) WHERE until IS NULL;
CREATE INDEX model_aliases_history ON model_aliases (model_id, alias, id);
CREATE INDEX model_aliases_by_version ON model_aliases (version_id);

CREATE TRIGGER model_aliases_not_archived BEFORE INSERT ON model_aliases
  WHEN (SELECT archived_at FROM model_versions WHERE id = NEW.version_id) IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'an alias cannot point to an archived version'); END;
CREATE TRIGGER model_aliases_close_only BEFORE UPDATE ON model_aliases
  WHEN OLD.until IS NOT NULL OR NEW.until IS NULL OR NEW.id IS NOT OLD.id OR NEW.model_id IS NOT OLD.model_id
    OR NEW.alias IS NOT OLD.alias OR NEW.version_id IS NOT OLD.version_id OR NEW.since IS NOT OLD.since
    OR NEW.actor IS NOT OLD.actor OR NEW.reason IS NOT OLD.reason OR NEW.action IS NOT OLD.action
    OR NEW.rollback_to IS NOT OLD.rollback_to OR NEW.run_id IS NOT OLD.run_id OR NEW.node IS NOT OLD.node
  BEGIN SELECT RAISE(ABORT, 'the alias history is append-only'); END;
CREATE TRIGGER model_aliases_no_delete BEFORE DELETE ON model_aliases
  BEGIN SELECT RAISE(ABORT, 'the alias history is append-only'); END;
CREATE TRIGGER model_versions_archive_free BEFORE UPDATE OF archived_at ON model_versions
  WHEN NEW.archived_at IS NOT NULL
    AND EXISTS (SELECT 1 FROM model_aliases WHERE version_id = NEW.id AND until IS NULL)
  BEGIN SELECT RAISE(ABORT, 'a version holding an alias cannot be archived'); END;

-- Promotion decisions: what was compared, by which gate, and the outcome.
CREATE TABLE model_decisions (
  id           INTEGER PRIMARY KEY,
  model_id     INTEGER NOT NULL REFERENCES models (id),
  alias        TEXT NOT NULL,
  candidate_id INTEGER NOT NULL REFERENCES model_versions (id),
  champion_id  INTEGER REFERENCES model_versions (id),  -- NULL: the alias had no holder
  gate         TEXT,                                     -- NULL: no gate
  inputs_json  TEXT NOT NULL,                            -- {"candidate": {...}, "champion": {...}|null}
  promoted     INTEGER NOT NULL CHECK (promoted IN (0, 1)),
  reason       TEXT NOT NULL,
  actor        TEXT NOT NULL,
  run_id       TEXT REFERENCES runs (id),
  node         TEXT,
  at           INTEGER NOT NULL
);
CREATE INDEX model_decisions_by_model ON model_decisions (model_id, id);
)sql";

// Version 3: what the step cache, crash recovery and `sluice why` need. The
// owner of a running run (pid, and boot id + start time so a reused pid is
// not mistaken for it), whether the run bypassed the cache, and how the
// cache decided for each step.
constexpr const char* kV3 = R"sql(
ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
ALTER TABLE runs ADD COLUMN owner_start TEXT;
ALTER TABLE runs ADD COLUMN no_cache INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN cache_note TEXT;
)sql";

// Version 4: what `sluice serve` keeps. Tokens are stored as the SHA-256 of
// their secret. A schedule's fires are keyed by (workflow, nominal time) and
// the watermark moves in the transaction that records a fire, so a restart
// neither repeats nor loses one. The run queue holds runs the server will
// start (pid NULL) or has started (pid of the claiming `sluice run`).
constexpr const char* kV4 = R"sql(
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

// Version 5: what `sluice resume` needs to continue a run as it was started.
// The run's options beyond its params (--only/--from, --keep-going, the
// inputs a rerun pins, the results a retry reuses) as JSON, and each
// attempt's process group with an id of its leader's life (boot id + start
// time), so the step processes a dead engine left running can be ended, and
// a group id reused since is not.
constexpr const char* kV5 = R"sql(
ALTER TABLE runs ADD COLUMN options_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE attempts ADD COLUMN pgid INTEGER;
ALTER TABLE attempts ADD COLUMN pgid_start TEXT;
)sql";

// Version 6: the bytes of small files the run recorder stored in the
// artifact store without syncing them. The transaction that records such an
// artifact makes its bytes durable; a crash that loses the object's file is
// repaired from here (docs/store.md, "Small files"). NULL for every other
// artifact.
constexpr const char* kV6 = R"sql(
ALTER TABLE artifacts ADD COLUMN data BLOB;
)sql";

// Append new versions at the end; never edit a released one. A step that
// must rebuild a table (SQLite cannot alter a CHECK or a foreign key) follows
// https://sqlite.org/lang_altertable.html#otheralter: migrate() runs steps
// with foreign keys off and checks them before each commit.
constexpr Migration kMigrations[] = {
    {1, "run history: workflows, runs, steps, attempts, values, metrics, artifacts, lineage, cache, events", kV1},
    {2, "model registry: models, versions with lineage, alias history, promotion decisions", kV2},
    {3, "step cache and recovery: run owner process, --no-cache, the cache's decision per step", kV3},
    {4, "sluice serve: API tokens, idempotency keys, webhook deliveries, schedules and fires, the run queue", kV4},
    {5, "sluice resume: a run's options, each attempt's process group", kV5},
    {6, "small artifacts: the bytes of files stored without a sync of their own", kV6},
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
  // A new database takes every migration in one transaction (one commit and
  // its syncs instead of one per version: a run in a new state folder pays
  // for them); an existing one, one transaction per version, as it always did.
  std::optional<Tx> all;
  if (version == 0) all.emplace(db);
  for (const Migration& m : steps) {
    if (m.version <= version || m.version > target) continue;
    std::optional<Tx> tx;
    if (!all) tx.emplace(db);
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
    if (tx) tx->commit();
  }
  if (all) all->commit();
}

}  // namespace sluice::registry
