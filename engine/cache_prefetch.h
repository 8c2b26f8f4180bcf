#pragma once
// Reading a re-run's cache entries while its workflow file is still parsed.
//
// A run mostly asks the cache for the keys its workflow's previous run
// recorded, and StepCache reads those entries in one go at its first lookup
// (docs/store.md, "Lookups"). For `sluice run FILE` that read can start as
// soon as the command does, on a thread of its own: the newest run recorded
// from the same file needs no parsed workflow, so the parse and the read
// overlap. It is a guess, checked by take(): the entries are used only when
// that run was a run of the workflow the file turned out to define. Entries
// are found by their keys, so entries read a moment early serve as well as
// entries read at the first lookup.
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "registry/store.h"

namespace sluice::engine {

class CachePrefetch {
 public:
  // Starts reading from the store in the state folder `home`; reads nothing
  // when that folder holds no store yet (none is created here).
  // `workflow_path` is the file as given to the command.
  CachePrefetch(const std::string& home, const std::string& workflow_path);
  ~CachePrefetch();  // waits for the read to end
  CachePrefetch(const CachePrefetch&) = delete;
  CachePrefetch& operator=(const CachePrefetch&) = delete;

  // Waits for the read; its entries if the run it read was a run of
  // `workflow` older than `before_run`, else nullopt (also when the read
  // failed: the caller then reads the entries itself). Once only.
  std::optional<std::vector<registry::CachedResult>> take(const std::string& workflow, const std::string& before_run);

 private:
  struct Read {
    std::string run_id, workflow;  // the run read; "" when none
    std::vector<registry::CachedResult> entries;
  };
  std::future<Read> read_;
};

}  // namespace sluice::engine
