// The feedback loop under `sluice serve`: a run the server started whose
// workflow.trigger step queues a run of another served workflow, which the
// server then starts as a run of its own (trigger "child", parent = the
// triggering run). Real server, real runs, real HTTP.
#include <catch2/catch.hpp>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "e2e/serve_harness.h"

using namespace sluice::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Retraining that cannot finish before the test creates `gate`: so the
// monitor can only succeed first if it did not wait for it.
std::string retrain_toml(const std::string& gate) {
  return R"(
name = "retrain"

[params]
reason = "manual"
threshold = 0.5

[steps.train]
run = "echo reason=${params.reason} >> $SLUICE_VALUES; echo threshold=${params.threshold} >> $SLUICE_VALUES; i=0; while [ ! -f )" +
         gate + R"( ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; test -f )" + gate + R"("
)";
}

const char* kMonitor = R"(
name = "monitor"

[steps.check]
run = "echo drift=true >> $SLUICE_VALUES; echo score=0.72 >> $SLUICE_VALUES"

[steps.retrain]
uses = "workflow.trigger"
with = { workflow = "retrain.toml", params = { reason = "drift ${steps.check.values.drift}", threshold = "${steps.check.values.score}" } }
when = "steps.check.values.drift"

[steps.report]
run = "echo queued=${steps.retrain.values.run_id} >> $SLUICE_VALUES"
)";

json step_of(const json& run, const std::string& node) {
  for (const json& s : run["steps"])
    if (s["node"] == node) return s;
  FAIL("no step " << node << " in " << run.dump(2));
  return {};
}

}  // namespace

TEST_CASE("serve feedback: workflow.trigger in a served run queues the target for the server and does not wait") {
  TempDir dir;
  const std::string gate = dir / "gate";
  write_workflow(dir, "retrain", retrain_toml(gate));
  write_workflow(dir, "monitor", kMonitor);
  TestServer server(dir);
  server.start();
  const std::string t = server.token("trigger");

  Reply r = server.post("/api/v1/workflows/monitor/runs", "", t);
  REQUIRE(r.status == 202);
  const std::string monitor_id = r.json()["run_id"];
  // The monitor finishes while the retraining it queued is still blocked.
  json monitor = server.wait_run(monitor_id, t, 30);
  INFO(monitor.dump(2));
  REQUIRE(monitor["status"] == "succeeded");
  const json step = step_of(monitor, "retrain");
  CHECK(step["status"] == "succeeded");
  const std::string retrain_id = step["values"]["run_id"];
  CHECK(step["values"] == json({{"run_id", retrain_id}, {"status", "queued"}}));
  CHECK(step_of(monitor, "report")["values"]["queued"] == retrain_id);
  r = server.get("/api/v1/runs/" + monitor_id + "/steps/retrain/log", t);
  CHECK(r.body == "info: queued run " + retrain_id + " of workflow 'retrain' for sluice serve to start\n");

  // It is a run of its own, queued by the monitor, started by the server.
  r = server.get("/api/v1/runs?workflow=retrain", t);
  REQUIRE(r.status == 200);
  REQUIRE(r.json()["runs"].size() == 1);
  json retrain = r.json()["runs"][0];
  CHECK(retrain["id"] == retrain_id);
  CHECK(retrain["trigger"] == "child");
  CHECK(retrain["parent_run"] == monitor_id);
  CHECK(retrain["params"] == json({{"reason", "drift true"}, {"threshold", 0.72}}));
  CHECK((retrain["status"] == "queued" || retrain["status"] == "running"));
  CHECK(monitor["parent_run"].is_null());

  dir.write("gate", "");
  retrain = server.wait_run(retrain_id, t, 60);
  INFO(retrain.dump(2));
  CHECK(retrain["status"] == "succeeded");
  CHECK(retrain["trigger"] == "child");
  CHECK(retrain["parent_run"] == monitor_id);
  CHECK(step_of(retrain, "train")["values"] == json({{"reason", "drift true"}, {"threshold", "0.72"}}));
  // The server's queue ran it: `sluice run --queued` logs there.
  CHECK(fs::exists(server.home() + "/runs/" + retrain_id + "/sluice-run.log"));
  // And the monitor was over before the retraining began to end.
  CHECK(monitor["finished_at"].get<std::string>() <= retrain["finished_at"].get<std::string>());
  CHECK(server.count_runs(server.token("admin")) == 2);
}

TEST_CASE("serve feedback: workflow.trigger of a workflow the server does not serve, or with bad params, fails its step") {
  TempDir dir;
  write_workflow(dir, "retrain", retrain_toml(dir / "gate"));
  write_workflow(dir, "broken", "name = \"broken\"\n[steps.a]\nrun = 1\n");
  write_workflow(dir, "unserved", R"(
name = "unserved"
[steps.go]
uses = "workflow.trigger"
with = { workflow = "../elsewhere/retrain.toml" }
)");
  write_workflow(dir, "invalid", R"(
name = "invalid"
[steps.go]
uses = "workflow.trigger"
with = { workflow = "broken.toml" }
)");
  write_workflow(dir, "badparams", R"(
name = "badparams"
[steps.go]
uses = "workflow.trigger"
with = { workflow = "retrain", params = { threshold = "high" } }
)");
  TestServer server(dir);
  server.start();
  const std::string t = server.token("admin");
  const std::string served = fs::weakly_canonical(dir / "workflows").string();
  auto failure = [&](const std::string& workflow) {
    Reply r = server.post("/api/v1/workflows/" + workflow + "/runs", "", t);
    REQUIRE(r.status == 202);
    json run = server.wait_run(r.json()["run_id"], t, 30);
    INFO(run.dump(2));
    CHECK(run["status"] == "failed");
    return step_of(run, "go")["error"].get<std::string>();
  };
  CHECK(failure("unserved") == "workflow.trigger: '../elsewhere/retrain.toml' is not a workflow sluice serve serves from " +
                                   served + " (it serves badparams, invalid, retrain, unserved); did you mean 'retrain'?");
  CHECK(failure("invalid") == "workflow.trigger: 'broken.toml' is not served: it does not validate (" + served +
                                  "/broken.toml)");
  // By name works too; the params are typed like -p.
  CHECK(failure("badparams") == "workflow.trigger: param 'threshold' is a float; cannot use 'high'");
  CHECK(server.get("/api/v1/runs?workflow=retrain", t).json()["runs"].size() == 0);
}

TEST_CASE("serve feedback: sluice run takes --workflows only with --queued and --parent only without it") {
  TempDir dir;
  dir.write("a.toml", "name = \"a\"\n[steps.s]\nrun = \"true\"\n");
  RunResult r = run_sluice({"run", "--workflows", dir.path(), "a.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.substr(0, r.err.find('\n')) ==
        "sluice run: error: --workflows goes with --queued: it names the folder sluice serve serves");
  r = run_sluice({"run", "--queued", "r1", "--parent", "r0"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.substr(0, r.err.find('\n')) ==
        "sluice run: error: --parent does not go with --queued: a queued run's parent is recorded");
  CHECK(!fs::exists(dir / ".sluice"));  // nothing ran
}
