#pragma once
// What the crash tests share (recovery_test.cc, resume_test.cc): a 25-step
// workflow to kill `sluice run` in, and reading what it told the terminal.
#include <set>
#include <string>
#include <vector>

#include "e2e/harness.h"

namespace sluice::test {

// Three chains of 8 steps (c0_0 .. c2_7) that pass a growing file along, and
// a last step `all` joining them: 25 steps, each taking ~0.1 s (`all` 1 s).
// Every step appends its node name to $EXEC_LOG when its command completes.
std::string chains_workflow();
// What `all` writes into all.txt.
std::string expected_all();
// Steps the terminal was told succeeded ("[3/25] succeeded c0_2 (104ms)").
std::set<std::string> reported_done(const std::string& out);
// The non-empty lines of `text`.
std::set<std::string> lines(const std::string& text);
// Starts `sluice run -j 3 wf.toml` in `dir`, SIGKILLs it once the terminal
// was told of at least `kill_after` finished steps (of 25), waits 1.2 s for
// the steps it left running to finish as orphans. Fails the test unless the
// terminal was told of at least kill_after and fewer than 25.
struct Killed {
  int pid = 0;                 // of the killed `sluice run`
  std::set<std::string> told;  // the steps it reported succeeded
};
Killed kill_run_after(const TempDir& dir, size_t kill_after, const std::vector<std::string>& env);
// Rows of one query on a database, each row's columns joined by '|'.
std::vector<std::string> query(const std::string& db_path, const std::string& sql);
// Runs `sql` (writes) on a database.
void exec_sql(const std::string& db_path, const std::string& sql);
// Fails the test if a step of `run` was ever recorded running twice at once:
// two `running` transitions in a row, overlapping attempts, or an attempt
// left running.
void check_never_running_twice(const TempDir& dir, const std::string& run);
// PRAGMA quick_check of a database, one result per line ("ok\n").
std::string quick_check(const std::string& db_path);

}  // namespace sluice::test
