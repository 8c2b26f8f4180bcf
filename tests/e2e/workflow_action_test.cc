// End-to-end: the built-in workflow plugin — a step starting another
// workflow as a child run (workflow.run, workflow.trigger).
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

const char* kChild = R"(name = "child"
[params]
lr = 0.1
fail = false
[steps.train]
run = "echo lr=${params.lr} >> $SLUICE_VALUES; test ${params.fail} = false"
)";

std::map<std::string, nlohmann::json> runs_by_workflow(const TempDir& dir) {
  auto r = run_sluice({"runs", "--json"}, dir.path());
  REQUIRE(r.status == 0);
  std::map<std::string, nlohmann::json> out;
  const nlohmann::json list = nlohmann::json::parse(r.out);  // kept: the loop reads into it
  for (const auto& run : list["runs"]) out[run["workflow"].get<std::string>()] = run;
  return out;
}

nlohmann::json show(const TempDir& dir, const std::string& id) {
  auto r = run_sluice({"show", "--json", id}, dir.path());
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

}  // namespace

TEST_CASE("workflow.run: a child run with its own params, recorded as a run of its own") {
  TempDir dir;
  dir.write("child.toml", kChild);
  dir.write("parent.toml", R"(name = "parent"
[steps.retrain]
uses = "workflow.run"
with = { workflow = "child.toml", params = { lr = 0.3 } }
[steps.report]
run = "echo child=${steps.retrain.values.run_id} status=${steps.retrain.values.status} > ${outputs.txt}"
outputs = { txt = "report.txt" }
)");
  auto r = run_sluice({"run", "parent.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  auto runs = runs_by_workflow(dir);
  REQUIRE(runs.count("child") == 1);
  std::string child_id = runs["child"]["id"];
  CHECK(runs["child"]["status"] == "succeeded");
  CHECK(runs["child"]["trigger"] == "child");
  CHECK(runs["child"]["parent_run"] == runs["parent"]["id"]);
  auto child = show(dir, child_id);
  CHECK(child["steps"][0]["values"]["lr"] == "0.3");
  auto parent = show(dir, runs["parent"]["id"]);
  CHECK(parent["steps"][0]["values"] == nlohmann::json({{"run_id", child_id}, {"status", "succeeded"}}));
  std::string workdir = fs::path(parent["steps"][1]["attempts"][0]["log_path"].get<std::string>()).parent_path().string();
  CHECK(read_file(workdir + "/report.txt") == "child=" + child_id + " status=succeeded\n");
}

TEST_CASE("workflow.run fails its step when the child run fails, workflow.trigger reports it as a value") {
  TempDir dir;
  dir.write("child.toml", kChild);
  dir.write("parent.toml", R"(name = "parent"
[steps.must]
uses = "workflow.run"
with = { workflow = "child.toml", params = { fail = true } }
[steps.loop]
uses = "workflow.trigger"
with = { workflow = "child.toml", params = { fail = true } }
[steps.missing]
uses = "workflow.run"
with = { workflow = "nope.toml" }
)");
  auto r = run_sluice({"run", "-j", "1", "--keep-going", "parent.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  auto runs = runs_by_workflow(dir);
  auto parent = show(dir, runs["parent"]["id"]);
  std::map<std::string, nlohmann::json> steps;
  for (const auto& s : parent["steps"]) steps[s["node"].get<std::string>()] = s;
  std::string must_child = steps["must"]["values"].value("run_id", "");
  CHECK(steps["must"]["status"] == "failed");
  CHECK(steps["must"]["error"].get<std::string>().rfind("child run 2", 0) == 0);
  CHECK(steps["must"]["error"].get<std::string>().find(" failed") != std::string::npos);
  CHECK(steps["loop"]["status"] == "succeeded");
  CHECK(steps["loop"]["values"]["status"] == "failed");
  CHECK(steps["missing"]["error"] == "workflow.run: workflow file not found: " + (dir / "nope.toml"));
}

TEST_CASE("workflow.run: interrupting the parent stops the child run and its steps") {
  TempDir dir;
  dir.write("child.toml", R"(name = "child"
[steps.long]
run = "sleep 1000 & echo $! > pid; touch started; wait"
)");
  dir.write("parent.toml", R"(name = "parent"
[steps.retrain]
uses = "workflow.run"
with = { workflow = "child.toml" }
)");
  int pid = spawn_sluice({"run", "parent.toml"}, dir.path(), dir / "out", dir / "err");
  std::string started;
  for (int i = 0; i < 2000 && started.empty(); ++i) {
    if (fs::exists(dir / ".sluice/runs"))
      for (const auto& e : fs::directory_iterator(dir / ".sluice/runs"))
        if (fs::exists(e.path() / "long/started")) started = (e.path() / "long").string();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE_FALSE(started.empty());
  kill(pid, SIGINT);
  int status = wait_sluice(pid, 30);
  INFO(read_file(dir / "out") << read_file(dir / "err"));
  CHECK(status == 130);
  int sleeper = std::stoi(read_file(started + "/pid"));
  CHECK_FALSE(process_alive(sleeper));
  auto runs = runs_by_workflow(dir);
  CHECK(runs["child"]["status"] == "cancelled");
  CHECK(runs["parent"]["status"] == "cancelled");
}
