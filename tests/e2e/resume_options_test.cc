// End-to-end: a run resumed after kill -9 of its engine keeps the options it
// was started with, as recorded in the store: --only and --from select the
// same steps, a rerun's pinned inputs stay pinned, --keep-going holds unless
// `resume` is told otherwise (--keep-going / --no-keep-going).
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "e2e/crash_helpers.h"
#include "e2e/harness.h"
#include "e2e/store_helpers.h"

using namespace sluice::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A step appends its name to $TRACE when it starts; a gated one then waits
// until the file $GATES/NAME exists.
std::string gated(const std::string& name) {
  return "echo " + name + " >> $TRACE; while [ ! -e $GATES/" + name + " ]; do sleep 0.02; done";
}

struct Fixture {
  TempDir dir;
  std::vector<std::string> env;

  explicit Fixture(const std::string& workflow) {
    dir.write("wf.toml", workflow);
    fs::create_directories(dir / "gates");
    env = {"TRACE=" + (dir / "trace"), "GATES=" + (dir / "gates")};
  }

  void open_gate(const std::string& step) const { dir.write("gates/" + step, ""); }
  std::string trace() const { return dir.exists("trace") ? read_file(dir / "trace") : std::string(); }

  int spawn(const std::vector<std::string>& args) const {
    return spawn_sluice(args, dir.path(), dir / "run.out", dir / "run.err", env);
  }

  // Polls `sluice show` until step `node` of run `id` has status `status`.
  void wait_status(const std::string& id, const std::string& node, const std::string& status) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto statuses = step_statuses(show_run(dir, id));
      if (statuses.count(node) && statuses[node] == status) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("step " << node << " of run " << id << " never recorded " << status << ": " << show_run(dir, id).dump());
  }

  // The newest run (other than `after`) once its step `node` runs.
  std::string wait_running(const std::string& node, const std::string& after = {}) const {
    std::string id = wait_for_run(dir);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!after.empty() && id == after && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      id = newest_run(dir);
    }
    wait_status(id, node, "running");
    return id;
  }

  void kill_engine(int pid) const {
    ::kill(pid, SIGKILL);
    CHECK(wait_sluice(pid) == 128 + SIGKILL);
  }
};

// a -> b -> c, and d beside them. b waits for its gate.
const char* kSelectWorkflow = R"(name = "select"
[steps.a]
run = "echo a >> $TRACE; echo a > ${outputs.o}"
outputs = { o = "a.txt" }

[steps.b]
run = "GATED; cat ${inputs.i} > ${outputs.o}; echo b >> ${outputs.o}"
inputs = { i = "${steps.a.outputs.o}" }
outputs = { o = "b.txt" }

[steps.c]
run = "echo c >> $TRACE; cat ${inputs.i} > ${outputs.o}"
inputs = { i = "${steps.b.outputs.o}" }
outputs = { o = "c.txt" }

[steps.d]
run = "echo d >> $TRACE"
)";

std::string select_workflow() {
  std::string wf = kSelectWorkflow;
  wf.replace(wf.find("GATED"), 5, gated("b"));
  return wf;
}

// The digest step `use` of `run` recorded for its input `d`.
std::string input_digest(const TempDir& dir, const std::string& run) {
  auto rows = query(dir / ".sluice/sluice.db",
                    "SELECT a.digest FROM step_inputs i JOIN steps s ON s.id = i.step_id JOIN artifacts a "
                    "ON a.id = i.artifact_id WHERE s.run_id = '" + run + "' AND s.node = 'use' AND i.name = 'd'");
  REQUIRE(rows.size() == 1);
  return rows[0];
}

}  // namespace

TEST_CASE("resume: a run started with --only or --from resumes with the same steps selected") {
  struct Case {
    std::string option;
    std::set<std::string> steps;  // what the selection holds
    std::string trace;            // a before the kill; b again after it, then what follows
  };
  for (const Case& k : {Case{"--only", {"a", "b"}, "a\nb\nb\n"}, Case{"--from", {"a", "b", "c"}, "a\nb\nb\nc\n"}}) {
    DYNAMIC_SECTION(k.option) {
      Fixture f(select_workflow());
      const int pid = f.spawn({"run", k.option, "b", "wf.toml"});
      const std::string id = f.wait_running("b");
      f.kill_engine(pid);
      f.open_gate("b");
      CHECK(show_run(f.dir, id)["options"] == json({{k.option.substr(2), "b"}}));

      RunResult r = run_sluice({"resume", id}, f.dir.path(), f.env);
      INFO(r.out << r.err);
      REQUIRE(r.status == 0);
      CHECK(r.out.rfind("resuming run " + id + ": 1 finished step restored, 1 interrupted step runs again\n", 0) == 0);
      // d (and, for --only, c) is outside the selection: it never ran.
      CHECK(f.trace() == k.trace);
      auto show = show_run(f.dir, id);
      CHECK(show["status"] == "succeeded");
      std::set<std::string> recorded;
      for (const auto& st : show["steps"]) {
        recorded.insert(st["node"].get<std::string>());
        CHECK(st["status"] == "succeeded");
      }
      CHECK(recorded == k.steps);
      const std::string summary = std::to_string(k.steps.size()) + " steps: " + std::to_string(k.steps.size()) +
                                  " succeeded (";
      CHECK(r.out.find(summary) != std::string::npos);
      check_never_running_twice(f.dir, id);
    }
  }
}

TEST_CASE("resume: a rerun killed mid-run resumes with the inputs it pinned, whatever the file holds now") {
  Fixture f(std::string(R"(name = "pinned"
[steps.use]
run = ")") + gated("use") + R"(; cat ${inputs.d} > ${outputs.o}"
inputs = { d = "data.txt" }
outputs = { o = "out.txt" }
)");
  f.dir.write("data.txt", "first\n");
  f.open_gate("use");
  REQUIRE(run_sluice({"run", "wf.toml"}, f.dir.path(), f.env).status == 0);
  const std::string original = newest_run(f.dir);
  const std::string pinned = input_digest(f.dir, original);

  // The rerun reads the bytes the original read, not the file as it is now;
  // --no-cache, so it runs rather than taking the original's result.
  f.dir.write("data.txt", "second\n");
  fs::remove(f.dir / "gates/use");
  const int pid = f.spawn({"rerun", "--no-cache", original});
  const std::string id = f.wait_running("use", original);
  f.kill_engine(pid);
  const json options = show_run(f.dir, id)["options"];
  CHECK(options == json({{"pinned_inputs", {{"use", {{"d", pinned}}}}}}));
  CHECK(show_run(f.dir, id)["no_cache"] == true);

  // Changed again between the kill and the resume.
  f.dir.write("data.txt", "third\n");
  f.open_gate("use");
  RunResult r = run_sluice({"resume", id}, f.dir.path(), f.env);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(f.trace() == "use\nuse\nuse\n");  // the original, the rerun's interrupted attempt, its new one
  CHECK(read_file(f.dir / (".sluice/runs/" + id + "/use/out.txt")) == "first\n");
  auto show = show_run(f.dir, id);
  CHECK(show["status"] == "succeeded");
  CHECK(show["trigger"] == "rerun");
  CHECK(input_digest(f.dir, id) == pinned);
  CHECK(step_of(show, "use")["attempts"].size() == 2);
}

TEST_CASE("resume: --keep-going is remembered, and resume --keep-going or --no-keep-going overrides it") {
  // bad fails once its gate opens; good waits for its own, then next runs.
  std::string workflow = R"(name = "keep"
[steps.bad]
run = "GATED_BAD; exit 3"

[steps.good]
run = "GATED_GOOD"

[steps.next]
run = "echo next >> $TRACE"
needs = ["good"]
)";
  workflow.replace(workflow.find("GATED_BAD"), 9, gated("bad"));
  workflow.replace(workflow.find("GATED_GOOD"), 10, gated("good"));
  struct Case {
    std::string name;
    std::vector<std::string> run_flags, resume_flags;
    bool keeps_going;
  };
  for (const Case& k : {Case{"recorded -k", {"-k"}, {}, true},
                        Case{"recorded -k, resume --no-keep-going", {"-k"}, {"--no-keep-going"}, false},
                        Case{"no -k recorded, resume -k", {}, {"-k"}, true}}) {
    DYNAMIC_SECTION(k.name) {
      Fixture f(workflow);
      std::vector<std::string> args = {"run", "-j", "2"};
      args.insert(args.end(), k.run_flags.begin(), k.run_flags.end());
      args.push_back("wf.toml");
      const int pid = f.spawn(args);
      const std::string id = f.wait_running("bad");
      f.wait_status(id, "good", "running");
      f.kill_engine(pid);
      CHECK(show_run(f.dir, id)["options"] == (k.run_flags.empty() ? json::object() : json({{"keep_going", true}})));

      // bad fails first; good is let go only once that is recorded.
      f.open_gate("bad");
      std::vector<std::string> resume = {"resume", id, "-j", "2"};
      resume.insert(resume.end(), k.resume_flags.begin(), k.resume_flags.end());
      const int resumer = spawn_sluice(resume, f.dir.path(), f.dir / "resume.out", f.dir / "resume.err", f.env);
      // Not the step's status: crash recovery may record bad failed ("engine
      // died") before resume runs it again. Its second attempt's end it is.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      auto bad_failed_again = [&] {
        const json attempts = step_of(show_run(f.dir, id), "bad")["attempts"];
        return attempts.size() == 2 && attempts[1]["status"] == "failed";
      };
      while (!bad_failed_again() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      REQUIRE(bad_failed_again());
      f.open_gate("good");
      CHECK(wait_sluice(resumer) == 1);
      INFO(read_file(f.dir / "resume.out") << read_file(f.dir / "resume.err"));
      auto statuses = step_statuses(show_run(f.dir, id));
      CHECK(statuses["bad"] == "failed");
      if (k.keeps_going) {
        CHECK(statuses["good"] == "succeeded");
        CHECK(statuses["next"] == "succeeded");
        CHECK(f.trace().find("next\n") != std::string::npos);
      } else {
        CHECK(statuses["good"] == "cancelled");
        CHECK(f.trace().find("next") == std::string::npos);
      }
      // The recorded options stay as the run was started.
      CHECK(show_run(f.dir, id)["options"] == (k.run_flags.empty() ? json::object() : json({{"keep_going", true}})));
      check_never_running_twice(f.dir, id);
    }
  }
}

TEST_CASE("resume: --keep-going and --no-keep-going together are a usage error") {
  TempDir dir;
  RunResult r = run_sluice({"resume", "some-run", "-k", "--no-keep-going"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.rfind("sluice resume: error: --keep-going and --no-keep-going cannot be combined\n", 0) == 0);
}
