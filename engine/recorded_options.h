#pragma once
// What a run was asked to do beyond its workflow and params, recorded with
// it (runs.options_json, docs/store.md) so that `sluice resume` continues it
// as it was started: the steps it selects (--only / --from), --keep-going,
// the inputs a rerun pins and the results a retry reuses. -j and -v belong
// to the process running it and are not recorded; --no-cache has its own
// column (runs.no_cache).
#include <map>
#include <string>

namespace sluice::engine {

struct RecordedOptions {
  std::string only;  // --only STEP ("" = not given)
  std::string from;  // --from STEP
  bool keep_going = false;
  // RunOptions::reuse (`sluice retry`): node -> the run whose result it takes.
  std::map<std::string, std::string> reuse;
  // RunOptions::pinned_inputs (`sluice rerun`): node -> input -> digest.
  std::map<std::string, std::map<std::string, std::string>> pinned_inputs;
};

// A JSON object holding the members not at their default, e.g.
// {"keep_going":true,"only":"train"}; "{}" when all are.
std::string to_json(const RecordedOptions& o);

// The options recorded as `text` ("" reads as "{}"); members it lacks keep
// their defaults. False with `error` when `text` is not such an object.
bool parse_recorded_options(const std::string& text, RecordedOptions& out, std::string& error);

}  // namespace sluice::engine
