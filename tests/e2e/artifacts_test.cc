// End-to-end: `sluice logs`, `sluice artifacts` and `sluice lineage` read
// back what runs stored.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "e2e/harness.h"
#include "e2e/store_helpers.h"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

const char* const kChain = R"(name = "chain"
[steps.raw]
run = "printf 'a\nb\n' > ${outputs.o}"
outputs = { o = "raw.txt" }
[steps.tree]
run = "mkdir -p d/sub && cp ${inputs.r} d/sub/r.txt && echo top > d/top.txt"
inputs = { r = "${steps.raw.outputs.o}" }
outputs = { d = "d" }
[steps.count]
run = "find ${inputs.t} -type f | wc -l > ${outputs.n}"
inputs = { t = "${steps.tree.outputs.d}" }
outputs = { n = "n.txt" }
)";

std::string digest_of(const nlohmann::json& show, const std::string& node, const std::string& output) {
  return step_of(show, node)["outputs"][output]["digest"];
}

}  // namespace

TEST_CASE("logs: every attempt's log, from the artifact store even after the work dirs are gone") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "logs"
[steps.flaky]
run = "echo try $SLUICE_ATTEMPT; test $SLUICE_ATTEMPT -ge 2"
retries = 1
retry_backoff = "10ms"
[steps.quiet]
run = "true"
)");
  REQUIRE(run_sluice({"run", "-j", "1", "wf.toml"}, dir.path()).status == 0);
  const std::string id = newest_run(dir);
  fs::remove_all(dir / ".sluice/runs");
  RunResult all = run_sluice({"logs", id, "flaky"}, dir.path());
  CHECK(all.status == 0);
  CHECK(all.out == "==> flaky attempt 1 (failed) <==\ntry 1\n\n==> flaky attempt 2 (succeeded) <==\ntry 2\n");
  CHECK(run_sluice({"logs", id, "flaky", "--attempt", "2"}, dir.path()).out == "==> flaky attempt 2 (succeeded) <==\ntry 2\n");
  RunResult whole = run_sluice({"logs", id}, dir.path());
  CHECK(whole.out.find("==> quiet attempt 1 (succeeded) <==\n") != std::string::npos);
  auto j = nlohmann::json::parse(run_sluice({"logs", "--json", id, "flaky"}, dir.path()).out);
  REQUIRE(j["logs"].size() == 2);
  CHECK(j["logs"][0]["log"] == "try 1\n");
  CHECK(j["logs"][1]["status"] == "succeeded");
  RunResult unknown = run_sluice({"logs", id, "nope"}, dir.path());
  CHECK(unknown.status == 2);
  CHECK(unknown.err == "sluice logs: error: run " + id + " has no step 'nope'\n");
  CHECK(run_sluice({"logs", "nope"}, dir.path()).err == "sluice logs: error: no run 'nope'\n");
}

TEST_CASE("logs: -f follows a running step until it finishes") {
  TempDir dir;
  // The step prints a line, then waits for the test to say go.
  dir.write("wf.toml", R"(name = "talk"
[steps.talk]
run = "echo line 1; while [ ! -f $GO ]; do sleep 0.02; done; echo line 2; echo line 3"
timeout = "60s"
)");
  const std::vector<std::string> env = {"GO=" + (dir / "go")};
  int pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err", env);
  std::string log;
  for (int i = 0; i < 3000 && log.find("line 1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (fs::exists(dir / ".sluice/runs"))
      for (const auto& run : fs::directory_iterator(dir / ".sluice/runs")) log = read_file((run.path() / "talk/attempt-1.log").string());
  }
  REQUIRE(log == "line 1\n");
  const std::string id = wait_for_run(dir);
  int follower = spawn_sluice({"logs", "-f", id, "talk"}, dir.path(), dir / "f.out", dir / "f.err");
  for (int i = 0; i < 3000 && read_file(dir / "f.out").find("line 1") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(read_file(dir / "f.out") == "==> talk attempt 1 (running) <==\nline 1\n");
  dir.write("go", "");
  CHECK(wait_sluice(follower) == 0);  // returns once the step is done
  CHECK(read_file(dir / "f.out") == "==> talk attempt 1 (running) <==\nline 1\nline 2\nline 3\n");
  CHECK(wait_sluice(pid) == 0);
}

TEST_CASE("artifacts: ls, show, cat (files, folders and a file in a folder) and verify") {
  TempDir dir;
  dir.write("wf.toml", kChain);
  REQUIRE(run_sluice({"run", "wf.toml"}, dir.path()).status == 0);
  const std::string id = newest_run(dir);
  auto show = show_run(dir, id);
  const std::string raw = digest_of(show, "raw", "o"), tree = digest_of(show, "tree", "d");
  CHECK(tree.size() == 7 + 64 + 5);  // "...tree"

  auto ls = nlohmann::json::parse(run_sluice({"artifacts", "ls", "--json", id}, dir.path()).out)["artifacts"];
  REQUIRE(ls.size() == 3);
  CHECK(ls[0]["node"] == "raw");
  CHECK(ls[0]["digest"] == raw);
  CHECK(ls[0]["size"] == 4);

  RunResult cat = run_sluice({"artifacts", "cat", raw}, dir.path());
  CHECK(cat.out == "a\nb\n");
  CHECK(run_sluice({"artifacts", "cat", raw.substr(0, 14)}, dir.path()).out == "a\nb\n");  // a unique start will do
  CHECK(run_sluice({"artifacts", "cat", tree, "sub/r.txt"}, dir.path()).out == "a\nb\n");
  CHECK(run_sluice({"artifacts", "cat", tree}, dir.path()).out.rfind("sluice-tree 1\n", 0) == 0);
  RunResult missing = run_sluice({"artifacts", "cat", tree, "sub/none"}, dir.path());
  CHECK(missing.status == 2);
  CHECK(missing.err == "sluice artifacts: error: " + tree + " holds no file 'sub/none'\n");

  RunResult s = run_sluice({"artifacts", "show", raw}, dir.path());
  CHECK(s.out.find("  produced by raw in run " + id + " (output 'o', raw.txt)\n") != std::string::npos);
  CHECK(s.out.find("  consumed by tree in run " + id + " (input 'r')\n") != std::string::npos);
  auto sj = nlohmann::json::parse(run_sluice({"artifacts", "show", "--json", tree}, dir.path()).out);
  CHECK(sj["kind"] == "tree");
  CHECK(sj["stored"] == true);
  std::vector<std::string> paths;
  for (const auto& e : sj["entries"]) paths.push_back(e["path"]);
  CHECK(paths == std::vector<std::string>{"sub", "sub/r.txt", "top.txt"});
  RunResult unknown = run_sluice({"artifacts", "show", "sha256:0000"}, dir.path());
  CHECK(unknown.status == 2);
  CHECK(unknown.err == "sluice artifacts: error: no artifact 'sha256:0000' is recorded\n");

  RunResult ok = run_sluice({"artifacts", "verify"}, dir.path());
  CHECK(ok.status == 0);
  CHECK(ok.out.find("objects verified: every object matches its digest\n") != std::string::npos);
  // Damage one object behind the store's back.
  const std::string obj = object_path(dir, raw);
  ::chmod(obj.c_str(), 0644);
  std::ofstream(obj, std::ios::app) << "x";
  RunResult bad = run_sluice({"artifacts", "verify"}, dir.path());
  CHECK(bad.status == 1);
  CHECK(bad.out.find("DAMAGED " + fs::canonical(obj).string() + ": its bytes hash to sha256:") != std::string::npos);
  CHECK(nlohmann::json::parse(run_sluice({"artifacts", "verify", "--json"}, dir.path()).out)["issues"].size() == 1);
  CHECK(run_sluice({"artifacts", "frob"}, dir.path()).status == 2);
}

TEST_CASE("lineage: what produced an artifact, from which inputs, recursively, and who consumed it") {
  TempDir dir;
  dir.write("wf.toml", kChain);
  REQUIRE(run_sluice({"run", "wf.toml"}, dir.path()).status == 0);
  const std::string id = newest_run(dir);
  auto show = show_run(dir, id);
  const std::string raw = digest_of(show, "raw", "o"), tree = digest_of(show, "tree", "d"), n = digest_of(show, "count", "n");
  RunResult text = run_sluice({"lineage", n}, dir.path());
  CHECK(text.status == 0);
  CHECK(text.out == n + " (file, 2 B)\n"
                        "  produced by count in run " + id + " (output 'n', n.txt)\n"
                        "    input 't': " + tree + " (tree, 8 B)\n"
                        "      produced by tree in run " + id + " (output 'd', d)\n"
                        "        input 'r': " + raw + " (file, 4 B)\n"
                        "          produced by raw in run " + id + " (output 'o', raw.txt)\n");
  RunResult up = run_sluice({"lineage", raw}, dir.path());
  CHECK(up.out == raw + " (file, 4 B)\n  produced by raw in run " + id + " (output 'o', raw.txt)\n"
                        "  consumed by tree in run " + id + " (input 'r')\n");

  auto j = nlohmann::json::parse(run_sluice({"lineage", "--format", "json", n}, dir.path()).out);
  CHECK(j["produced_by"][0]["node"] == "count");
  CHECK(j["produced_by"][0]["inputs"][0]["artifact"]["digest"] == tree);
  CHECK(j["produced_by"][0]["inputs"][0]["from"]["node"] == "tree");
  CHECK(j["produced_by"][0]["inputs"][0]["artifact"]["produced_by"][0]["inputs"][0]["artifact"]["digest"] == raw);

  RunResult dot = run_sluice({"lineage", "--format", "dot", n}, dir.path());
  CHECK(dot.out.rfind("digraph lineage {\n", 0) == 0);
  CHECK(dot.out.find("  \"" + raw + "\" -> \"" + id + "/tree\" [label=\"r\"];\n") != std::string::npos);
  CHECK(dot.out.find("  \"" + id + "/count\" -> \"" + n + "\" [label=\"n\"];\n") != std::string::npos);

  // A cached re-run is one more producer of the same bytes.
  REQUIRE(run_sluice({"run", "wf.toml"}, dir.path()).status == 0);
  const std::string second = newest_run(dir);
  CHECK(run_sluice({"lineage", raw}, dir.path()).out.find("  produced by raw in run " + second +
                                                          " (output 'o', raw.txt; restored from the cache)\n") !=
        std::string::npos);

  RunResult model = run_sluice({"lineage", "recommender@3"}, dir.path());
  CHECK(model.status == 2);
  CHECK(model.err == "sluice lineage: error: recommender@3: no model 'recommender'\n");
  CHECK(run_sluice({"lineage", "--format", "svg", n}, dir.path()).status == 2);
}

// What a power cut can leave of a small file the recorder stored without a
// sync of its own (docs/store.md, "Small files"): no object, or an empty one.
// The database keeps its bytes, and every reader restores it. (An output a
// later step of the same run reads is stored, synced, when that step's cache
// key is computed: `make` here has no reader in its first run.)
TEST_CASE("artifacts: small outputs and logs a crash lost are restored from the database by their readers") {
  TempDir dir;
  const std::string make = R"(name = "lost"
[steps.make]
run = "echo made > o.txt; echo making"
outputs = { o = "o.txt" }
)";
  dir.write("wf.toml", make);
  REQUIRE(run_sluice({"run", "wf.toml"}, dir.path()).status == 0);
  const std::string id = newest_run(dir);
  auto show = show_run(dir, id);
  const std::string made = digest_of(show, "make", "o");
  const std::string log = step_of(show, "make")["attempts"][0]["log_digest"];
  REQUIRE(log.rfind("sha256:", 0) == 0);
  const std::string made_object = object_path(dir, made), log_object = object_path(dir, log);
  fs::remove(made_object);
  ::chmod(log_object.c_str(), 0644);
  fs::resize_file(log_object, 0);

  RunResult cat = run_sluice({"artifacts", "cat", made}, dir.path());
  INFO(cat.err);
  CHECK(cat.status == 0);
  CHECK(cat.out == "made\n");
  CHECK(read_file(made_object) == "made\n");
  RunResult logs = run_sluice({"logs", id, "make"}, dir.path());
  CHECK(logs.status == 0);
  CHECK(logs.out.find("making\n") != std::string::npos);
  CHECK(read_file(log_object) == "making\n");
  CHECK(run_sluice({"artifacts", "verify"}, dir.path()).status == 0);

  // Restored for a cache hit that a new step reads as its input.
  fs::remove(made_object);
  dir.write("wf.toml", make + R"([steps.use]
run = "cat ${inputs.m} > copy.txt"
inputs = { m = "${steps.make.outputs.o}" }
outputs = { c = "copy.txt" }
)");
  RunResult again = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(again.out << again.err);
  CHECK(again.status == 0);
  CHECK(again.out.find("2 steps: 1 succeeded, 1 cached") != std::string::npos);
  CHECK(read_file(made_object) == "made\n");
  const std::string use_copy = show_run(dir, newest_run(dir))["steps"][1]["outputs"]["c"]["digest"];
  CHECK(use_copy == made);  // the same bytes went through
}
