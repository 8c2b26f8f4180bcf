// CachePrefetch reads, before the workflow file is parsed, the cache entries
// of the newest run recorded from that file, and hands them over only when
// that run was a run of the workflow the file turned out to define.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/cache_prefetch.h"
#include "registry/sqlite_store.h"
#include "support/temp_dir.h"

using namespace sluice::registry;
using sluice::engine::CachePrefetch;
using sluice::test::ScratchDir;
namespace fs = std::filesystem;

namespace {

constexpr int64_t T = 1'795'748'573'000;
const std::string kData = "sha256:" + std::string(64, 'd');

// A run of workflow `name` recorded from `path` whose step `node` made a
// cache entry under `key` with one output.
std::vector<Write> run_with_entry(const std::string& run, const std::string& name, const std::string& path,
                                  const std::string& node, const std::string& key, int64_t at) {
  const std::string digest = "sha256:" + std::string(64, static_cast<char>('a' + name.size() % 6));
  return {PutWorkflow{.name = name, .digest = digest, .source = "name = \"" + name + "\"\n", .path = path, .at = at},
          CreateRun{.id = run, .workflow_name = name, .workflow_digest = digest, .at = at, .sluice_version = "0.1.0"},
          PutArtifact{.digest = kData, .size = 3, .at = at},
          SetStepStatus{.run_id = run, .node = node, .status = StepStatus::Succeeded, .at = at, .cache_key = key},
          AddOutput{.run_id = run, .node = node, .name = "data", .digest = kData, .path = "d.csv"},
          PutCacheEntry{.cache_key = key, .run_id = run, .node = node, .at = at}};
}

const std::string kR1 = "20261127-040253.000-00000001", kR2 = "20261127-040254.000-00000002",
                  kR3 = "20261127-040255.000-00000003", kLater = "20261127-050000.000-00000009";

}  // namespace

TEST_CASE("cache prefetch: the entries of the newest run recorded from the file, for the workflow it defines") {
  ScratchDir home;
  const std::string file = home / "wf.toml", other = home / "other.toml";
  {
    auto store = open_sqlite_store(home / "sluice.db");
    store->apply(run_with_entry(kR1, "wf", file, "prep", "k1", T));
    store->apply(run_with_entry(kR2, "wf", file, "train", "k2", T + 1));
    store->apply(run_with_entry(kR3, "other", other, "x", "k3", T + 2));  // newer, another file
  }
  CachePrefetch prefetch(home.path, file);
  auto entries = prefetch.take("wf", kLater);
  REQUIRE(entries);
  REQUIRE(entries->size() == 1);  // kR2's keys, not kR1's or kR3's
  CHECK((*entries)[0].entry.cache_key == "k2");
  CHECK((*entries)[0].entry.node == "train");
  REQUIRE((*entries)[0].outputs.size() == 1);
  CHECK((*entries)[0].outputs[0].digest == kData);
  CHECK_FALSE(prefetch.take("wf", kLater));  // once only
}

TEST_CASE("cache prefetch: nothing when the file now defines another workflow, or the run is not older") {
  ScratchDir home;
  const std::string file = home / "wf.toml";
  {
    auto store = open_sqlite_store(home / "sluice.db");
    store->apply(run_with_entry(kR1, "first", file, "prep", "k1", T));
    store->apply(run_with_entry(kR2, "renamed", file, "prep", "k2", T + 1));  // the same file, renamed
  }
  CHECK_FALSE(CachePrefetch(home.path, file).take("first", kLater));  // its newest run is of "renamed"
  auto renamed = CachePrefetch(home.path, file).take("renamed", kLater);
  REQUIRE(renamed);
  REQUIRE(renamed->size() == 1);
  CHECK((*renamed)[0].entry.cache_key == "k2");
  CHECK_FALSE(CachePrefetch(home.path, file).take("renamed", kR2));  // not older than the run asking
  CHECK_FALSE(CachePrefetch(home.path, home / "never-run.toml").take("renamed", kLater));
}

TEST_CASE("cache prefetch: a state folder without a store stays without one") {
  ScratchDir dir;
  const std::string home = dir / "state";
  CHECK_FALSE(CachePrefetch(home, dir / "wf.toml").take("wf", kLater));
  CHECK_FALSE(fs::exists(home));
  fs::create_directories(home);
  CHECK_FALSE(CachePrefetch(home, dir / "wf.toml").take("wf", kLater));
  CHECK_FALSE(fs::exists(home + "/sluice.db"));
}
