#pragma once
// The code version a run pins: the commit of the git repository holding a
// workflow file.
#include <string>

namespace sluice::engine {

// `git rev-parse HEAD` in `dir`: 40 hex digits, or "" outside a repository
// (or without git).
std::string git_commit(const std::string& dir);

}  // namespace sluice::engine
