#pragma once
// The Store on a SQLite file (normally .sluice/sluice.db). Several processes
// may open the same file: writers take turns (each batch waits up to the busy
// timeout for the write lock), readers never wait for writers.
#include <memory>
#include <string>

#include "registry/store.h"

namespace sluice::registry {

// Opens (creating if missing) the database at `path` and migrates it to the
// latest schema. Throws StoreError if it cannot be opened, is not a sluice
// database, or was written by a newer sluice.
std::unique_ptr<Store> open_sqlite_store(const std::string& path);

}  // namespace sluice::registry
