#pragma once
// What the store's end-to-end tests share: reading runs back through the CLI.
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

namespace sluice::test {

// `sluice runs --json` (newest first, up to 1000).
nlohmann::json list_runs(const TempDir& dir);
// The id of the newest run.
std::string newest_run(const TempDir& dir);
// The id of the newest run once one is recorded (a run in progress is
// recorded a moment after it starts); fails after 30 s.
std::string wait_for_run(const TempDir& dir);
// `sluice show --json RUN`.
nlohmann::json show_run(const TempDir& dir, const std::string& run);
// node -> status of a `show` document.
std::map<std::string, std::string> step_statuses(const nlohmann::json& show);
// A step of a `show` document by node.
nlohmann::json step_of(const nlohmann::json& show, const std::string& node);
// The object file of a digest in <dir>/.sluice/cas.
std::string object_path(const TempDir& dir, const std::string& digest);
// Runs SQL on <dir>/.sluice/sluice.db directly (what no command does: a
// test's own change to the store).
void exec_sql(const TempDir& dir, const std::string& sql);

}  // namespace sluice::test
