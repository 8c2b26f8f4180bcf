#pragma once
// Opening the state folder's metadata store (<home>/sluice.db) for commands.
#include <memory>
#include <string>

#include "registry/store.h"

namespace sluice::engine {

// Opens (creating the folder and the database when missing) and migrates
// the store; throws registry::StoreError.
std::unique_ptr<registry::Store> open_state_store(const std::string& home);

// For commands that read the history (`sluice runs`, `show`, `logs`, ...):
// null after printing "sluice CMD: error: no runs recorded in HOME ..." when
// there is no store yet. Runs whose engine died are marked failed first
// (engine/recovery.h), so what the command shows is never a dead "running";
// `recover` = false leaves them (`sluice resume` takes such a run over as it is).
std::unique_ptr<registry::Store> open_history_store(const std::string& command, const std::string& home,
                                                    bool recover = true);

}  // namespace sluice::engine
