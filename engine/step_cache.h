#pragma once
// The step cache and the artifact store as the executor sees them during one
// run: cache keys and lookups, restoring a cached (or, for `sluice retry`,
// reused) result instead of running a step, materialising inputs read-only
// from the artifact store, and checking what an attempt left behind. Used
// by the executor's thread only; opens the store and the CAS on first use.
// See docs/store.md, "The step cache" and "Inputs".
#include <map>
#include <memory>
#include <string>

#include "dsl/spec.h"
#include "engine/executor.h"
#include "engine/shell_quote.h"

namespace sluice::engine {

class StepCache {
 public:
  // `rec` is the run's record, whose nodes this fills in (work dirs,
  // outputs, digests, values, cache decisions). All three must outlive it.
  StepCache(const dsl::Workflow& wf, const RunOptions& options, RunRecord& rec);
  ~StepCache();
  StepCache(const StepCache&) = delete;
  StepCache& operator=(const StepCache&) = delete;

  // Before `node` starts: true when its result was restored instead of
  // running it (a result `sluice retry` reuses, or a cache hit). Then the
  // node's record holds its work dir, its outputs' paths there and digests,
  // and its values, and the caller marks it cached; the files appear in the
  // work dir (read-only) once a step that runs depends on it. Either way the
  // record's cache_key, key_parts and cache_note say what was decided.
  // `resolve` resolves the node's references.
  bool restore(uint32_t node, const RefLookup& resolve);

  // `sluice resume`: makes `node` hold what this run recorded for it (its
  // values, its outputs' digests and paths), as restore() does for a cache
  // hit; false when the record is incomplete or an object is gone.
  bool restore_recorded(uint32_t node);

  // Materialises the node's inputs read-only from the artifact store into
  // <workdir>/inputs/NAME/<file name>; `paths` maps each input to its place.
  // Restored outputs of the steps it depends on are materialised first.
  // False with one line for an input that is missing, leads outside the
  // workflow's folder and the state folder, or cannot be stored.
  bool stage_inputs(uint32_t node, const RefLookup& resolve, std::map<std::string, std::string>& paths,
                    std::string& error);

  // After a successful attempt: every declared output that exists stays
  // inside the work dir (a symlink may not lead out; a folder output holds
  // only files, folders and symlinks that stay inside it), and no input was
  // changed. "" or why the attempt fails.
  std::string check_attempt(uint32_t node);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::engine
