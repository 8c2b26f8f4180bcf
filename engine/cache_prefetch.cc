#include "engine/cache_prefetch.h"

#include <filesystem>

#include "registry/sqlite_store.h"

namespace sluice::engine {

namespace fs = std::filesystem;
namespace reg = sluice::registry;

CachePrefetch::CachePrefetch(const std::string& home, const std::string& workflow_path) {
  // As the recorder names the file (PutWorkflow::path).
  std::error_code ec;
  std::string path = fs::absolute(workflow_path, ec).string();
  std::string db = home + "/sluice.db";
  read_ = std::async(std::launch::async, [path = std::move(path), db = std::move(db)] {
    Read r;
    try {
      std::error_code exists_ec;
      if (!fs::exists(db, exists_ec)) return r;
      std::unique_ptr<reg::Store> store = reg::open_sqlite_store(db);
      auto latest = store->latest_run_of_file(path);
      if (!latest) return r;
      r.entries = store->cached_results_of_run(latest->first);
      r.run_id = latest->first;
      r.workflow = latest->second;
    } catch (const std::exception&) {
      r = Read{};  // a guess that failed: StepCache reads the entries itself
    }
    return r;
  });
}

CachePrefetch::~CachePrefetch() {
  if (read_.valid()) read_.wait();
}

std::optional<std::vector<reg::CachedResult>> CachePrefetch::take(const std::string& workflow,
                                                                  const std::string& before_run) {
  if (!read_.valid()) return std::nullopt;
  Read r = read_.get();
  if (r.run_id.empty() || r.workflow != workflow || !(r.run_id < before_run)) return std::nullopt;
  return std::move(r.entries);
}

}  // namespace sluice::engine
