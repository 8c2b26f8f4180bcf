#pragma once
// The code version a run pins: the commit of the git repository holding a
// workflow file.
#include <string>

namespace sluice::engine {

// The commit HEAD names in the git repository holding `dir` (`dir` or the
// nearest folder above it with a `.git`), as `git rev-parse HEAD` prints it:
// 40 (or, in a SHA-256 repository, 64) hex digits; "" outside a repository,
// on a branch with no commit yet, or when the repository cannot be read.
// Read from the files git keeps (HEAD, loose refs, packed-refs; a worktree's
// `.git` file and `commondir`), without starting git: it runs before every
// run's first step.
std::string git_commit(const std::string& dir);

}  // namespace sluice::engine
