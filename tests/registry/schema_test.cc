#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "registry/db.h"
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

// Version 2 adds what `sluice serve` keeps.
const std::string kSchemaV2 = std::string(kSchemaV1) + R"sql(
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

const char* const kRowsV2 = R"sql(
INSERT INTO workflows (id, name, digest, source, path, first_seen)
  VALUES (2, 'v2wf', 'sha256:v2wf', 'name = "v2wf"', 'v2.toml', 2000);
INSERT INTO runs (id, workflow_id, workflow_name, params_json, triggered_by, status, status_at, created_at,
  sluice_version) VALUES ('20200202-000000-000002', 2, 'v2wf', '{}', 'schedule', 'queued', 2000, 2000, '0.1.0');
INSERT INTO api_tokens (id, hash, scope, workflow, description, created_at, expires_at)
  VALUES ('tok_v2', 'hash-v2', 'trigger', 'v2wf', 'ci', 2000, 9000);
INSERT INTO idempotency_keys (token_id, key, request_hash, status, response, created_at)
  VALUES ('tok_v2', 'k1', 'rh', 202, '{"run_id":"20200202-000000-000002"}', 2000);
INSERT INTO webhook_deliveries (id, event, response, received_at) VALUES ('d-1', 'push', '{"runs":[]}', 2000);
INSERT INTO schedules (workflow, cron, timezone, on_dst_gap, on_dst_repeat, watermark, last_fire, last_run, fires,
  missed, updated_at) VALUES ('v2wf', '0 * * * *', 'UTC', 'shift', 'first', 3600000, 3600000,
  '20200202-000000-000002', 1, 2, 2000);
INSERT INTO schedule_fires (workflow, nominal, run_id, outcome, missed, fired_at)
  VALUES ('v2wf', 3600000, '20200202-000000-000002', 'queued', 2, 3600010);
INSERT INTO run_queue (run_id, after_run, queued_at) VALUES ('20200202-000000-000002', NULL, 2000);
)sql";

void check_v2(Store& store) {
  auto token = store.token_by_hash("hash-v2");
  REQUIRE(token);
  CHECK(token->id == "tok_v2");
  CHECK(token->scope == TokenScope::Trigger);
  CHECK(token->workflow == "v2wf");
  CHECK(token->expires_at == 9000);
  CHECK(store.idempotency_key("tok_v2", "k1")->status == 202);
  CHECK(store.delivery("d-1")->event == "push");
  auto sched = store.schedule("v2wf");
  REQUIRE(sched);
  CHECK(sched->watermark == 3600000);
  CHECK(sched->last_run == "20200202-000000-000002");
  CHECK(sched->missed == 2);
  CHECK(store.fires("v2wf", 10).at(0).missed == 2);
  CHECK(store.queued_run("20200202-000000-000002")->pid == std::nullopt);
}

const std::vector<Frozen>& frozen() {
  static const std::vector<Frozen> versions = {
      {1, kSchemaV1, kRowsV1, check_v1},
      {2, kSchemaV2.c_str(), kRowsV2, check_v2},
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
      out += "  index " + idx.text(0) + " unique=" + idx.text(1) + " origin=" + idx.text(2) + " (";
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
