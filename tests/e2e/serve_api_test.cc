// `sluice serve` over real HTTP on 127.0.0.1: auth, idempotency, limits,
// bad requests (each with its status, its JSON error and no run started),
// runs, logs and cancel.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "e2e/openapi_check.h"
#include "e2e/serve_harness.h"

using namespace sluice::test;
using nlohmann::json;

namespace {

const char* kTrain = R"(
name = "train"

[params]
epochs = 3
rate = 0.5
label = "base"
layers = [1, 2]

[steps.fit]
run = "echo fit epochs=${params.epochs} rate=${params.rate} label=${params.label}"
)";

const char* kReport = R"(
name = "report"

[steps.make]
run = "echo report"
)";

const char* kSlow = R"(
name = "slow"

[params]
secs = 30

[steps.wait]
run = "echo waiting; sleep ${params.secs}"
)";

json error(const std::string& code, const std::string& message) { return {{"error", code}, {"message", message}}; }

std::string now_plus_hours_iso(int hours) {
  auto t = std::chrono::system_clock::now() + std::chrono::hours(hours);
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

TEST_CASE("serve auth: no token, bad token, wrong scope, wrong workflow, expired, revoked: 401 or 403 and no run") {
  TempDir dir;
  write_workflow(dir, "train", kTrain);
  write_workflow(dir, "report", kReport);
  // The server's clock runs two hours ahead, so a token that expires in one
  // hour is already expired for it.
  dir.write("clock", now_plus_hours_iso(2));
  TestServer server(dir, {}, {"SLUICE_CLOCK_FILE=" + (dir / "clock")});
  server.start();
  const std::string admin = server.token("admin");
  const TestServer::TokenInfo read = server.token_info("read");
  const TestServer::TokenInfo report_only = server.token_info("trigger", "report");
  const TestServer::TokenInfo expired = server.token_info("trigger", "", "1h");
  const TestServer::TokenInfo revoked = server.token_info("trigger");
  RunResult rv = run_sluice({"token", "revoke", revoked.id, "--home", server.home()}, dir.path());
  REQUIRE(rv.status == 0);
  RunResult list = run_sluice({"token", "list", "--json", "--home", server.home()}, dir.path());
  std::string revoked_at;
  const json tokens = json::parse(list.out)["tokens"];
  for (const json& t : tokens)
    if (t["id"] == revoked.id) revoked_at = t["revoked_at"];
  REQUIRE(!revoked_at.empty());

  const std::string trigger = "/api/v1/workflows/train/runs";
  const std::string body = R"({"params": {"epochs": 5}})";

  Reply r = server.post(trigger, body);
  CHECK(r.status == 401);
  CHECK(r.json() == error("unauthorized",
                          "missing bearer token: send 'Authorization: Bearer TOKEN' (create one with 'sluice token create')"));
  CHECK(r.header("www-authenticate") == "Bearer realm=\"sluice\"");

  r = server.post(trigger, body, "sluice_not-a-real-token");
  CHECK(r.status == 401);
  CHECK(r.json() == error("unauthorized", "invalid token"));

  r = server.request("POST", trigger, body, {{"Authorization", "Basic YWRtaW46YWRtaW4="}});
  CHECK(r.status == 401);
  CHECK(r.json() == error("unauthorized", "the Authorization header must be 'Bearer TOKEN'"));

  r = server.post(trigger, body, read.secret);
  CHECK(r.status == 403);
  CHECK(r.json() == error("forbidden", "token " + read.id + " has scope 'read'; this needs 'trigger'"));

  r = server.post(trigger, body, report_only.secret);
  CHECK(r.status == 403);
  CHECK(r.json() == error("forbidden", "token " + report_only.id + " is limited to workflow 'report'"));

  r = server.post(trigger, body, expired.secret);
  CHECK(r.status == 401);
  CHECK(r.json() == error("unauthorized", "token " + expired.id + " expired at " + expired.expires_at));

  r = server.post(trigger, body, revoked.secret);
  CHECK(r.status == 401);
  CHECK(r.json() == error("unauthorized", "token " + revoked.id + " was revoked at " + revoked_at));

  // Reads: a workflow-limited token sees only its workflow and no /metrics.
  r = server.get("/api/v1/workflows/train", report_only.secret);
  CHECK(r.status == 403);
  CHECK(r.json() == error("forbidden", "token " + report_only.id + " is limited to workflow 'report'"));
  r = server.get("/metrics", report_only.secret);
  CHECK(r.status == 403);
  CHECK(r.json() == error("forbidden", "token " + report_only.id +
                                           " is limited to workflow 'report'; this request spans every workflow"));
  r = server.get("/api/v1/workflows", report_only.secret);
  REQUIRE(r.status == 200);
  REQUIRE(r.json()["workflows"].size() == 1);
  CHECK(r.json()["workflows"][0]["name"] == "report");
  r = server.get("/api/v1/runs?workflow=train", report_only.secret);
  CHECK(r.status == 403);
  // Read tokens read; /healthz needs nothing.
  CHECK(server.get("/api/v1/workflows/train", read.secret).status == 200);
  CHECK(server.get("/healthz").status == 200);

  CHECK(server.count_runs(admin) == 0);  // nothing above started a run

  // And the right token does start one.
  r = server.post(trigger, body, admin);
  CHECK(r.status == 202);
  CHECK(server.count_runs(admin) == 1);
}

TEST_CASE("serve trigger: a run is queued, started and recorded with its typed params") {
  TempDir dir;
  write_workflow(dir, "train", kTrain);
  TestServer server(dir);
  server.start();
  const std::string t = server.token("trigger");
  Reply r = server.post("/api/v1/workflows/train/runs", R"({"params": {"epochs": 7, "rate": 1, "layers": [4]}})", t);
  REQUIRE(r.status == 202);
  const json accepted = r.json();
  const std::string id = accepted["run_id"];
  CHECK(accepted["status"] == "queued");
  CHECK(accepted["url"] == server.url() + "/api/v1/runs/" + id);
  CHECK(r.header("location") == server.url() + "/api/v1/runs/" + id);

  json run = server.wait_run(id, t);
  CHECK(run["status"] == "succeeded");
  CHECK(run["trigger"] == "api");
  CHECK(run["workflow"] == "train");
  CHECK(run["params"] == json({{"epochs", 7}, {"rate", 1.0}, {"label", "base"}, {"layers", {4}}}));
  REQUIRE(run["steps"].size() == 1);
  CHECK(run["steps"][0]["node"] == "fit");
  CHECK(run["steps"][0]["status"] == "succeeded");

  r = server.get("/api/v1/runs/" + id + "/steps/fit/log", t);
  CHECK(r.status == 200);
  CHECK(r.body == "fit epochs=7 rate=1 label=base\n");
  CHECK(r.header("x-sluice-attempt") == "1");

  // An empty body takes the defaults.
  r = server.post("/api/v1/workflows/train/runs", "", t);
  REQUIRE(r.status == 202);
  run = server.wait_run(r.json()["run_id"], t);
  CHECK(run["params"]["epochs"] == 3);
  CHECK(run["no_cache"] == false);
  CHECK(run["options"] == json::object());

  // A run's options, as `sluice resume` would apply them.
  RunResult cli = run_sluice({"run", "-k", "--no-cache", "--only", "fit", "--home", server.home(),
                              dir / "workflows/train.toml"},
                             dir.path());
  REQUIRE(cli.status == 0);
  r = server.get("/api/v1/runs?workflow=train&limit=1", t);
  REQUIRE(r.status == 200);
  run = r.json()["runs"][0];
  CHECK(run["trigger"] == "cli");
  CHECK(run["no_cache"] == true);
  CHECK(run["options"] == json({{"keep_going", true}, {"only", "fit"}}));
}

TEST_CASE("serve trigger: bad requests get their 4xx and JSON error and start nothing") {
  TempDir dir;
  write_workflow(dir, "train", kTrain);
  TestServer server(dir);
  server.start();
  const std::string t = server.token("admin");
  const std::string path = "/api/v1/workflows/train/runs";

  Reply r = server.post(path, R"({"params": {"epochs": 5})", t);
  CHECK(r.status == 400);
  CHECK(r.json() == error("bad_request", "the request body is not valid JSON"));

  r = server.post(path, R"([1, 2])", t);
  CHECK(r.status == 400);
  CHECK(r.json() == error("bad_request", "the request body must be a JSON object such as {\"params\": {}}"));

  r = server.post("/api/v1/workflows/trian/runs", "{}", t);
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "no workflow 'trian' is served here; did you mean 'train'?"));

  r = server.post(path, R"({"params": {"epochs": "ten"}})", t);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_params", "param 'epochs' is an integer; found a string (\"ten\")"));

  r = server.post(path, R"({"params": {"epochs": 2.5}})", t);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_params", "param 'epochs' is an integer; found a float (2.5)"));

  r = server.post(path, R"({"params": {"layers": [1, "two"]}})", t);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_params", "param 'layers' is an array of integers; found an element that is a string (\"two\")"));

  r = server.post(path, R"({"params": {"label": null}})", t);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_params", "param 'label' cannot be null: give a string, number, boolean or array"));

  r = server.post(path, R"({"params": {"epoch": 5}})", t);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_params", "unknown param 'epoch' for workflow 'train'; did you mean 'epochs'?"));

  r = server.post(path, R"({"params": {}, "priority": 1})", t);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_request", "unknown field 'priority' in the request body: expected 'params'"));

  r = server.post(path, R"({"params": [1]})", t);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_params", "'params' must be a JSON object of param names to values"));

  r = server.get("/api/v1/nothing", t);
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "no such endpoint: GET /api/v1/nothing"));

  r = server.get(path, t);
  CHECK(r.status == 405);
  CHECK(r.header("allow") == "POST");
  CHECK(r.json() == error("method_not_allowed", "GET is not allowed on /api/v1/workflows/train/runs: use POST"));

  r = server.get("/api/v1/runs?status=done", t);
  CHECK(r.status == 400);
  CHECK(r.json() == error("bad_request", "unknown status 'done': use queued, running, succeeded, failed or cancelled"));
  r = server.get("/api/v1/runs?limit=0", t);
  CHECK(r.status == 400);
  CHECK(r.json() == error("bad_request", "'limit' must be an integer from 1 to 500, found '0'"));

  CHECK(server.count_runs(t) == 0);
}

TEST_CASE("serve idempotency: the same key and body give the same response and one run, another body 422") {
  TempDir dir;
  write_workflow(dir, "train", kTrain);
  TestServer server(dir);
  server.start();
  const std::string t = server.token("trigger");
  const std::string other = server.token("trigger");
  const std::string path = "/api/v1/workflows/train/runs";
  const std::map<std::string, std::string> key = {{"Idempotency-Key", "deploy-4711"}};

  Reply first = server.post(path, R"({"params": {"epochs": 5, "label": "a"}})", t, key);
  REQUIRE(first.status == 202);
  // Whitespace and key order do not make another request.
  Reply again = server.post(path, R"({ "params" : { "label": "a", "epochs": 5 } })", t, key);
  CHECK(again.status == 202);
  CHECK(again.body == first.body);
  CHECK(again.header("idempotent-replayed") == "true");

  Reply changed = server.post(path, R"({"params": {"epochs": 6, "label": "a"}})", t, key);
  CHECK(changed.status == 422);
  CHECK(changed.json() == error("idempotency_key_reused", "Idempotency-Key 'deploy-4711' was already used with a different request"));

  // Keys belong to their token: another token's same key is another request.
  Reply theirs = server.post(path, R"({"params": {"epochs": 5, "label": "a"}})", other, key);
  CHECK(theirs.status == 202);
  CHECK(theirs.json()["run_id"] != first.json()["run_id"]);

  // Concurrent retries with one key still make one run.
  std::vector<std::thread> threads;
  std::vector<Reply> replies(8);
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      replies[static_cast<size_t>(i)] = server.post(path, R"({"params": {"epochs": 9}})", t, {{"Idempotency-Key", "race"}});
    });
  for (std::thread& th : threads) th.join();
  std::set<std::string> ids;
  for (const Reply& r : replies) {
    CHECK(r.status == 202);
    ids.insert(r.json()["run_id"].get<std::string>());
  }
  CHECK(ids.size() == 1);

  const std::string admin = server.token("admin");
  CHECK(server.count_runs(admin) == 3);

  Reply bad = server.post(path, "{}", t, {{"Idempotency-Key", std::string(300, 'k')}});
  CHECK(bad.status == 400);
  CHECK(bad.json() == error("bad_request", "Idempotency-Key must be 1 to 255 printable ASCII characters"));
  CHECK(server.count_runs(admin) == 3);
}

TEST_CASE("serve limits: a body over --max-body gets 413 unparsed, chunked or not, and the connection goes on") {
  TempDir dir;
  write_workflow(dir, "train", kTrain);
  TestServer server(dir, {"--max-body", "1K"});
  server.start();
  const std::string t = server.token("admin");
  const json too_large = error("payload_too_large", "the request body is larger than this server's limit of 1024 bytes");
  const std::string big = R"({"params": {"label": ")" + std::string(200000, 'x') + R"("}})";
  Reply r = server.post("/api/v1/workflows/train/runs", big, t);
  CHECK(r.status == 413);
  CHECK(r.json() == too_large);

  // With Content-Length, and with a chunked body (which announces no size):
  // each is read past and dropped, and the next request on the same
  // connection is answered normally.
  const std::string auth = "Authorization: Bearer " + t + "\r\n";
  const std::string post = "POST /api/v1/workflows/train/runs HTTP/1.1\r\nHost: x\r\n" + auth;
  const std::string chunk = std::string(1500, 'y');
  char size_hex[16];
  std::snprintf(size_hex, sizeof size_hex, "%zx", chunk.size());
  RawConnection conn(server.url());
  conn.send(post + "Content-Length: 3000\r\n\r\n" + std::string(3000, 'z'));
  std::string answer = conn.read_response();
  CHECK(answer.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0) == 0);
  CHECK(answer.substr(answer.find("\r\n\r\n") + 4) == too_large.dump() + "\n");
  conn.send(post + "Transfer-Encoding: chunked\r\n\r\n" + size_hex + "\r\n" + chunk + "\r\n0\r\n\r\n");
  answer = conn.read_response();
  CHECK(answer.rfind("HTTP/1.1 413 Payload Too Large\r\n", 0) == 0);
  conn.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  answer = conn.read_response();
  CHECK(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(answer.find("\"status\":\"ok\"") != std::string::npos);
  CHECK(server.count_runs(t) == 0);
  // Up to the limit is fine.
  CHECK(server.post("/api/v1/workflows/train/runs", R"({"params": {"label": "small"}})", t).status == 202);
}

TEST_CASE("serve limits: a token over its rate gets 429 with Retry-After, others are not affected") {
  TempDir dir;
  write_workflow(dir, "train", kTrain);
  TestServer server(dir, {"--rate-limit", "0.5", "--rate-burst", "3"});
  server.start();
  const std::string t = server.token("admin");
  const std::string other = server.token("read");
  const TestServer::TokenInfo info = server.token_info("trigger");
  for (int i = 0; i < 3; ++i) CHECK(server.get("/api/v1/workflows", info.secret).status == 200);
  Reply r = server.post("/api/v1/workflows/train/runs", "{}", info.secret);
  CHECK(r.status == 429);
  CHECK(r.json() == error("rate_limited", "token " + info.id + " is over its limit of 0.5 requests per second"));
  CHECK(r.header("retry-after") == "2");
  CHECK(server.get("/api/v1/workflows", other).status == 200);
  CHECK(server.count_runs(t) == 0);
}

TEST_CASE("serve limits: a request whose headers stall past --read-timeout is dropped") {
  TempDir dir;
  write_workflow(dir, "report", kReport);
  TestServer server(dir, {"--read-timeout", "1s"});
  server.start();
  auto started = std::chrono::steady_clock::now();
  // Half a request line, then silence: the server closes the connection.
  std::string raw = raw_exchange(server.url(), "GET /healthz HTTP/1.1\r\nHost: x\r\n", 8000);
  auto waited = std::chrono::steady_clock::now() - started;
  CHECK(raw.find("<timeout>") == std::string::npos);  // closed by the server, not by our 8 s timeout
  CHECK(waited < std::chrono::seconds(7));
  CHECK(server.get("/healthz").status == 200);
}

TEST_CASE("serve runs: listing pages with a cursor and filters by workflow and status") {
  TempDir dir;
  write_workflow(dir, "train", kTrain);
  write_workflow(dir, "report", kReport);
  TestServer server(dir);
  server.start();
  const std::string t = server.token("admin");
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(server.post("/api/v1/workflows/train/runs", "{}", t).json()["run_id"]);
  ids.push_back(server.post("/api/v1/workflows/report/runs", "{}", t).json()["run_id"]);
  for (const std::string& id : ids) CHECK(server.wait_run(id, t)["status"] == "succeeded");

  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    Reply r = server.get("/api/v1/runs?workflow=train&limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor), t);
    REQUIRE(r.status == 200);
    const json runs = r.json()["runs"];
    for (const json& run : runs) {
      CHECK(run["workflow"] == "train");
      seen.push_back(run["id"]);
    }
    cursor = r.json()["next_cursor"].is_null() ? "" : r.json()["next_cursor"].get<std::string>();
    ++pages;
  } while (!cursor.empty() && pages < 10);
  CHECK(pages == 3);
  std::vector<std::string> want(ids.begin(), ids.begin() + 5);
  std::reverse(want.begin(), want.end());  // newest first
  CHECK(seen == want);

  Reply r = server.get("/api/v1/runs?status=succeeded&limit=100", t);
  CHECK(r.json()["runs"].size() == 6);
  r = server.get("/api/v1/runs?status=failed", t);
  CHECK(r.json()["runs"].empty());
  CHECK(r.json()["next_cursor"].is_null());

  r = server.get("/api/v1/runs/nope", t);
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "no run 'nope'"));
  r = server.get("/api/v1/runs/" + ids[0] + "/steps/fitt/log", t);
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "run " + ids[0] + " has no step 'fitt'; did you mean 'fit'?"));
}

TEST_CASE("serve logs: ?follow=1 streams a step's output while it runs, to the end") {
  TempDir dir;
  write_workflow(dir, "ticks", R"(
name = "ticks"

[steps.tick]
run = "for i in 1 2 3 4 5; do echo tick $i; sleep 0.2; done"
)");
  TestServer server(dir);
  server.start();
  const std::string t = server.token("read");
  const std::string admin = server.token("trigger");
  const std::string id = server.post("/api/v1/workflows/ticks/runs", "{}", admin).json()["run_id"];
  // Asked before the step has even started: follow waits for it.
  Reply r = server.get("/api/v1/runs/" + id + "/steps/tick/log?follow=1", t);
  CHECK(r.status == 200);
  CHECK(r.body == "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n");
  CHECK(r.header("transfer-encoding") == "chunked");
  CHECK(server.wait_run(id, t)["status"] == "succeeded");
  // After the run the log comes from the artifact store.
  CHECK(server.get("/api/v1/runs/" + id + "/steps/tick/log", t).body == "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n");
  r = server.get("/api/v1/runs/" + id + "/steps/tick/log?attempt=2", t);
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "step 'tick' of run " + id + " has no attempt 2"));
}

TEST_CASE("serve logs: a step that wrote nothing has an empty log, whole or followed") {
  TempDir dir;
  write_workflow(dir, "quiet", R"(
name = "quiet"

[steps.hush]
run = "echo 1 > out.txt"
)");
  TestServer server(dir);
  server.start();
  const std::string t = server.token("trigger");
  const std::string id = server.post("/api/v1/workflows/quiet/runs", "{}", t).json()["run_id"];
  CHECK(server.wait_run(id, t)["status"] == "succeeded");
  Reply r = server.get("/api/v1/runs/" + id + "/steps/hush/log", t);
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  CHECK(r.header("x-sluice-attempt") == "1");
  r = server.get("/api/v1/runs/" + id + "/steps/hush/log?follow=1", t);
  CHECK(r.status == 200);
  CHECK(r.body.empty());
}

TEST_CASE("serve cancel: a queued run is cancelled at once, a running one is interrupted") {
  TempDir dir;
  write_workflow(dir, "slow", kSlow);
  TestServer server(dir, {"--max-runs", "1"});
  server.start();
  const std::string t = server.token("trigger");
  const std::string reader = server.token("read");
  const std::string running = server.post("/api/v1/workflows/slow/runs", "{}", t).json()["run_id"];
  const std::string queued = server.post("/api/v1/workflows/slow/runs", "{}", t).json()["run_id"];
  // Wait until the first one runs its step.
  for (int i = 0; i < 400; ++i) {
    if (server.get("/api/v1/runs/" + running, t).json()["status"] == "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  REQUIRE(server.get("/api/v1/runs/" + running, t).json()["status"] == "running");
  CHECK(server.get("/api/v1/runs/" + queued, t).json()["status"] == "queued");

  Reply r = server.post("/api/v1/runs/" + queued + "/cancel", "", reader);
  CHECK(r.status == 403);

  r = server.post("/api/v1/runs/" + queued + "/cancel", "", t);
  CHECK(r.status == 200);
  CHECK(r.json()["status"] == "cancelled");
  json q = server.get("/api/v1/runs/" + queued, t).json();
  CHECK(q["status"] == "cancelled");
  CHECK(q["error"] == "cancelled before it started");

  r = server.post("/api/v1/runs/" + running + "/cancel", "", t);
  CHECK(r.status == 202);
  CHECK(r.json()["cancel"] == "cancelling");
  json run = server.wait_run(running, t, 30);
  CHECK(run["status"] == "cancelled");
  CHECK(run["steps"][0]["status"] == "cancelled");

  r = server.post("/api/v1/runs/" + running + "/cancel", "", t);
  CHECK(r.status == 409);
  CHECK(r.json() == error("conflict", "run " + running + " already cancelled"));
  r = server.post("/api/v1/runs/nope/cancel", "", t);
  CHECK(r.status == 404);
}

TEST_CASE("serve workflows: invalid files are reported and skipped, SIGHUP reloads the folder") {
  TempDir dir;
  write_workflow(dir, "report", kReport);
  dir.write("workflows/broken.toml", "name = \"broken\"\n[steps.a]\nrunn = \"true\"\n");
  TestServer server(dir);
  server.start();
  const std::string t = server.token("admin");
  Reply r = server.get("/api/v1/workflows", t);
  REQUIRE(r.status == 200);
  REQUIRE(r.json()["workflows"].size() == 1);
  REQUIRE(r.json()["errors"].size() == 1);
  const std::string broken = r.json()["errors"][0]["path"];
  CHECK(broken.size() > 12);
  CHECK(broken.substr(broken.size() - 12) == "/broken.toml");
  CHECK(r.json()["errors"][0]["message"] ==
        broken + ":2:8: error: step 'a' has no action: give one of 'run', 'lua', 'lua_inline' or 'uses'\n[steps.a]\n       ^\n" +
            broken + ":3:1: error: unknown key 'runn' in step 'a'; did you mean 'run'?\nrunn = \"true\"\n^\n");
  CHECK(server.log().find("sluice serve: " + broken + " is not served: it does not validate") != std::string::npos);

  dir.write("workflows/broken.toml", "name = \"broken\"\n[steps.a]\nrun = \"true\"\n");
  write_workflow(dir, "train", kTrain);
  server.signal(SIGHUP);
  for (int i = 0; i < 200 && server.get("/api/v1/workflows", t).json()["workflows"].size() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  r = server.get("/api/v1/workflows", t);
  CHECK(r.json()["workflows"].size() == 3);
  CHECK(r.json()["errors"].empty());
  CHECK(server.post("/api/v1/workflows/broken/runs", "{}", t).status == 202);
}

TEST_CASE("serve drain: SIGTERM finishes requests in flight and exits 0, runs keep going") {
  TempDir dir;
  write_workflow(dir, "slow", kSlow);
  TestServer server(dir);
  server.start();
  const std::string t = server.token("admin");
  const std::string id = server.post("/api/v1/workflows/slow/runs", R"({"params": {"secs": 2}})", t).json()["run_id"];
  for (int i = 0; i < 400 && server.get("/api/v1/runs/" + id, t).json()["status"] != "running"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  // A follow in flight ends when the server drains.
  Reply followed;
  std::thread follow([&] { followed = server.get("/api/v1/runs/" + id + "/steps/wait/log?follow=1", t); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(server.stop() == 0);
  follow.join();
  CHECK(followed.status == 200);
  CHECK(followed.body.rfind("waiting\n", 0) == 0);
  CHECK(server.log().find("sluice serve: Terminated: draining") != std::string::npos);
  // The run was not stopped with the server: the next server finds it done.
  TestServer next(dir);
  next.start();
  CHECK(next.wait_run(id, t, 30)["status"] == "succeeded");
}

TEST_CASE("serve openapi: the spec check refuses responses docs/openapi.yaml does not describe") {
  const std::string run = R"({"run_id": "r1", "status": "queued", "url": "http://x/api/v1/runs/r1"})";
  CHECK(openapi_mismatch("POST", "/api/v1/workflows/train/runs", 202, "application/json", run) == "");
  CHECK(openapi_mismatch("POST", "/api/v1/workflows/train/runs", 201, "application/json", run) ==
        "POST /api/v1/workflows/train/runs 201: status 201 is not documented for POST /api/v1/workflows/{name}/runs");
  CHECK(openapi_mismatch("POST", "/api/v1/workflows/train/runs", 202, "application/json",
                         R"({"run_id": "r1", "status": "running", "url": "u"})") ==
        "POST /api/v1/workflows/train/runs 202: $.status: \"running\" is not one of [\"queued\"]");
  CHECK(openapi_mismatch("POST", "/api/v1/workflows/train/runs", 202, "application/json", R"({"run_id": "r1", "url": "u"})") ==
        "POST /api/v1/workflows/train/runs 202: $: the required member 'status' is missing");
  CHECK(openapi_mismatch("POST", "/api/v1/workflows/train/runs", 202, "application/json",
                         R"({"run_id": "r1", "status": "queued", "url": "u", "extra": 1})") ==
        "POST /api/v1/workflows/train/runs 202: $.extra: not in the schema");
  CHECK(openapi_mismatch("GET", "/api/v1/runs", 200, "application/json",
                         R"({"runs": [{"id": 5}], "next_cursor": null})") ==
        "GET /api/v1/runs 200: $.runs[0]: the required member 'workflow' is missing");
  CHECK(openapi_mismatch("GET", "/api/v1/runs?limit=1", 400, "application/json", R"({"error": "oops", "message": "m"})") ==
        "GET /api/v1/runs 400: $.error: \"oops\" is not one of " +
            std::string(R"(["bad_request","unauthorized","bad_signature","forbidden","not_found","method_not_allowed",)") +
            R"("conflict","payload_too_large","uri_too_long","invalid_request","invalid_params",)" +
            R"("idempotency_key_reused","rate_limited","internal","unavailable","error"])");
  CHECK(openapi_mismatch("GET", "/metrics", 200, "application/json", "{}") ==
        "GET /metrics 200: media type 'application/json' is not documented");
  CHECK(openapi_mismatch("GET", "/nowhere", 200, "text/plain", "") == "GET /nowhere 200: an undocumented path must be a 404");
  CHECK(openapi_mismatch("DELETE", "/api/v1/runs/r1", 404, "application/json", R"({"error": "not_found", "message": "m"})") ==
        "DELETE /api/v1/runs/r1 404: DELETE is not documented for /api/v1/runs/{run_id}, so it must be a 405");
  CHECK(openapi_mismatch("GET", "/api/v1/schedules", 200, "application/json",
                         R"({"schedules": [{"workflow": "w", "cron": "c", "timezone": "UTC", "on_dst_gap": "shift",
                             "on_dst_repeat": "first", "active": true, "watermark": "yesterday", "last_fire": null,
                             "last_run": null, "next_fire": null, "checked_at": null, "fires": 0, "missed": 0,
                             "deadline_misses": 0}]})") ==
        "GET /api/v1/schedules 200: $.schedules[0].watermark: \"yesterday\" is not an RFC 3339 date-time");
}

TEST_CASE("serve idempotency: a key is remembered for 24 hours of the server's clock") {
  TempDir dir;
  write_workflow(dir, "train", kTrain);
  dir.write("clock", "2026-04-01T08:00:00Z");
  TestServer server(dir, {}, {"SLUICE_CLOCK_FILE=" + (dir / "clock")});
  server.start();
  const std::string t = server.token("trigger");
  const std::map<std::string, std::string> key = {{"Idempotency-Key", "nightly-2026-04-01"}};
  Reply first = server.post("/api/v1/workflows/train/runs", "{}", t, key);
  REQUIRE(first.status == 202);
  dir.write("clock", "2026-04-02T07:59:00Z");
  Reply same = server.post("/api/v1/workflows/train/runs", "{}", t, key);
  CHECK(same.header("idempotent-replayed") == "true");
  CHECK(same.body == first.body);
  dir.write("clock", "2026-04-02T08:00:01Z");
  Reply later = server.post("/api/v1/workflows/train/runs", "{}", t, key);
  CHECK(later.status == 202);
  CHECK(later.header("idempotent-replayed") == "");
  CHECK(later.json()["run_id"] != first.json()["run_id"]);
  // And the new answer is the one remembered now.
  CHECK(server.post("/api/v1/workflows/train/runs", "{}", t, key).body == later.body);
}
