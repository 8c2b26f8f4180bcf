// The run recorder with real processes, a real SQLite file and a real CAS:
// what the terminal is told is already committed, and batches are grouped on
// purpose without holding back flush() or the destructor.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dsl/parser.h"
#include "engine/executor.h"
#include "engine/run_recorder.h"
#include "engine/runner_posix.h"
#include "registry/db.h"
#include "registry/sha256.h"
#include "registry/sqlite_store.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::engine;
using sluice::test::ScratchDir;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// cas/sha256/ab/cdef... for "sha256:abcdef..." (and "sha256:abcdef....tree").
std::string object_of(const std::string& home, const std::string& digest) {
  return home + "/cas/sha256/" + digest.substr(7, 2) + "/" + digest.substr(9, 62);
}

// `n` independent steps; step i prints "log i" and writes "i" to its output.
dsl::WorkflowPtr workflow(int n, const std::string& dir) {
  std::string text = "name = \"rec\"\n";
  for (int i = 0; i < n; ++i) {
    text += "[steps.s" + std::to_string(i) + "]\nrun = \"echo log " + std::to_string(i) + "; echo " + std::to_string(i) +
            " > out.txt\"\noutputs = { out = \"out.txt\" }\n";
  }
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::parse_workflow(text, dir + "/rec.toml", diags);
  REQUIRE(wf);
  return wf;
}

RunOptions options(const std::string& home) {
  RunOptions o;
  o.run_id = new_run_id();
  o.home = home;
  o.jobs = 2;
  o.cpus = 2;
  return o;
}

// The terminal's place. Runs on the recorder's writer thread: it checks the
// database (through its own connection) as each event arrives, and keeps
// what it finds for the test thread to assert on.
class CheckingSink : public EventSink {
 public:
  CheckingSink(const dsl::Workflow& wf, std::string home, std::string run_id)
      : wf_(wf), home_(std::move(home)), run_id_(std::move(run_id)) {}

  void on_event(const Event& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_) {
      reader_ = registry::open_sqlite_store(home_ + "/sluice.db");
      db_ = std::make_unique<registry::Db>(home_ + "/sluice.db");
    }
    ++delivered_;
    versions_.push_back(db_->query_int("PRAGMA data_version"));
    size_t recorded = reader_->events(run_id_).size();
    if (recorded < delivered_) fail("event " + std::to_string(delivered_) + " delivered with only " + std::to_string(recorded) + " recorded");
    if (e.kind != Event::Kind::StepFinished) return;
    const std::string node = wf_.dag.node(e.node).name;
    const std::string i = node.substr(1);
    auto step = reader_->step(run_id_, node);
    if (!step || step->status != registry::StepStatus::Succeeded) fail(node + " reported finished but not recorded succeeded");
    auto attempts = reader_->attempts(run_id_, node);
    if (attempts.size() != 1 || attempts[0].log_digest.empty()) {
      fail(node + ": no stored log");
    } else if (read_file(object_of(home_, attempts[0].log_digest)) != "log " + i + "\n") {
      fail(node + ": the stored log does not hold 'log " + i + "'");
    }
    auto outputs = reader_->outputs(run_id_, node);
    if (outputs.size() != 1 || read_file(object_of(home_, outputs[0].digest)) != i + "\n")
      fail(node + ": the stored output does not hold '" + i + "'");
  }

  size_t delivered() {
    std::lock_guard<std::mutex> lock(mu_);
    return delivered_;
  }
  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }
  // PRAGMA data_version seen at each delivery: it changes when another
  // connection commits, so the number of distinct values is the number of
  // batches after the first.
  std::vector<int64_t> versions() {
    std::lock_guard<std::mutex> lock(mu_);
    return versions_;
  }

 private:
  void fail(std::string what) { failures_.push_back(std::move(what)); }

  const dsl::Workflow& wf_;
  std::string home_, run_id_;
  std::mutex mu_;
  std::unique_ptr<registry::Store> reader_;
  std::unique_ptr<registry::Db> db_;
  size_t delivered_ = 0;
  std::vector<std::string> failures_;
  std::vector<int64_t> versions_;
};

using Seconds = std::chrono::duration<double>;

}  // namespace

TEST_CASE("run_recorder: an event reaches the terminal only after its batch committed, logs and outputs stored") {
  ScratchDir dir;
  const std::string home = dir / ".sluice";
  dsl::WorkflowPtr wf = workflow(30, dir.path);
  RunOptions opt = options(home);
  CheckingSink sink(*wf, home, opt.run_id);
  auto runner = make_posix_runner();
  RunRecord rec;
  {
    RunRecorder recorder(*wf, sink, RecordedRun{opt.run_id, home, "cli", "{}", {}, false});
    Executor ex(*wf, *runner, recorder, opt);
    std::atomic<bool> stop{false};
    rec = ex.run(stop);
    recorder.flush();
    CHECK(sink.delivered() == 2 + 2 * 30);  // run started and finished, each step started and finished
  }
  for (const NodeRecord& n : rec.nodes) CHECK(n.state == NodeState::Succeeded);
  CHECK(sink.failures() == std::vector<std::string>{});
}

TEST_CASE("run_recorder: events wait for the group window, but flush and the destructor do not") {
  ScratchDir dir;
  const std::string home = dir / ".sluice";
  dsl::WorkflowPtr wf = workflow(10, dir.path);
  auto runner = make_posix_runner();
  RecordedRun hour{"", home, "cli", "{}", {}, false, std::chrono::hours(1)};

  SECTION("flush") {
    RunOptions opt = options(home);
    hour.run_id = opt.run_id;
    CheckingSink sink(*wf, home, opt.run_id);
    RunRecorder recorder(*wf, sink, hour);
    Executor ex(*wf, *runner, recorder, opt);
    std::atomic<bool> stop{false};
    ex.run(stop);
    // The run's start is committed before the first step; the other 21
    // events, far from a full batch, are held for the window.
    CHECK(sink.delivered() == 1);
    auto t0 = std::chrono::steady_clock::now();
    recorder.flush();
    CHECK(Seconds(std::chrono::steady_clock::now() - t0).count() < 60);
    CHECK(sink.delivered() == 22);
    // One transaction for the run's start, one for all the rest.
    std::vector<int64_t> v = sink.versions();
    REQUIRE(v.size() == 22);
    CHECK(v[1] != v[0]);
    CHECK(std::count(v.begin() + 1, v.end(), v[1]) == 21);
    CHECK(sink.failures() == std::vector<std::string>{});
  }
  SECTION("destructor") {
    RunOptions opt = options(home);
    hour.run_id = opt.run_id;
    CheckingSink sink(*wf, home, opt.run_id);
    std::chrono::steady_clock::time_point t0;
    {
      RunRecorder recorder(*wf, sink, hour);
      Executor ex(*wf, *runner, recorder, opt);
      std::atomic<bool> stop{false};
      ex.run(stop);
      CHECK(sink.delivered() == 1);  // the run's start
      t0 = std::chrono::steady_clock::now();
    }
    CHECK(Seconds(std::chrono::steady_clock::now() - t0).count() < 60);
    CHECK(sink.delivered() == 22);
    CHECK(sink.failures() == std::vector<std::string>{});
  }
}

TEST_CASE("run_recorder: a full batch commits without waiting for the window") {
  ScratchDir dir;
  const std::string home = dir / ".sluice";
  dsl::WorkflowPtr wf = workflow(300, dir.path);  // 602 events
  RunOptions opt = options(home);
  CheckingSink sink(*wf, home, opt.run_id);
  auto runner = make_posix_runner();
  RunRecorder recorder(*wf, sink, RecordedRun{opt.run_id, home, "cli", "{}", {}, false, std::chrono::hours(1)});
  Executor ex(*wf, *runner, recorder, opt);
  std::atomic<bool> stop{false};
  ex.run(stop);
  // 512 queued events close a batch; it is delivered without a flush.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (sink.delivered() < 512 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(sink.delivered() >= 512);
  recorder.flush();
  CHECK(sink.delivered() == 602);
  CHECK(sink.failures() == std::vector<std::string>{});
}

TEST_CASE("run_recorder: a folder output is stored as a tree") {
  ScratchDir dir;
  const std::string home = dir / ".sluice";
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::parse_workflow(R"(name = "trees"
[steps.make]
run = "mkdir -p model/sub && echo w > model/sub/weights && echo c > model/config"
outputs = { model = "model" }
)", dir / "trees.toml", diags);
  REQUIRE(wf);
  RunOptions opt = options(home);
  auto runner = make_posix_runner();
  struct Null : EventSink {
    void on_event(const Event&) override {}
  } null;
  {
    RunRecorder recorder(*wf, null, RecordedRun{opt.run_id, home, "cli", "{}", {}, false});
    Executor ex(*wf, *runner, recorder, opt);
    std::atomic<bool> stop{false};
    REQUIRE(ex.run(stop).nodes[0].state == NodeState::Succeeded);
  }
  auto store = registry::open_sqlite_store(home + "/sluice.db");
  auto outputs = store->outputs(opt.run_id, "make");
  REQUIRE(outputs.size() == 1);
  CHECK(outputs[0].name == "model");
  CHECK(outputs[0].path == "model");
  REQUIRE(outputs[0].digest.size() == 7 + 64 + 5);
  CHECK(outputs[0].digest.substr(71) == ".tree");
  CHECK(read_file(object_of(home, outputs[0].digest)) ==
        "sluice-tree 1\nfile - " + registry::sha256_hex("c\n") + " config\ndir - - sub\nfile - " +
            registry::sha256_hex("w\n") + " sub/weights\n");
  auto artifact = store->artifact(outputs[0].digest);
  REQUIRE(artifact);
  CHECK(artifact->kind == registry::ArtifactKind::Tree);
  CHECK(artifact->size == 4);
}
