#pragma once
// The metadata database's schema, as an ordered list of migrations. The
// database's `PRAGMA user_version` is the number of migrations applied to it.
// Migrations are append-only: a released one is never edited, a change is a
// new step (tests/registry/schema_test.cc pins every version's schema).
#include <span>

namespace sluice::registry {

class Db;

struct Migration {
  int version;          // 1, 2, ...: the user_version after this step
  const char* summary;  // one line, for logs and docs
  const char* sql;      // DDL and data moves; runs inside the step's transaction
};

// Every migration, oldest first; migrations()[i].version == i + 1.
std::span<const Migration> migrations();
int latest_schema_version();

// The version recorded in the database (0 for a new, empty one).
int schema_version(Db& db);

// Brings the database up to `target` (default: the latest), one transaction
// per migration, so an interrupted upgrade stops at a whole version. Throws
// StoreError for a database written by a newer sluice (a version above
// latest_schema_version()) or a file that is not a sluice database.
void migrate(Db& db, int target = -1);
// The same over another list of steps (tests use it for failing steps).
void migrate(Db& db, std::span<const Migration> steps, int target);

}  // namespace sluice::registry
