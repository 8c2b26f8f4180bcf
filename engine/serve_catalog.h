#pragma once
// The workflows a server serves: every *.toml file of its workflows folder
// that validates, loaded once and replaced whole on reload (SIGHUP). A file
// that fails validation is reported and left out; the rest are served.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dsl/parser.h"

namespace sluice::engine {

struct ServedWorkflow {
  dsl::WorkflowPtr wf;
  std::string path;        // absolute
  std::string digest;      // sha256 of the file's bytes, as runs record it
  std::string git_commit;  // of the repository holding the file at load time, or ""
};

// A file that was left out and why (its diagnostics, formatted).
struct LoadError {
  std::string path;
  std::string message;
};

// One load of the folder; immutable, shared by the request threads.
struct Catalog {
  std::map<std::string, ServedWorkflow> workflows;  // by workflow name
  std::vector<LoadError> errors;                    // by path
  const ServedWorkflow* find(const std::string& name) const;
  std::vector<std::string> names() const;
};

// Loads every regular *.toml file directly inside `dir` (in name order). Two
// files naming the same workflow: the later one is an error.
std::shared_ptr<const Catalog> load_catalog(const std::string& dir);

}  // namespace sluice::engine
