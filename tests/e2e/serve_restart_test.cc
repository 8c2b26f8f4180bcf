// Runs survive the server: queued runs start after a restart, running ones
// are adopted, and one whose process died is marked failed.
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <thread>

#include "e2e/serve_harness.h"

using namespace sluice::test;
using nlohmann::json;

namespace {

const char* kSlow = R"(
name = "slow"

[params]
secs = 1.5

[steps.wait]
run = "echo start; sleep ${params.secs}; echo end"
)";

// The pid of the `sluice run --queued RUN` process, or 0.
int run_process(const std::string& run_id) {
  for (const std::filesystem::directory_entry& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_file(e.path().string() + "/cmdline");
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    if (cmdline.find(" run --queued " + run_id + " ") != std::string::npos && process_alive(std::stoi(name)))
      return std::stoi(name);
  }
  return 0;
}

std::string wait_status(const TestServer& s, const std::string& id, const std::string& t, const std::string& want) {
  std::string status;
  for (int i = 0; i < 600; ++i) {
    status = s.get("/api/v1/runs/" + id, t).json().value("status", "");
    if (status == want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return status;
}

}  // namespace

TEST_CASE("serve restart: after kill -9 of the server, running runs are adopted and queued ones start") {
  TempDir dir;
  write_workflow(dir, "slow", kSlow);
  TestServer server(dir, {"--max-runs", "1"});
  server.start();
  const std::string t = server.token("admin");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(server.post("/api/v1/workflows/slow/runs", "{}", t).json()["run_id"]);
  REQUIRE(wait_status(server, ids[0], t, "running") == "running");
  const int first = run_process(ids[0]);
  REQUIRE(first > 0);
  server.kill9();
  // The run lives in its own session: the server's death did not touch it.
  CHECK(process_alive(first));

  TestServer next(dir, {"--max-runs", "1"});
  next.start();
  for (const std::string& id : ids) {
    json run = next.wait_run(id, t, 60);
    CHECK(run["status"] == "succeeded");
    CHECK(run["steps"][0]["attempts"] == 1);  // nothing ran twice
  }
  if (next.log().find("sluice serve: adopted run " + ids[0]) == std::string::npos)
    CHECK(next.get("/api/v1/runs/" + ids[0], t).json()["finished_at"] != nullptr);  // it ended before the restart
  // One at a time, in order: each started after the one before finished.
  json a = next.get("/api/v1/runs/" + ids[1], t).json(), b = next.get("/api/v1/runs/" + ids[2], t).json();
  CHECK(a["started_at"].get<std::string>() >= next.get("/api/v1/runs/" + ids[0], t).json()["finished_at"].get<std::string>());
  CHECK(b["started_at"].get<std::string>() >= a["finished_at"].get<std::string>());
}

TEST_CASE("serve restart: a run whose process is killed is marked failed, by the server or the next one") {
  TempDir dir;
  write_workflow(dir, "slow", kSlow);
  TestServer server(dir);
  server.start();
  const std::string t = server.token("admin");

  // Killed while the server watches.
  const std::string one = server.post("/api/v1/workflows/slow/runs", R"({"params": {"secs": 3}})", t).json()["run_id"];
  REQUIRE(wait_status(server, one, t, "running") == "running");
  int pid = run_process(one);
  REQUIRE(pid > 0);
  ::kill(pid, SIGKILL);
  json run = server.wait_run(one, t, 30);
  CHECK(run["status"] == "failed");
  CHECK(run["error"] == "engine died: its process (pid " + std::to_string(pid) +
                            ") was killed by signal 9 before the run finished");

  // Killed while no server runs: the next one finds it gone.
  const std::string two = server.post("/api/v1/workflows/slow/runs", R"({"params": {"secs": 3}})", t).json()["run_id"];
  REQUIRE(wait_status(server, two, t, "running") == "running");
  pid = run_process(two);
  REQUIRE(pid > 0);
  server.kill9();
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 400 && process_alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  TestServer next(dir);
  next.start();
  run = next.wait_run(two, t, 30);
  CHECK(run["status"] == "failed");
  CHECK(run["error"] == "engine died: its process (pid " + std::to_string(pid) + ") is gone before the run finished");
}

TEST_CASE("serve restart: a queued run is claimed by one process only") {
  TempDir dir;
  write_workflow(dir, "slow", kSlow);
  TestServer server(dir, {"--max-runs", "1"});
  server.start();
  const std::string t = server.token("admin");
  const std::string busy = server.post("/api/v1/workflows/slow/runs", R"({"params": {"secs": 2}})", t).json()["run_id"];
  const std::string queued = server.post("/api/v1/workflows/slow/runs", R"({"params": {"secs": 0.1}})", t).json()["run_id"];
  REQUIRE(wait_status(server, busy, t, "running") == "running");
  // Another process starts the queued run by hand, before the server does.
  RunResult mine = run_sluice({"run", "--queued", queued, "--home", server.home()}, dir.path());
  CHECK(mine.status == 0);
  RunResult twice = run_sluice({"run", "--queued", queued, "--home", server.home()}, dir.path());
  CHECK(twice.status == 2);
  CHECK(twice.err == "sluice run: error: run '" + queued + "' is succeeded, not queued\n");
  CHECK(server.wait_run(busy, t)["status"] == "succeeded");
  json run = server.wait_run(queued, t);
  CHECK(run["status"] == "succeeded");
  CHECK(run["steps"][0]["attempts"] == 1);
  // The server let it be: it ran once.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(server.get("/api/v1/runs/" + queued, t).json()["steps"][0]["attempts"] == 1);
}
