#pragma once
// What the crash tests share (recovery_test.cc, resume_test.cc): a 25-step
// workflow to kill `sluice run` in, and reading what it told the terminal.
#include <set>
#include <string>

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
// PRAGMA quick_check of a database, one result per line ("ok\n").
std::string quick_check(const std::string& db_path);

}  // namespace sluice::test
