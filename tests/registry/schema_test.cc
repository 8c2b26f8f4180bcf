#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>

#include "registry/db.h"
#include "registry/model_registry.h"
#include "registry/schema.h"
#include "registry/sqlite_store.h"
#include "sluice/version.h"

using namespace sluice::registry;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/sluice-schema-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string db() const { return path + "/sluice.db"; }
};

// Each released schema version, frozen: the whole schema as it stands at that
// version (not the migration step), and sample rows written at that version.
// When a migration is added, append its version here: the full schema after
// it, rows that exercise what it added, and checks through the Store that
// they survive every later migration. Never edit an entry once released.
struct Frozen {
  int version;
  const char* schema;
  const char* rows;                    // written at this version, in its SQL
  std::function<void(Store&)> check;   // read back at the latest version
  // Rows of tables the Store does not read, read back from the file (optional).
  std::function<void(const std::string& db_path)> check_file = nullptr;
};

const char* const kSchemaV1 = R"sql(
PRAGMA application_id = 1936487779;
CREATE TABLE workflows (id INTEGER PRIMARY KEY, name TEXT NOT NULL, digest TEXT NOT NULL, source TEXT NOT NULL,
  path TEXT, first_seen INTEGER NOT NULL, UNIQUE (name, digest));
CREATE TABLE runs (id TEXT PRIMARY KEY, workflow_id INTEGER NOT NULL REFERENCES workflows (id),
  workflow_name TEXT NOT NULL, params_json TEXT NOT NULL DEFAULT '{}',
  triggered_by TEXT NOT NULL CHECK (triggered_by IN
    ('cli', 'api', 'schedule', 'webhook', 'retry', 'rerun', 'resume', 'child')),
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  status_at INTEGER NOT NULL, created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,
  sluice_version TEXT NOT NULL, git_commit TEXT, parent_run TEXT REFERENCES runs (id), error TEXT) WITHOUT ROWID;
CREATE INDEX runs_by_workflow ON runs (workflow_name, id);
CREATE INDEX runs_by_status ON runs (status, id);
CREATE TABLE steps (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (id), node TEXT NOT NULL,
  step TEXT NOT NULL, matrix_json TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL CHECK (status IN
    ('waiting', 'running', 'retrying', 'succeeded', 'cached', 'failed', 'skipped', 'cancelled')),
  status_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, cache_key TEXT, skip_reason TEXT, error TEXT,
  started_at INTEGER, finished_at INTEGER, UNIQUE (run_id, node));
CREATE TABLE step_transitions (id INTEGER PRIMARY KEY, step_id INTEGER NOT NULL REFERENCES steps (id),
  at INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN
    ('waiting', 'running', 'retrying', 'succeeded', 'cached', 'failed', 'skipped', 'cancelled')),
  UNIQUE (step_id, at, status));
CREATE TABLE attempts (step_id INTEGER NOT NULL REFERENCES steps (id), number INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
  started_at INTEGER NOT NULL, finished_at INTEGER, exit_code INTEGER, signal INTEGER, log_path TEXT,
  log_digest TEXT, error TEXT, PRIMARY KEY (step_id, number)) WITHOUT ROWID;
CREATE TABLE step_values (step_id INTEGER NOT NULL REFERENCES steps (id), key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (step_id, key)) WITHOUT ROWID;
CREATE TABLE metrics (step_id INTEGER NOT NULL REFERENCES steps (id), seq INTEGER NOT NULL, name TEXT NOT NULL,
  value REAL, step INTEGER, at INTEGER NOT NULL, PRIMARY KEY (step_id, seq)) WITHOUT ROWID;
CREATE TABLE artifacts (id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('file', 'tree')), size INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE step_outputs (step_id INTEGER NOT NULL REFERENCES steps (id), name TEXT NOT NULL,
  artifact_id INTEGER NOT NULL REFERENCES artifacts (id), path TEXT NOT NULL,
  PRIMARY KEY (step_id, name)) WITHOUT ROWID;
CREATE INDEX step_outputs_by_artifact ON step_outputs (artifact_id);
CREATE TABLE step_inputs (step_id INTEGER NOT NULL REFERENCES steps (id), name TEXT NOT NULL,
  artifact_id INTEGER NOT NULL REFERENCES artifacts (id), from_step INTEGER REFERENCES steps (id),
  from_output TEXT, PRIMARY KEY (step_id, name)) WITHOUT ROWID;
CREATE INDEX step_inputs_by_artifact ON step_inputs (artifact_id);
CREATE TABLE cache_entries (cache_key TEXT PRIMARY KEY, step_id INTEGER NOT NULL REFERENCES steps (id),
  created_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE cache_key_parts (step_id INTEGER NOT NULL REFERENCES steps (id), part TEXT NOT NULL,
  digest TEXT NOT NULL, PRIMARY KEY (step_id, part)) WITHOUT ROWID;
CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (id), seq INTEGER NOT NULL,
  at INTEGER NOT NULL, kind TEXT NOT NULL, node TEXT, message TEXT, UNIQUE (run_id, seq));
)sql";

// Version 3 (the step cache and recovery) without the model tables of version 2.
const char* const kSchemaV3Base = R"sql(
PRAGMA application_id = 1936487779;
CREATE TABLE workflows (id INTEGER PRIMARY KEY, name TEXT NOT NULL, digest TEXT NOT NULL, source TEXT NOT NULL,
  path TEXT, first_seen INTEGER NOT NULL, UNIQUE (name, digest));
CREATE TABLE runs (id TEXT PRIMARY KEY, workflow_id INTEGER NOT NULL REFERENCES workflows (id),
  workflow_name TEXT NOT NULL, params_json TEXT NOT NULL DEFAULT '{}',
  triggered_by TEXT NOT NULL CHECK (triggered_by IN
    ('cli', 'api', 'schedule', 'webhook', 'retry', 'rerun', 'resume', 'child')),
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  status_at INTEGER NOT NULL, created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,
  sluice_version TEXT NOT NULL, git_commit TEXT, parent_run TEXT REFERENCES runs (id), error TEXT,
  owner_pid INTEGER, owner_start TEXT, no_cache INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX runs_by_workflow ON runs (workflow_name, id);
CREATE INDEX runs_by_status ON runs (status, id);
CREATE TABLE steps (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (id), node TEXT NOT NULL,
  step TEXT NOT NULL, matrix_json TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL CHECK (status IN
    ('waiting', 'running', 'retrying', 'succeeded', 'cached', 'failed', 'skipped', 'cancelled')),
  status_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, cache_key TEXT, skip_reason TEXT, error TEXT,
  started_at INTEGER, finished_at INTEGER, cache_note TEXT, UNIQUE (run_id, node));
CREATE TABLE step_transitions (id INTEGER PRIMARY KEY, step_id INTEGER NOT NULL REFERENCES steps (id),
  at INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN
    ('waiting', 'running', 'retrying', 'succeeded', 'cached', 'failed', 'skipped', 'cancelled')),
  UNIQUE (step_id, at, status));
CREATE TABLE attempts (step_id INTEGER NOT NULL REFERENCES steps (id), number INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
  started_at INTEGER NOT NULL, finished_at INTEGER, exit_code INTEGER, signal INTEGER, log_path TEXT,
  log_digest TEXT, error TEXT, PRIMARY KEY (step_id, number)) WITHOUT ROWID;
CREATE TABLE step_values (step_id INTEGER NOT NULL REFERENCES steps (id), key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (step_id, key)) WITHOUT ROWID;
CREATE TABLE metrics (step_id INTEGER NOT NULL REFERENCES steps (id), seq INTEGER NOT NULL, name TEXT NOT NULL,
  value REAL, step INTEGER, at INTEGER NOT NULL, PRIMARY KEY (step_id, seq)) WITHOUT ROWID;
CREATE TABLE artifacts (id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL CHECK (kind IN ('file', 'tree')), size INTEGER NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE step_outputs (step_id INTEGER NOT NULL REFERENCES steps (id), name TEXT NOT NULL,
  artifact_id INTEGER NOT NULL REFERENCES artifacts (id), path TEXT NOT NULL,
  PRIMARY KEY (step_id, name)) WITHOUT ROWID;
CREATE INDEX step_outputs_by_artifact ON step_outputs (artifact_id);
CREATE TABLE step_inputs (step_id INTEGER NOT NULL REFERENCES steps (id), name TEXT NOT NULL,
  artifact_id INTEGER NOT NULL REFERENCES artifacts (id), from_step INTEGER REFERENCES steps (id),
  from_output TEXT, PRIMARY KEY (step_id, name)) WITHOUT ROWID;
CREATE INDEX step_inputs_by_artifact ON step_inputs (artifact_id);
CREATE TABLE cache_entries (cache_key TEXT PRIMARY KEY, step_id INTEGER NOT NULL REFERENCES steps (id),
  created_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE cache_key_parts (step_id INTEGER NOT NULL REFERENCES steps (id), part TEXT NOT NULL,
  digest TEXT NOT NULL, PRIMARY KEY (step_id, part)) WITHOUT ROWID;
CREATE TABLE events (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (id), seq INTEGER NOT NULL,
  at INTEGER NOT NULL, kind TEXT NOT NULL, node TEXT, message TEXT, UNIQUE (run_id, seq));
)sql";

const char* const kRowsV1 = R"sql(
INSERT INTO workflows (id, name, digest, source, path, first_seen)
  VALUES (1, 'v1wf', 'sha256:v1wf', 'name = "v1wf"', 'v1.toml', 1000);
INSERT INTO runs (id, workflow_id, workflow_name, params_json, triggered_by, status, status_at, created_at,
  started_at, finished_at, sluice_version, git_commit, parent_run, error)
  VALUES ('20200101-000000-000001', 1, 'v1wf', '{"a":1}', 'schedule', 'succeeded', 1003, 1000, 1001, 1003,
  '0.1.0', 'abc', NULL, NULL);
INSERT INTO steps (id, run_id, node, step, matrix_json, status, status_at, attempts, cache_key, started_at,
  finished_at) VALUES (1, '20200101-000000-000001', 'train[lr=0.1]', 'train', '{"lr":0.1}', 'succeeded', 1002, 1,
  'ck-v1', 1001, 1002);
INSERT INTO step_transitions (step_id, at, status) VALUES (1, 1001, 'running'), (1, 1002, 'succeeded');
INSERT INTO attempts (step_id, number, status, started_at, finished_at, exit_code, log_path)
  VALUES (1, 1, 'succeeded', 1001, 1002, 0, 'runs/x/train/1.log');
INSERT INTO step_values (step_id, key, value) VALUES (1, 'auc', '0.9');
INSERT INTO metrics (step_id, seq, name, value, step, at) VALUES (1, 1, 'auc', 0.9, 3, 1002);
INSERT INTO artifacts (id, digest, kind, size, created_at) VALUES (1, 'sha256:v1-model', 'file', 10, 1002);
INSERT INTO step_outputs (step_id, name, artifact_id, path) VALUES (1, 'model', 1, 'model.json');
INSERT INTO step_inputs (step_id, name, artifact_id, from_step, from_output) VALUES (1, 'warm_start', 1, 1, 'model');
INSERT INTO cache_entries (cache_key, step_id, created_at) VALUES ('ck-v1', 1, 1002);
INSERT INTO cache_key_parts (step_id, part, digest) VALUES (1, 'definition', 'sha256:def');
INSERT INTO events (run_id, seq, at, kind, node, message)
  VALUES ('20200101-000000-000001', 1, 1000, 'run_started', NULL, 'hello');
)sql";

void check_v1(Store& store) {
  const std::string run_id = "20200101-000000-000001";
  auto run = store.run(run_id);
  REQUIRE(run);
  CHECK(run->workflow_name == "v1wf");
  CHECK(run->workflow_digest == "sha256:v1wf");
  CHECK(run->trigger == Trigger::Schedule);
  CHECK(run->status == RunStatus::Succeeded);
  CHECK(run->finished_at == 1003);
  CHECK(store.workflow(run->workflow_id)->path == "v1.toml");
  auto steps = store.steps(run_id);
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].node == "train[lr=0.1]");
  CHECK(steps[0].matrix_json == R"({"lr":0.1})");
  CHECK(store.transitions(run_id, "train[lr=0.1]").size() == 2);
  CHECK(store.attempts(run_id, "train[lr=0.1]").at(0).log_path == "runs/x/train/1.log");
  CHECK(store.values(run_id, "train[lr=0.1]").at(0).value == "0.9");
  CHECK(store.metrics(run_id, "train[lr=0.1]").at(0).step == 3);
  CHECK(store.producers("sha256:v1-model").at(0).path == "model.json");
  CHECK(store.consumers("sha256:v1-model").at(0).name == "warm_start");
  CHECK(store.inputs(run_id, "train[lr=0.1]").at(0).from_node == "train[lr=0.1]");
  CHECK(store.find_cache("ck-v1")->run_id == run_id);
  CHECK(store.key_parts(run_id, "train[lr=0.1]").at(0).digest == "sha256:def");
  CHECK(store.events(run_id).at(0).message == "hello");
  CHECK(store.last_successful("v1wf", "train[lr=0.1]")->run_id == run_id);
}

// Version 2: the model registry.
const char* const kModelTables = R"sql(
CREATE TABLE models (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
CREATE TABLE model_versions (id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL REFERENCES models (id),
  version INTEGER NOT NULL CHECK (version >= 1), artifact_id INTEGER NOT NULL REFERENCES artifacts (id),
  filename TEXT NOT NULL, format TEXT, description TEXT, params_json TEXT NOT NULL DEFAULT '{}',
  run_id TEXT REFERENCES runs (id), node TEXT, workflow_digest TEXT, git_commit TEXT,
  registered_run TEXT REFERENCES runs (id), registered_node TEXT, actor TEXT NOT NULL,
  created_at INTEGER NOT NULL, archived_at INTEGER, archived_by TEXT, UNIQUE (model_id, version));
CREATE INDEX model_versions_by_artifact ON model_versions (artifact_id);
CREATE TABLE model_version_metrics (version_id INTEGER NOT NULL REFERENCES model_versions (id),
  name TEXT NOT NULL, value REAL, PRIMARY KEY (version_id, name)) WITHOUT ROWID;
CREATE TABLE model_version_tags (version_id INTEGER NOT NULL REFERENCES model_versions (id),
  key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (version_id, key)) WITHOUT ROWID;
CREATE TABLE model_version_inputs (version_id INTEGER NOT NULL REFERENCES model_versions (id),
  name TEXT NOT NULL, artifact_id INTEGER NOT NULL REFERENCES artifacts (id),
  PRIMARY KEY (version_id, name)) WITHOUT ROWID;
CREATE INDEX model_version_inputs_by_artifact ON model_version_inputs (artifact_id);
CREATE TABLE model_aliases (id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL REFERENCES models (id),
  alias TEXT NOT NULL, version_id INTEGER NOT NULL REFERENCES model_versions (id), since INTEGER NOT NULL,
  until INTEGER, actor TEXT NOT NULL, reason TEXT,
  action TEXT NOT NULL CHECK (action IN ('promote', 'rollback')),
  rollback_to INTEGER REFERENCES model_aliases (id), run_id TEXT REFERENCES runs (id), node TEXT,
  CHECK (until IS NULL OR until >= since));
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
CREATE TABLE model_decisions (id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL REFERENCES models (id),
  alias TEXT NOT NULL, candidate_id INTEGER NOT NULL REFERENCES model_versions (id),
  champion_id INTEGER REFERENCES model_versions (id), gate TEXT, inputs_json TEXT NOT NULL,
  promoted INTEGER NOT NULL CHECK (promoted IN (0, 1)), reason TEXT NOT NULL, actor TEXT NOT NULL,
  run_id TEXT REFERENCES runs (id), node TEXT, at INTEGER NOT NULL);
CREATE INDEX model_decisions_by_model ON model_decisions (model_id, id);
)sql";
const std::string kSchemaV2 = std::string(kSchemaV1) + kModelTables;
const std::string kSchemaV3 = std::string(kSchemaV3Base) + kModelTables;
// Version 4 adds what `sluice serve` keeps.
const std::string kSchemaV4 = kSchemaV3 + R"sql(
CREATE TABLE api_tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE,
  scope TEXT NOT NULL CHECK (scope IN ('read', 'trigger', 'admin')), workflow TEXT, description TEXT,
  created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER) WITHOUT ROWID;
CREATE TABLE idempotency_keys (token_id TEXT NOT NULL REFERENCES api_tokens (id), key TEXT NOT NULL,
  request_hash TEXT NOT NULL, status INTEGER NOT NULL, response TEXT NOT NULL, created_at INTEGER NOT NULL,
  PRIMARY KEY (token_id, key)) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at);
CREATE TABLE webhook_deliveries (id TEXT PRIMARY KEY, event TEXT NOT NULL, response TEXT NOT NULL,
  received_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE schedules (workflow TEXT PRIMARY KEY, cron TEXT NOT NULL, timezone TEXT NOT NULL,
  on_dst_gap TEXT NOT NULL, on_dst_repeat TEXT NOT NULL, watermark INTEGER NOT NULL, last_fire INTEGER,
  last_run TEXT REFERENCES runs (id), fires INTEGER NOT NULL DEFAULT 0, missed INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE schedule_fires (workflow TEXT NOT NULL REFERENCES schedules (workflow), nominal INTEGER NOT NULL,
  run_id TEXT REFERENCES runs (id), outcome TEXT NOT NULL CHECK (outcome IN ('queued', 'skipped')),
  missed INTEGER NOT NULL DEFAULT 0, fired_at INTEGER NOT NULL, deadline_missed_at INTEGER,
  PRIMARY KEY (workflow, nominal)) WITHOUT ROWID;
CREATE TABLE run_queue (run_id TEXT PRIMARY KEY REFERENCES runs (id), after_run TEXT REFERENCES runs (id),
  queued_at INTEGER NOT NULL, pid INTEGER, pid_start INTEGER, claimed_at INTEGER) WITHOUT ROWID;
)sql";

// Version 5 (sluice resume): a run's options, each attempt's process group.
const std::string kSchemaV5 = [] {
  std::string s = kSchemaV4;
  auto replace = [&s](const std::string& from, const std::string& to) {
    size_t at = s.find(from);
    if (at == std::string::npos || s.find(from, at + 1) != std::string::npos)
      throw std::logic_error("version 4's schema does not hold exactly one: " + from);
    s.replace(at, from.size(), to);
  };
  replace("owner_pid INTEGER, owner_start TEXT, no_cache INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;",
          "owner_pid INTEGER, owner_start TEXT, no_cache INTEGER NOT NULL DEFAULT 0,\n"
          "  options_json TEXT NOT NULL DEFAULT '{}') WITHOUT ROWID;");
  replace("log_digest TEXT, error TEXT, PRIMARY KEY (step_id, number)) WITHOUT ROWID;",
          "log_digest TEXT, error TEXT, pgid INTEGER, pgid_start TEXT, PRIMARY KEY (step_id, number)) WITHOUT ROWID;");
  return s;
}();

// Version 6 (small artifacts): the bytes of files stored without a sync.
const std::string kSchemaV6 = [] {
  std::string s = kSchemaV5;
  const std::string from = "size INTEGER NOT NULL, created_at INTEGER NOT NULL);";
  size_t at = s.find("CREATE TABLE artifacts");
  at = at == std::string::npos ? at : s.find(from, at);
  if (at == std::string::npos) throw std::logic_error("version 5's schema has no artifacts table as expected");
  s.replace(at, from.size(), "size INTEGER NOT NULL, created_at INTEGER NOT NULL,\n  data BLOB);");
  return s;
}();

const char* const kRowsV2 = R"sql(
INSERT INTO workflows (id, name, digest, source, path, first_seen)
  VALUES (2, 'v2wf', 'sha256:v2wf', 'name = "v2wf"', 'v2.toml', 2000);
INSERT INTO runs (id, workflow_id, workflow_name, triggered_by, status, status_at, created_at, sluice_version,
  git_commit) VALUES ('20200202-000000-000002', 2, 'v2wf', 'cli', 'succeeded', 2003, 2000, '0.2.0', 'def');
INSERT INTO steps (id, run_id, node, step, status, status_at) VALUES
  (2, '20200202-000000-000002', 'train', 'train', 'succeeded', 2002);
INSERT INTO artifacts (id, digest, kind, size, created_at) VALUES
  (2, 'sha256:v2-model', 'file', 20, 2002), (3, 'sha256:v2-data', 'file', 30, 2001);
INSERT INTO models (id, name, created_at) VALUES (1, 'ranker', 2004);
INSERT INTO model_versions (id, model_id, version, artifact_id, filename, format, params_json, run_id, node,
  workflow_digest, git_commit, actor, created_at) VALUES
  (1, 1, 1, 2, 'model.json', 'xgboost-json', '{"eta":0.1}', '20200202-000000-000002', 'train', 'sha256:v2wf',
   'def', 'ann', 2004),
  (2, 1, 2, 2, 'model.json', 'xgboost-json', '{}', NULL, NULL, NULL, NULL, 'bob', 2005);
INSERT INTO model_version_metrics (version_id, name, value) VALUES (1, 'auc', 0.81);
INSERT INTO model_version_tags (version_id, key, value) VALUES (1, 'team', 'search');
INSERT INTO model_version_inputs (version_id, name, artifact_id) VALUES (1, 'data', 3);
INSERT INTO model_aliases (id, model_id, alias, version_id, since, until, actor, reason, action, rollback_to)
  VALUES (1, 1, 'production', 1, 2006, 2007, 'ann', 'first', 'promote', NULL),
         (2, 1, 'production', 2, 2007, NULL, 'bob', NULL, 'promote', 1);
INSERT INTO model_decisions (model_id, alias, candidate_id, champion_id, gate, inputs_json, promoted, reason, actor,
  at) VALUES (1, 'production', 2, 1, 'true', '{}', 1, 'gate held: true', 'bob', 2007);
)sql";

void check_v2_file(const std::string& path) {
  ModelRegistry reg(path);
  auto v1 = reg.version("ranker", 1);
  REQUIRE(v1);
  CHECK(v1->digest == "sha256:v2-model");
  CHECK(v1->metric("auc") == 0.81);
  CHECK(v1->lineage.step == "train");
  CHECK(v1->lineage.workflow_name == "v2wf");
  REQUIRE(v1->lineage.inputs.size() == 1);
  CHECK(v1->lineage.inputs[0].digest == "sha256:v2-data");
  auto prod = reg.resolve("ranker", "production");
  REQUIRE(prod);
  CHECK(prod->version == 2);
  auto history = reg.history("ranker");
  REQUIRE(history);
  REQUIRE(history->size() == 2);
  CHECK(history->at(0).until == 2007);
  CHECK(history->at(1).previous_version == 1);
  CHECK(reg.decisions("ranker")->at(0).reason == "gate held: true");
  // The migrated history still rolls back, and takes new versions after the old ones.
  auto back = reg.rollback("ranker", "production", "carl");
  REQUIRE(back);
  CHECK(back->to == 1);
  CHECK(reg.referenced_digests() == std::vector<std::string>{"sha256:v2-model"});
}

const char* const kRowsV3 = R"sql(
INSERT INTO workflows (id, name, digest, source, path, first_seen)
  VALUES (3, 'v3wf', 'sha256:v3wf', 'name = "v3wf"', 'v3.toml', 3000);
INSERT INTO runs (id, workflow_id, workflow_name, params_json, triggered_by, status, status_at, created_at,
  started_at, sluice_version, owner_pid, owner_start, no_cache)
  VALUES ('20200303-000000-000003', 3, 'v3wf', '{}', 'cli', 'running', 3001, 3000, 3001, '0.1.0', 4242,
  'boot 77', 1);
INSERT INTO steps (id, run_id, node, step, status, status_at, cache_key, cache_note)
  VALUES (3, '20200303-000000-000003', 'prep', 'prep', 'cached', 3002, 'ck-v3', 'hit 20200101-000000-000001 train');
)sql";

void check_v3(Store& store) {
  const std::string run_id = "20200303-000000-000003";
  auto run = store.run(run_id);
  REQUIRE(run);
  CHECK(run->owner_pid == 4242);
  CHECK(run->owner_start == "boot 77");
  CHECK(run->no_cache);
  CHECK(store.step(run_id, "prep")->cache_note == "hit 20200101-000000-000001 train");
  // A run from version 1 has no owner and used the cache.
  auto old = store.run("20200101-000000-000001");
  REQUIRE(old);
  CHECK(old->owner_pid == 0);
  CHECK_FALSE(old->no_cache);
  CHECK(store.step(old->id, "train[lr=0.1]")->cache_note == "");
}

const char* const kRowsV4 = R"sql(
INSERT INTO workflows (id, name, digest, source, path, first_seen)
  VALUES (4, 'v4wf', 'sha256:v4wf', 'name = "v4wf"', 'v4.toml', 4000);
INSERT INTO runs (id, workflow_id, workflow_name, params_json, triggered_by, status, status_at, created_at,
  sluice_version) VALUES ('20200404-000000-000004', 4, 'v4wf', '{}', 'schedule', 'queued', 2000, 2000, '0.3.0');
INSERT INTO api_tokens (id, hash, scope, workflow, description, created_at, expires_at)
  VALUES ('tok_v4', 'hash-v4', 'trigger', 'v4wf', 'ci', 2000, 9000);
INSERT INTO idempotency_keys (token_id, key, request_hash, status, response, created_at)
  VALUES ('tok_v4', 'k1', 'rh', 202, '{"run_id":"20200404-000000-000004"}', 2000);
INSERT INTO webhook_deliveries (id, event, response, received_at) VALUES ('d-4', 'push', '{"runs":[]}', 2000);
INSERT INTO schedules (workflow, cron, timezone, on_dst_gap, on_dst_repeat, watermark, last_fire, last_run, fires,
  missed, updated_at) VALUES ('v4wf', '0 * * * *', 'UTC', 'shift', 'first', 3600000, 3600000,
  '20200404-000000-000004', 1, 2, 2000);
INSERT INTO schedule_fires (workflow, nominal, run_id, outcome, missed, fired_at)
  VALUES ('v4wf', 3600000, '20200404-000000-000004', 'queued', 2, 3600010);
INSERT INTO run_queue (run_id, after_run, queued_at) VALUES ('20200404-000000-000004', NULL, 2000);
)sql";

void check_v4(Store& store) {
  auto token = store.token_by_hash("hash-v4");
  REQUIRE(token);
  CHECK(token->id == "tok_v4");
  CHECK(token->scope == TokenScope::Trigger);
  CHECK(token->workflow == "v4wf");
  CHECK(token->expires_at == 9000);
  CHECK(store.idempotency_key("tok_v4", "k1")->status == 202);
  CHECK(store.delivery("d-4")->event == "push");
  auto sched = store.schedule("v4wf");
  REQUIRE(sched);
  CHECK(sched->watermark == 3600000);
  CHECK(sched->last_run == "20200404-000000-000004");
  CHECK(sched->missed == 2);
  CHECK(store.fires("v4wf", 10).at(0).missed == 2);
  CHECK(store.queued_run("20200404-000000-000004")->pid == std::nullopt);
}

const char* const kRowsV5 = R"sql(
INSERT INTO workflows (id, name, digest, source, path, first_seen)
  VALUES (5, 'v5wf', 'sha256:v5wf', 'name = "v5wf"', 'v5.toml', 5000);
INSERT INTO runs (id, workflow_id, workflow_name, params_json, triggered_by, status, status_at, created_at,
  started_at, sluice_version, owner_pid, owner_start, options_json)
  VALUES ('20200505-000000-000005', 5, 'v5wf', '{}', 'rerun', 'running', 5001, 5000, 5001, '0.4.0', 5151,
  'boot 55', '{"keep_going":true,"only":"train"}');
INSERT INTO steps (id, run_id, node, step, status, status_at, attempts)
  VALUES (5, '20200505-000000-000005', 'train', 'train', 'running', 5002, 1);
INSERT INTO attempts (step_id, number, status, started_at, log_path, pgid, pgid_start)
  VALUES (5, 1, 'running', 5002, 'runs/y/train/attempt-1.log', 6161, 'boot 55 1234');
)sql";

void check_v5(Store& store) {
  const std::string run_id = "20200505-000000-000005";
  auto run = store.run(run_id);
  REQUIRE(run);
  CHECK(run->options_json == R"({"keep_going":true,"only":"train"})");
  auto attempts = store.attempts(run_id, "train");
  REQUIRE(attempts.size() == 1);
  CHECK(attempts[0].pgid == 6161);
  CHECK(attempts[0].pgid_start == "boot 55 1234");
  // Runs and attempts from before version 5: default options, no group.
  auto old = store.run("20200101-000000-000001");
  REQUIRE(old);
  CHECK(old->options_json == "{}");
  auto old_attempts = store.attempts(old->id, "train[lr=0.1]");
  REQUIRE(old_attempts.size() == 1);
  CHECK(old_attempts[0].pgid == 0);
  CHECK(old_attempts[0].pgid_start == "");
}

const char* const kRowsV6 = R"sql(
INSERT INTO artifacts (id, digest, kind, size, created_at, data)
  VALUES (6, 'sha256:v6-small', 'file', 3, 6000, X'6869ff');
)sql";

void check_v6(Store& store) {
  // Artifacts from before version 6 are read as before.
  auto old = store.artifact("sha256:v2-model");
  REQUIRE(old);
  CHECK(old->size == 20);
  CHECK(store.artifact("sha256:v6-small")->size == 3);
}

void check_v6_file(const std::string& path) {
  // Rows from before version 6 keep no bytes; version 6's read back whole.
  Db db(path);
  Stmt q = db.prepare(
      "SELECT digest, data IS NULL, data FROM artifacts WHERE digest IN ('sha256:v2-model', 'sha256:v6-small') "
      "ORDER BY digest");
  REQUIRE(q.step());
  CHECK(q.text(0) == "sha256:v2-model");
  CHECK(q.int64(1) == 1);
  REQUIRE(q.step());
  CHECK(q.blob(2) == std::string("hi\xff", 3));
}

const std::vector<Frozen>& frozen() {
  static const std::vector<Frozen> versions = {
      {1, kSchemaV1, kRowsV1, check_v1},
      {2, kSchemaV2.c_str(), kRowsV2, [](Store&) {}, check_v2_file},
      {3, kSchemaV3.c_str(), kRowsV3, check_v3},
      {4, kSchemaV4.c_str(), kRowsV4, check_v4},
      {5, kSchemaV5.c_str(), kRowsV5, check_v5},
      {6, kSchemaV6.c_str(), kRowsV6, check_v6, check_v6_file},
  };
  return versions;
}

// The schema as structure, so formatting does not matter: every table
// (rowid or not), its columns, indexes and foreign keys, the normalised
// CREATE text (for CHECK constraints), and the header fields.
std::string describe(Db& db) {
  auto norm = [](const std::string& sql) {
    std::string out;
    bool space = false, comment = false;
    for (size_t i = 0; i < sql.size(); ++i) {
      char c = sql[i];
      if (comment) {
        comment = c != '\n';
        if (!comment) space = true;
        continue;
      }
      if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
        comment = true;
        continue;
      }
      if (c == ' ' || c == '\n' || c == '\t') {
        space = true;
        continue;
      }
      bool punct = c == '(' || c == ')' || c == ',';
      if (space && !out.empty() && !punct && out.back() != '(' && out.back() != ',') out += ' ';
      space = false;
      out += c;
    }
    return out;
  };
  std::string out = "application_id " + std::to_string(db.query_int("PRAGMA application_id")) + "\n";
  {
    Stmt triggers = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name");
    while (triggers.step()) out += "trigger " + triggers.text(0) + "\n  sql " + norm(triggers.text(1)) + "\n";
  }
  out += "user_version " + std::to_string(db.query_int("PRAGMA user_version")) + "\n";
  Stmt tables = db.prepare(
      "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
  while (tables.step()) {
    std::string t = tables.text(0);
    out += "table " + t + "\n  sql " + norm(tables.text(1)) + "\n";
    Stmt cols = db.prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_xinfo(?1) ORDER BY cid");
    cols.bind(1, t);
    while (cols.step())
      out += "  column " + cols.text(0) + " " + cols.text(1) + " notnull=" + cols.text(2) + " default=" +
             cols.text(3) + " pk=" + cols.text(4) + "\n";
    Stmt idx = db.prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1) ORDER BY name");
    idx.bind(1, t);
    while (idx.step()) {
      out += "  index " + idx.text(0) + " unique=" + idx.text(1) + " origin=" + idx.text(2) +
             (idx.int64(3) ? " partial" : "") + " (";
      Stmt info = db.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno");
      info.bind(1, idx.text(0));
      while (info.step()) out += info.text(0) + ",";
      out += ")\n";
    }
    Stmt fks = db.prepare(
        "SELECT \"from\", \"table\", \"to\", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY id, seq");
    fks.bind(1, t);
    while (fks.step())
      out += "  fk " + fks.text(0) + " -> " + fks.text(1) + "(" + fks.text(2) + ") " + fks.text(3) + " " +
             fks.text(4) + "\n";
  }
  return out;
}

std::string integrity(Db& db) {
  Stmt s = db.prepare("PRAGMA integrity_check");
  std::string out;
  while (s.step()) out += s.text(0) + "\n";
  Stmt fk = db.prepare("PRAGMA foreign_key_check");
  while (fk.step()) out += "foreign key broken in " + fk.text(0) + "\n";
  return out;
}

}  // namespace

TEST_CASE("schema: a new database is created at the latest version") {
  TempDir dir;
  { open_sqlite_store(dir.db()); }
  Db db(dir.db());
  CHECK(schema_version(db) == latest_schema_version());
  CHECK(latest_schema_version() == static_cast<int>(migrations().size()));
  for (size_t i = 0; i < migrations().size(); ++i) CHECK(migrations()[i].version == static_cast<int>(i + 1));
  migrate(db, 0);  // an older target is a no-op
  migrate(db);
  CHECK(schema_version(db) == latest_schema_version());
  CHECK(integrity(db) == "ok\n");
}

TEST_CASE("schema: every version's schema is pinned") {
  // A migration was added without freezing its version here, or a released
  // migration was edited: both would let old and new databases differ.
  REQUIRE(frozen().size() == static_cast<size_t>(latest_schema_version()));
  for (const Frozen& f : frozen()) {
    INFO("schema version " << f.version);
    Db migrated(":memory:");
    migrate(migrated, f.version);
    Db pinned(":memory:");
    pinned.exec(f.schema);
    pinned.exec("PRAGMA user_version = " + std::to_string(f.version));
    CHECK(describe(migrated) == describe(pinned));
  }
}

TEST_CASE("schema: a database created at every earlier version migrates cleanly") {
  REQUIRE(frozen().size() == static_cast<size_t>(latest_schema_version()));
  for (int start = 0; start <= latest_schema_version(); ++start) {
    INFO("created at schema version " << start);
    TempDir dir;
    {
      // Built the way that version of sluice built it: migrations one by one,
      // rows written at each version in that version's SQL.
      Db db(dir.db());
      for (int v = 1; v <= start; ++v) {
        migrate(db, v);
        Tx tx(db);
        db.exec(frozen()[v - 1].rows);
        tx.commit();
      }
      CHECK(schema_version(db) == start);
    }
    auto store = open_sqlite_store(dir.db());
    for (int v = 1; v <= start; ++v) frozen()[v - 1].check(*store);
    for (int v = 1; v <= start; ++v)
      if (frozen()[v - 1].check_file) frozen()[v - 1].check_file(dir.db());
    // The migrated database takes new writes beside the old rows.
    store->apply({PutWorkflow{.name = "new", .digest = "d", .source = "", .at = 1},
                  CreateRun{.id = "29990101-000000-000001", .workflow_name = "new", .workflow_digest = "d", .at = 1},
                  SetStepStatus{.run_id = "29990101-000000-000001", .node = "a", .status = StepStatus::Running,
                                .at = 2}});
    CHECK(store->steps("29990101-000000-000001").size() == 1);
    store.reset();
    Db db(dir.db());
    CHECK(schema_version(db) == latest_schema_version());
    CHECK(integrity(db) == "ok\n");
    Db pinned(":memory:");
    pinned.exec(frozen().back().schema);
    pinned.exec("PRAGMA user_version = " + std::to_string(frozen().back().version));
    CHECK(describe(db) == describe(pinned));
  }
}

TEST_CASE("schema: a database from a newer sluice is refused and left alone") {
  TempDir dir;
  int newer = latest_schema_version() + 1;
  {
    Db db(dir.db());
    migrate(db);
    db.exec("PRAGMA user_version = " + std::to_string(newer));
  }
  try {
    open_sqlite_store(dir.db());
    FAIL("a newer database was opened");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()) == dir.db() + ": the database has schema version " + std::to_string(newer) +
                                       ", newer than this sluice " SLUICE_VERSION " knows (" +
                                       std::to_string(latest_schema_version()) +
                                       "): it was written by a later sluice; use that version or newer");
  }
  Db db(dir.db());
  CHECK(schema_version(db) == newer);
}

TEST_CASE("schema: a file that is not a sluice database is refused") {
  TempDir dir;
  {
    Db db(dir.db());
    db.exec("CREATE TABLE notes (text TEXT)");
  }
  try {
    open_sqlite_store(dir.db());
    FAIL("another application's database was opened");
  } catch (const StoreError& e) {
    CHECK(std::string(e.what()) == dir.db() + ": not a sluice database (application_id 0, user_version 0)");
  }
  Db db(dir.db());
  CHECK(db.query_int("SELECT count(*) FROM sqlite_schema") == 1);  // untouched

  std::string text = dir.path + "/notes.txt";
  std::ofstream(text) << "these are not the pages you are looking for, not even one of them\n";
  CHECK_THROWS_WITH(open_sqlite_store(text), Catch::Contains("file is not a database"));
}

TEST_CASE("schema: a failing migration leaves the database at the previous version") {
  TempDir dir;
  std::vector<Migration> steps(migrations().begin(), migrations().end());
  int next = static_cast<int>(steps.size()) + 1;
  Db db(dir.db());
  migrate(db);

  SECTION("an error in the SQL") {
    steps.push_back({next, "broken", "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);"});
    CHECK_THROWS_WITH(migrate(db, steps, next), Catch::Contains("no such table: nowhere"));
  }
  SECTION("a broken foreign key") {
    steps.push_back({next, "orphan",
                     "CREATE TABLE half (x INTEGER); "
                     "INSERT INTO steps (run_id, node, step, status, status_at) "
                     "VALUES ('missing', 'a', 'a', 'waiting', 0);"});
    CHECK_THROWS_WITH(migrate(db, steps, next),
                      dir.db() + ": migration to schema version " + std::to_string(next) +
                          " breaks a foreign key in table steps");
  }
  CHECK(schema_version(db) == latest_schema_version());
  CHECK(db.query_int("SELECT count(*) FROM sqlite_schema WHERE name = 'half'") == 0);
  CHECK(db.query_int("SELECT count(*) FROM steps") == 0);
  CHECK(db.query_int("PRAGMA foreign_keys") == 1);  // back on after migrating
}
