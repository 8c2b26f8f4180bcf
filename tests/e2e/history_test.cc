// End-to-end: runs are recorded in .sluice/sluice.db and .sluice/cas.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace sluice::test;

TEST_CASE("history: a run is recorded with steps, attempts, values, metrics, outputs and stored logs") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "hist"
[steps.make]
run = "echo hello > ${outputs.greeting}; echo n=1 >> $SLUICE_VALUES; echo loss 0.25 >> $SLUICE_METRICS; echo made"
outputs = { greeting = "greeting.txt" }
[steps.flaky]
run = "echo try $SLUICE_ATTEMPT; test $SLUICE_ATTEMPT -ge 2"
retries = 1
retry_backoff = "10ms"
needs = ["make"]
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  auto runs = run_sluice({"runs", "--json"}, dir.path());
  REQUIRE(runs.status == 0);
  auto list = nlohmann::json::parse(runs.out)["runs"];
  REQUIRE(list.size() == 1);
  CHECK(list[0]["workflow"] == "hist");
  CHECK(list[0]["status"] == "succeeded");
  const std::string id = list[0]["id"];

  auto show = run_sluice({"show", "--json", id}, dir.path());
  REQUIRE(show.status == 0);
  auto j = nlohmann::json::parse(show.out);
  REQUIRE(j["steps"].size() == 2);
  auto make = j["steps"][0]["node"] == "make" ? j["steps"][0] : j["steps"][1];
  auto flaky = j["steps"][0]["node"] == "make" ? j["steps"][1] : j["steps"][0];
  CHECK(make["status"] == "succeeded");
  CHECK(make["values"]["n"] == "1");
  CHECK(make["metrics"][0]["name"] == "loss");
  CHECK(make["metrics"][0]["value"] == 0.25);
  // The output is stored by content: the object holds the same bytes.
  std::string digest = make["outputs"]["greeting"]["digest"];
  REQUIRE(digest.rfind("sha256:", 0) == 0);
  std::string hex = digest.substr(7);
  CHECK(read_file(dir / (".sluice/cas/sha256/" + hex.substr(0, 2) + "/" + hex.substr(2))) == "hello\n");
  // Every attempt is recorded, each with its own stored log.
  REQUIRE(flaky["attempts"].size() == 2);
  CHECK(flaky["attempts"][0]["status"] == "failed");
  CHECK(flaky["attempts"][1]["status"] == "succeeded");
  std::string log1 = flaky["attempts"][0]["log_digest"];
  REQUIRE(log1.rfind("sha256:", 0) == 0);
  CHECK(read_file(dir / (".sluice/cas/sha256/" + log1.substr(7, 2) + "/" + log1.substr(9))) == "try 1\n");

  // A second run lists first.
  REQUIRE(run_sluice({"run", "wf.toml"}, dir.path()).status == 0);
  list = nlohmann::json::parse(run_sluice({"runs", "--json"}, dir.path()).out)["runs"];
  REQUIRE(list.size() == 2);
  CHECK(list[1]["id"] == id);
  CHECK(list[0]["id"] > list[1]["id"]);
}

TEST_CASE("history: a failed run is recorded failed, and an unknown run is an error") {
  TempDir dir;
  dir.write("wf.toml", "name = \"bad\"\n[steps.x]\nrun = \"exit 4\"\n");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  CHECK(r.status == 1);
  auto list = nlohmann::json::parse(run_sluice({"runs", "--json", "--status", "failed"}, dir.path()).out)["runs"];
  REQUIRE(list.size() == 1);
  auto show = nlohmann::json::parse(run_sluice({"show", "--json", list[0]["id"]}, dir.path()).out);
  CHECK(show["steps"][0]["error"] == "exit code 4");
  CHECK(show["steps"][0]["attempts"][0]["exit_code"] == 4);
  auto missing = run_sluice({"show", "nope"}, dir.path());
  CHECK(missing.status == 2);
  CHECK(missing.err == "sluice show: error: no run 'nope'\n");
}

TEST_CASE("history: runs before any run says where it looked") {
  TempDir dir;
  auto r = run_sluice({"runs"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == "sluice runs: error: no runs recorded in " + dir.path() + "/.sluice (run a workflow first, or pass --home)\n");
}

TEST_CASE("history: a run records the commit of the git repository holding its workflow") {
  if (std::system("git --version >/dev/null 2>&1") != 0) {
    WARN("git is not installed");
    return;
  }
  TempDir dir;
  dir.write("flows/wf.toml", "name = \"pinned\"\n[steps.s]\nrun = \"true\"\n");
  const std::string git = "git -C '" + dir.path() + "' -c user.name=t -c user.email=t@t ";
  REQUIRE(std::system(("git init -q '" + dir.path() + "' && " + git + "add flows && " + git + "commit -q -m one").c_str()) == 0);
  std::string head;
  {
    std::FILE* p = ::popen((git + "rev-parse HEAD").c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[128] = {};
    if (std::fgets(buf, sizeof buf, p)) head = buf;
    ::pclose(p);
  }
  while (!head.empty() && head.back() == '\n') head.pop_back();
  REQUIRE(head.size() == 40);
  auto r = run_sluice({"run", "flows/wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  auto runs = run_sluice({"runs", "--json"}, dir.path());
  REQUIRE(runs.status == 0);
  auto list = nlohmann::json::parse(runs.out)["runs"];
  REQUIRE(list.size() == 1);
  auto shown = run_sluice({"show", list[0]["id"].get<std::string>(), "--json"}, dir.path());
  REQUIRE(shown.status == 0);
  CHECK(nlohmann::json::parse(shown.out)["git_commit"] == head);
}
