// Runs survive the server: queued runs start after a restart, running ones
// are adopted, and one whose process died is resumed in the same run
// (`sluice resume`), at most three times.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>

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

// The pid of the step `wait`'s shell (its process group) in `run`'s work dir.
int step_group(const TestServer& s, const std::string& run) {
  const std::string path = s.home() + "/runs/" + run + "/wait/pg";
  REQUIRE(wait_for_file(path, 30000));
  // The shell creates the file before it writes the pid: wait for the line.
  std::string text = read_file(path);
  for (int i = 0; i < 1000 && (text.empty() || text.back() != '\n'); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    text = read_file(path);
  }
  REQUIRE(!text.empty());
  return std::stoi(text);
}

// kill -9 of a run's `sluice` process and of the step it runs, once the
// step's attempt is recorded.
void kill_run(const TestServer& s, const std::string& run, int pid, const std::string& token) {
  const int group = step_group(s, run);
  for (int i = 0; i < 600; ++i) {
    json steps = s.get("/api/v1/runs/" + run, token).json()["steps"];
    if (!steps.empty() && steps[0]["status"] == "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ::kill(pid, SIGKILL);
  ::kill(-group, SIGKILL);
  for (int i = 0; i < 400 && process_alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

// One column of the rows a query on the server's sluice.db returns.
std::vector<std::string> query(const TestServer& s, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((s.home() + "/sluice.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::vector<std::string> rows;
  while (sqlite3_step(st) == SQLITE_ROW) rows.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

const char* kResumable = R"(
name = "slow"

[params]
secs = 1.5

[steps.wait]
run = "echo $$$$ > $SLUICE_WORKDIR/pg; echo start; sleep ${params.secs}; echo end"
)";

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


TEST_CASE("serve restart: a run whose process is killed is resumed in the same run, by the server or the next one") {
  TempDir dir;
  write_workflow(dir, "slow", kResumable);
  TestServer server(dir);
  server.start();
  const std::string t = server.token("admin");

  // Killed while the server watches.
  const std::string one = server.post("/api/v1/workflows/slow/runs", R"({"params": {"secs": 1}})", t).json()["run_id"];
  REQUIRE(wait_status(server, one, t, "running") == "running");
  int pid = run_process(one);
  REQUIRE(pid > 0);
  kill_run(server, one, pid, t);
  json run = server.wait_run(one, t, 60);
  CHECK(run["id"] == one);
  CHECK(run["status"] == "succeeded");
  CHECK(run["error"] == nullptr);
  CHECK(run["steps"][0]["attempts"] == 2);  // the interrupted attempt and the resumed one
  CHECK(query(server, "SELECT kind FROM events WHERE run_id = '" + one + "' AND kind LIKE 'run_%' ORDER BY seq") ==
        std::vector<std::string>{"run_started", "run_resumed", "run_finished"});
  CHECK(server.log().find("sluice serve: resuming run " + one + ": engine died: its process (pid " + std::to_string(pid) +
                          ") was killed by signal 9 before the run finished\n") != std::string::npos);

  // Killed together with the server, mid-step: the next server resumes it.
  const std::string two = server.post("/api/v1/workflows/slow/runs", R"({"params": {"secs": 1}})", t).json()["run_id"];
  REQUIRE(wait_status(server, two, t, "running") == "running");
  pid = run_process(two);
  REQUIRE(pid > 0);
  const int group = step_group(server, two);
  for (int i = 0; i < 600 && server.get("/api/v1/runs/" + two, t).json()["steps"].empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));  // the step's attempt is recorded
  server.kill9();
  ::kill(pid, SIGKILL);
  ::kill(-group, SIGKILL);
  for (int i = 0; i < 400 && process_alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  TestServer next(dir);
  next.start();
  run = next.wait_run(two, t, 60);
  CHECK(run["id"] == two);
  CHECK(run["status"] == "succeeded");
  CHECK(run["steps"][0]["status"] == "succeeded");
  CHECK(run["steps"][0]["attempts"] == 2);
  CHECK(query(next, "SELECT a.status || ' ' || coalesce(a.error, '') FROM attempts a JOIN steps s ON s.id = a.step_id "
                    "WHERE s.run_id = '" + two + "' ORDER BY a.number") ==
        std::vector<std::string>{"failed engine died (pid " + std::to_string(pid) + ")", "succeeded "});
  CHECK(next.count_runs(t) == 2);  // no new run
}

TEST_CASE("serve restart: a run whose engine keeps dying is resumed three times, then failed with the reason") {
  TempDir dir;
  // The step kills the `sluice` process that runs it, every attempt (once
  // the attempt is recorded: a run whose process dies before it recorded
  // starting is failed, not resumed).
  write_workflow(dir, "doomed", "name = \"doomed\"\n[steps.die]\nrun = \"sleep 1; kill -9 $PPID\"\n");
  TestServer server(dir);
  server.start();
  const std::string t = server.token("admin");
  const std::string id = server.post("/api/v1/workflows/doomed/runs", "{}", t).json()["run_id"];
  json run = server.wait_run(id, t, 60);
  CHECK(run["status"] == "failed");
  auto resumed = query(server, "SELECT message FROM events WHERE run_id = '" + id + "' AND kind = 'run_resumed' ORDER BY seq");
  REQUIRE(resumed.size() == 3);
  // The last resume's process died too: "resumed by pid P after ...".
  const std::string last = resumed[2].substr(std::string("resumed by pid ").size());
  const std::string last_pid = last.substr(0, last.find(' '));
  CHECK(run["error"] == "engine died: its process (pid " + last_pid +
                            ") was killed by signal 9 before the run finished; not resumed again after 3 resumes");
  CHECK(run["steps"][0]["attempts"] == 4);
  CHECK(run["steps"][0]["status"] == "failed");
  CHECK(run["steps"][0]["error"] == "engine died (pid " + last_pid + ")");
  // It stays failed: the server does not pick it up again.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(server.get("/api/v1/runs/" + id, t).json()["status"] == "failed");
  CHECK(query(server, "SELECT count(*) FROM run_queue") == std::vector<std::string>{"0"});
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
