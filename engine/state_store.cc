#include "engine/state_store.h"

#include <cstdio>
#include <filesystem>

#include "engine/recovery.h"
#include "registry/sqlite_store.h"

namespace sluice::engine {

std::unique_ptr<registry::Store> open_state_store(const std::string& home) {
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  if (ec) throw registry::StoreError("cannot create " + home + ": " + ec.message());
  return registry::open_sqlite_store(home + "/sluice.db");
}

std::unique_ptr<registry::Store> open_history_store(const std::string& command, const std::string& home, bool recover) {
  if (!std::filesystem::exists(home + "/sluice.db")) {
    std::fprintf(stderr, "sluice %s: error: no runs recorded in %s (run a workflow first, or pass --home)\n",
                 command.c_str(), home.c_str());
    return nullptr;
  }
  std::unique_ptr<registry::Store> store = registry::open_sqlite_store(home + "/sluice.db");
  if (recover) recover_dead_runs(*store, home);
  return store;
}

}  // namespace sluice::engine
