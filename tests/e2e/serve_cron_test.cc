// The server's cron under a fake clock ($SLUICE_CLOCK_FILE): exactly one run
// per fire time across kill -9, catchup after downtime, overlap, deadlines.
#include <catch2/catch.hpp>

#include <signal.h>

#include <random>
#include <set>
#include <thread>

#include "e2e/serve_harness.h"

using namespace sluice::test;
using nlohmann::json;

namespace {

std::string hourly(const std::string& name, const std::string& extra = "") {
  return "name = \"" + name + "\"\n\n[schedule]\ncron = \"0 * * * *\"\n" + extra +
         "\n[steps.tick]\nrun = \"echo tick\"\n";
}

void set_clock(const TempDir& dir, const std::string& iso) {
  dir.write("clock.tmp", iso + "\n");
  std::filesystem::rename(dir / "clock.tmp", dir / "clock");
}

std::vector<std::string> clock_env(const TempDir& dir) { return {"SLUICE_CLOCK_FILE=" + (dir / "clock")}; }

// Waits until the scheduler has looked at `workflow` at clock time `iso`; its schedule.
json wait_checked(const TestServer& s, const std::string& token, const std::string& workflow, const std::string& iso) {
  json sched;
  for (int i = 0; i < 800; ++i) {
    Reply r = s.get("/api/v1/schedules/" + workflow, token);
    if (r.status == 200) {
      sched = r.json();
      if (sched["checked_at"] == iso) return sched;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  FAIL("the scheduler never looked at " << workflow << " at " << iso << "; last: " << sched.dump());
  return sched;
}

int runs_of(const TestServer& s, const std::string& token, const std::string& workflow) {
  Reply r = s.get("/api/v1/runs?limit=500&workflow=" + workflow, token);
  REQUIRE(r.status == 200);
  int n = 0;
  const json runs = r.json()["runs"];
  for (const json& run : runs) n += run["trigger"] == "schedule";
  return n;
}

std::vector<std::string> nominals(const json& schedule) {
  std::vector<std::string> out;
  for (const json& f : schedule["recent_fires"]) out.push_back(f["nominal"]);
  std::reverse(out.begin(), out.end());  // oldest first
  return out;
}

}  // namespace

TEST_CASE("serve cron: a server killed just before or just after committing a fire gives exactly one run for it") {
  for (const std::string point : {"before-fire", "after-fire"}) {
    DYNAMIC_SECTION("kill at " << point) {
      TempDir dir;
      write_workflow(dir, "nightly", hourly("nightly"));
      set_clock(dir, "2026-03-01T10:59:58Z");
      TestServer first(dir, {}, clock_env(dir));
      first.start();
      const std::string t = first.token("admin");
      json s = wait_checked(first, t, "nightly", "2026-03-01T10:59:58Z");
      CHECK(s["next_fire"] == "2026-03-01T11:00:00Z");
      CHECK(s["fires"] == 0);
      REQUIRE(first.stop() == 0);

      set_clock(dir, "2026-03-01T11:00:01Z");
      std::vector<std::string> env = clock_env(dir);
      env.push_back("SLUICE_TEST_KILL_AT=" + point);
      TestServer dying(dir, {}, env);
      dying.start();
      CHECK(dying.wait_exit() == 128 + SIGKILL);  // it killed itself at that point
      // Before the commit nothing of the fire is in the store; after it, all of it.
      RunResult between = run_sluice({"runs", "--json", "--home", dying.home()}, dir.path());
      REQUIRE(between.status == 0);
      CHECK(json::parse(between.out)["runs"].size() == (point == "after-fire" ? 1u : 0u));

      TestServer last(dir, {}, clock_env(dir));
      last.start();
      s = wait_checked(last, t, "nightly", "2026-03-01T11:00:01Z");
      CHECK(s["fires"] == 1);
      CHECK(s["last_fire"] == "2026-03-01T11:00:00Z");
      CHECK(nominals(s) == std::vector<std::string>{"2026-03-01T11:00:00Z"});
      CHECK(runs_of(last, t, "nightly") == 1);
      CHECK(last.wait_run(s["last_run"], t)["status"] == "succeeded");
      CHECK(s["next_fire"] == "2026-03-01T12:00:00Z");
    }
  }
}

TEST_CASE("serve cron: kill -9 at random moments around six fire times loses and repeats none") {
  TempDir dir;
  // overlap = queue: a run left queued by a killed server must not make the
  // next fire a skipped one; every fire here makes a run.
  write_workflow(dir, "hourly", hourly("hourly", "overlap = \"queue\"\n"));
  set_clock(dir, "2026-06-01T10:59:59Z");
  TestServer server(dir, {}, clock_env(dir));
  server.start();
  const std::string t = server.token("admin");
  wait_checked(server, t, "hourly", "2026-06-01T10:59:59Z");
  std::mt19937 rng(20260601);
  std::vector<std::string> want;
  for (int hour = 11; hour <= 16; ++hour) {
    const std::string fire = "2026-06-01T" + std::to_string(hour) + ":00:00Z";
    const std::string after = "2026-06-01T" + std::to_string(hour) + ":00:01Z";
    want.push_back(fire);
    set_clock(dir, after);
    // Somewhere between before the scheduler notices and well after it committed.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 120)(rng)));
    server.kill9();
    server.start();
    json s = wait_checked(server, t, "hourly", after);
    INFO("after the restart at " << after << ": " << s.dump());
    CHECK(nominals(s) == want);
  }
  json s = wait_checked(server, t, "hourly", "2026-06-01T16:00:01Z");
  CHECK(s["fires"] == 6);
  CHECK(s["missed"] == 0);
  CHECK(runs_of(server, t, "hourly") == 6);
}

TEST_CASE("serve cron: after downtime catchup none, latest and all fire what they should and count the rest") {
  TempDir dir;
  write_workflow(dir, "none", hourly("none", "catchup = \"none\"\n"));
  write_workflow(dir, "latest", hourly("latest", "catchup = \"latest\"\n"));
  write_workflow(dir, "all", hourly("all", "catchup = \"all\"\ncatchup_window = \"3h\"\noverlap = \"queue\"\n"));
  set_clock(dir, "2026-03-01T10:30:00Z");
  TestServer server(dir, {}, clock_env(dir));
  server.start();
  const std::string t = server.token("admin");
  for (const char* wf : {"none", "latest", "all"}) wait_checked(server, t, wf, "2026-03-01T10:30:00Z");
  REQUIRE(server.stop() == 0);

  // Down from 10:30 to 15:30: 11:00, 12:00, 13:00, 14:00 and 15:00 were missed.
  set_clock(dir, "2026-03-01T15:30:00Z");
  server.start();
  json none = wait_checked(server, t, "none", "2026-03-01T15:30:00Z");
  json latest = wait_checked(server, t, "latest", "2026-03-01T15:30:00Z");
  json all = wait_checked(server, t, "all", "2026-03-01T15:30:00Z");
  CHECK(none["fires"] == 0);
  CHECK(none["missed"] == 5);
  CHECK(none["watermark"] == "2026-03-01T15:00:00Z");
  CHECK(runs_of(server, t, "none") == 0);
  CHECK(nominals(latest) == std::vector<std::string>{"2026-03-01T15:00:00Z"});
  CHECK(latest["missed"] == 4);
  CHECK(latest["recent_fires"][0]["missed"] == 4);
  CHECK(runs_of(server, t, "latest") == 1);
  // The 3h window reaches back to 12:30.
  CHECK(nominals(all) == std::vector<std::string>{"2026-03-01T13:00:00Z", "2026-03-01T14:00:00Z", "2026-03-01T15:00:00Z"});
  CHECK(all["missed"] == 2);
  CHECK(runs_of(server, t, "all") == 3);

  // On time again: 16:00 fires for every policy, none fires when it is at most a minute late.
  set_clock(dir, "2026-03-01T16:00:40Z");
  CHECK(wait_checked(server, t, "none", "2026-03-01T16:00:40Z")["fires"] == 1);
  CHECK(wait_checked(server, t, "latest", "2026-03-01T16:00:40Z")["fires"] == 2);
  CHECK(wait_checked(server, t, "all", "2026-03-01T16:00:40Z")["fires"] == 4);
}

TEST_CASE("serve cron: a zone's wall clock across a DST change, through the server") {
  TempDir dir;
  // 02:30 does not exist in Berlin on 29 March 2026: shift fires at 03:00 CEST (01:00Z).
  write_workflow(dir, "berlin", R"(
name = "berlin"

[schedule]
cron = "30 2 * * *"
timezone = "Europe/Berlin"

[steps.tick]
run = "echo tick"
)");
  set_clock(dir, "2026-03-28T23:00:00Z");
  TestServer server(dir, {}, clock_env(dir));
  server.start();
  const std::string t = server.token("admin");
  json s = wait_checked(server, t, "berlin", "2026-03-28T23:00:00Z");
  CHECK(s["next_fire"] == "2026-03-29T01:00:00Z");
  set_clock(dir, "2026-03-29T01:00:02Z");
  s = wait_checked(server, t, "berlin", "2026-03-29T01:00:02Z");
  CHECK(nominals(s) == std::vector<std::string>{"2026-03-29T01:00:00Z"});
  CHECK(s["next_fire"] == "2026-03-30T00:30:00Z");  // 02:30 CEST
}

TEST_CASE("serve cron: overlap skip, queue and cancel when the last run is still going") {
  TempDir dir;
  // Each run works until the test lets it go: "still going" does not hang on timing.
  const std::string step = "\n[steps.work]\nrun = \"while [ ! -f " + (dir / "go") + " ]; do sleep 0.05; done\"\n";
  write_workflow(dir, "skip", std::string("name = \"skip\"\n[schedule]\ncron = \"* * * * *\"\noverlap = \"skip\"\n") + step);
  write_workflow(dir, "queue", std::string("name = \"queue\"\n[schedule]\ncron = \"* * * * *\"\noverlap = \"queue\"\n") + step);
  write_workflow(dir, "cancel", std::string("name = \"cancel\"\n[schedule]\ncron = \"* * * * *\"\noverlap = \"cancel\"\n") + step);
  set_clock(dir, "2026-03-01T10:00:30Z");
  TestServer server(dir, {"--max-runs", "6"}, clock_env(dir));
  server.start();
  const std::string t = server.token("admin");
  for (const char* wf : {"skip", "queue", "cancel"}) wait_checked(server, t, wf, "2026-03-01T10:00:30Z");
  set_clock(dir, "2026-03-01T10:01:00Z");
  json first_skip = wait_checked(server, t, "skip", "2026-03-01T10:01:00Z");
  json first_queue = wait_checked(server, t, "queue", "2026-03-01T10:01:00Z");
  json first_cancel = wait_checked(server, t, "cancel", "2026-03-01T10:01:00Z");
  // The next minute comes while the first runs still sleep.
  set_clock(dir, "2026-03-01T10:02:00Z");
  json skip = wait_checked(server, t, "skip", "2026-03-01T10:02:00Z");
  json queue = wait_checked(server, t, "queue", "2026-03-01T10:02:00Z");
  json cancel = wait_checked(server, t, "cancel", "2026-03-01T10:02:00Z");

  CHECK(skip["fires"] == 2);
  CHECK(skip["recent_fires"][0]["outcome"] == "skipped");
  CHECK(skip["recent_fires"][0]["run_id"].is_null());
  CHECK(runs_of(server, t, "skip") == 1);

  CHECK(queue["recent_fires"][0]["outcome"] == "queued");
  const std::string second = queue["recent_fires"][0]["run_id"];
  CHECK(server.get("/api/v1/runs/" + second, t).json()["status"] == "queued");  // waits for the first

  const std::string cancelled = first_cancel["last_run"];
  CHECK(server.wait_run(cancelled, t, 30)["status"] == "cancelled");
  dir.write("go", "");
  CHECK(server.wait_run(cancel["last_run"], t, 30)["status"] == "succeeded");

  json a = server.wait_run(first_queue["last_run"], t, 30), b = server.wait_run(second, t, 30);
  CHECK(a["status"] == "succeeded");
  CHECK(b["status"] == "succeeded");
  CHECK(b["started_at"].get<std::string>() >= a["finished_at"].get<std::string>());
  CHECK(server.wait_run(first_skip["last_run"], t, 30)["status"] == "succeeded");
}

TEST_CASE("serve cron: a run not done by the schedule's deadline is counted and reported once") {
  TempDir dir;
  write_workflow(dir, "late", R"(
name = "late"

[schedule]
cron = "0 * * * *"
deadline = "30m"

[steps.work]
run = "while [ ! -f go ]; do sleep 0.05; done"
)");
  set_clock(dir, "2026-03-01T10:59:00Z");
  TestServer server(dir, {}, clock_env(dir));
  server.start();
  const std::string t = server.token("admin");
  wait_checked(server, t, "late", "2026-03-01T10:59:00Z");
  set_clock(dir, "2026-03-01T11:00:00Z");
  json s = wait_checked(server, t, "late", "2026-03-01T11:00:00Z");
  const std::string run = s["last_run"];
  set_clock(dir, "2026-03-01T11:20:00Z");
  s = wait_checked(server, t, "late", "2026-03-01T11:20:00Z");
  CHECK(s["deadline_misses"] == 0);
  set_clock(dir, "2026-03-01T11:31:00Z");
  s = wait_checked(server, t, "late", "2026-03-01T11:31:00Z");
  CHECK(s["deadline_misses"] == 1);
  CHECK(s["recent_fires"][0]["deadline_missed_at"] == "2026-03-01T11:31:00Z");
  set_clock(dir, "2026-03-01T11:32:00Z");
  s = wait_checked(server, t, "late", "2026-03-01T11:32:00Z");
  CHECK(s["deadline_misses"] == 1);
  CHECK(server.get("/metrics", t).body.find("sluice_schedule_deadline_missed_total{workflow=\"late\"} 1\n") !=
        std::string::npos);
  const std::string line = "sluice serve: deadline missed: workflow late, run " + run +
                           " scheduled at 2026-03-01T11:00:00Z was not done 30m later";
  const std::string log = server.log();
  CHECK(log.find(line) != std::string::npos);
  CHECK(log.find(line) == log.rfind(line));
  CHECK(server.post("/api/v1/runs/" + run + "/cancel", "", t).status == 202);
  CHECK(server.wait_run(run, t)["status"] == "cancelled");
}
