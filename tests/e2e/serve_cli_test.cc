// The command-line side of the server: `sluice trigger` (the CI client),
// `sluice schedule next|list`, `sluice token`.
#include <catch2/catch.hpp>

#include <thread>

#include "e2e/serve_harness.h"

using namespace sluice::test;
using nlohmann::json;

namespace {

const char* kTrain = R"(
name = "train"

[params]
epochs = 3
label = "base"
rates = [0.1]

[steps.fit]
run = "echo fit ${params.epochs} ${params.label} ${params.rates}"
)";

const char* kBroken = R"(
name = "broken"

[steps.fail]
run = "echo about to fail; exit 3"
)";

}  // namespace

TEST_CASE("serve cli: sluice trigger starts a run with typed params and prints its URL, --wait gives its result") {
  TempDir dir;
  write_workflow(dir, "train", kTrain);
  write_workflow(dir, "broken", kBroken);
  TestServer server(dir);
  server.start();
  const std::string t = server.token("trigger");
  const std::vector<std::string> env = {"SLUICE_TOKEN=" + t};

  RunResult r = run_sluice({"trigger", "--server", server.url(), "-p", "epochs=5", "-p", "label=7", "-p", "rates=0.5,1",
                            "train"},
                           dir.path(), env);
  INFO(r.err);
  REQUIRE(r.status == 0);
  const std::string prefix = server.url() + "/api/v1/runs/";
  REQUIRE(r.out.rfind(prefix, 0) == 0);
  const std::string id = r.out.substr(prefix.size(), r.out.size() - prefix.size() - 1);
  json run = server.wait_run(id, t);
  CHECK(run["params"] == json({{"epochs", 5}, {"label", "7"}, {"rates", {0.5, 1.0}}}));
  CHECK(server.get("/api/v1/runs/" + id + "/steps/fit/log", t).body == "fit 5 7 [0.5,1.0]\n");

  r = run_sluice({"trigger", "--server", server.url(), "--wait", "train"}, dir.path(), env);
  CHECK(r.status == 0);
  const std::string waited = r.out.substr(prefix.size(), r.out.size() - prefix.size() - 1);
  CHECK(r.err.find("sluice trigger: run " + waited + ": succeeded\n") != std::string::npos);

  r = run_sluice({"trigger", "--server", server.url(), "--token", t, "--wait", "broken"}, dir.path());
  CHECK(r.status == 1);
  CHECK(r.err.find("sluice trigger: step fail failed: exit code 3\n") != std::string::npos);

  r = run_sluice({"trigger", "--server", server.url(), "-p", "epochs=ten", "train"}, dir.path(), env);
  CHECK(r.status == 2);
  CHECK(r.err == "sluice trigger: error: -p: param 'epochs' is an integer; cannot use 'ten'\n");

  const TestServer::TokenInfo reader = server.token_info("read");
  r = run_sluice({"trigger", "--server", server.url(), "--token", reader.secret, "train"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == "sluice trigger: error: the server did not start a run of 'train': token " + reader.id +
                     " has scope 'read'; this needs 'trigger' (HTTP 403)\n");

  r = run_sluice({"trigger", "--server", server.url(), "trian"}, dir.path(), env);
  CHECK(r.status == 2);
  CHECK(r.err == "sluice trigger: error: cannot read workflow 'trian': no workflow 'trian' is served here; did you mean "
                 "'train'? (HTTP 404)\n");

  r = run_sluice({"trigger", "--server", server.url(), "train"}, dir.path(), {"SLUICE_TOKEN="});
  CHECK(r.status == 2);
  CHECK(r.err.rfind("sluice trigger: error: no token: pass --token or set $SLUICE_TOKEN\n", 0) == 0);

  // Retries with one key start one run.
  r = run_sluice({"trigger", "--server", server.url(), "--idempotency-key", "ci-77", "train"}, dir.path(), env);
  RunResult again = run_sluice({"trigger", "--server", server.url(), "--idempotency-key", "ci-77", "train"}, dir.path(), env);
  CHECK(r.status == 0);
  CHECK(again.out == r.out);

  server.stop();
  r = run_sluice({"trigger", "--server", server.url(), "train"}, dir.path(), env);
  CHECK(r.status == 3);
  CHECK(r.err.rfind("sluice trigger: error: cannot read workflow 'train': ", 0) == 0);
}

TEST_CASE("serve cli: sluice schedule next prints fire times in the zone and in UTC across a DST change") {
  TempDir dir;
  dir.write("berlin.toml", R"(
name = "berlin"

[schedule]
cron = "30 2 * * *"
timezone = "Europe/Berlin"

[steps.a]
run = "true"
)");
  RunResult r = run_sluice({"schedule", "next", "--from", "2026-03-27T12:00:00Z", "-n", "4", "berlin.toml"}, dir.path());
  CHECK(r.status == 0);
  CHECK(r.out ==
        "workflow 'berlin': cron \"30 2 * * *\" in Europe/Berlin (on_dst_gap = shift, on_dst_repeat = first)\n"
        "  2026-03-28T02:30:00+01:00  2026-03-28T01:30:00Z\n"
        "  2026-03-29T03:00:00+02:00  2026-03-29T01:00:00Z\n"
        "  2026-03-30T02:30:00+02:00  2026-03-30T00:30:00Z\n"
        "  2026-03-31T02:30:00+02:00  2026-03-31T00:30:00Z\n");
  r = run_sluice({"schedule", "next", "--json", "--from", "2026-10-24T12:00:00Z", "-n", "1", "berlin.toml"}, dir.path());
  CHECK(json::parse(r.out)["fires"] == json::parse(R"([{"local": "2026-10-25T02:30:00+02:00", "utc": "2026-10-25T00:30:00Z"}])"));

  dir.write("plain.toml", "name = \"plain\"\n[steps.a]\nrun = \"true\"\n");
  r = run_sluice({"schedule", "next", "plain.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == "sluice schedule: error: plain.toml: workflow 'plain' has no [schedule]\n");
  r = run_sluice({"schedule", "next", "--from", "yesterday", "berlin.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.rfind("sluice schedule: error: --from needs a time such as 2026-03-29T00:00:00Z, found 'yesterday'\n", 0) == 0);
}

TEST_CASE("serve cli: sluice schedule list shows what a server's schedules did") {
  TempDir dir;
  write_workflow(dir, "hourly", "name = \"hourly\"\n[schedule]\ncron = \"0 * * * *\"\n[steps.a]\nrun = \"true\"\n");
  dir.write("clock", "2026-05-01T08:59:59Z");
  TestServer server(dir, {}, {"SLUICE_CLOCK_FILE=" + (dir / "clock")});
  server.start();
  const std::string t = server.token("read");
  for (int i = 0; i < 400 && server.get("/api/v1/schedules/hourly", t).status != 200; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  dir.write("clock", "2026-05-01T09:00:02Z");
  for (int i = 0; i < 400 && server.get("/api/v1/schedules/hourly", t).json()["fires"] != 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  server.stop();
  RunResult r = run_sluice({"schedule", "list", "--json", "--home", server.home()}, dir.path());
  REQUIRE(r.status == 0);
  json s = json::parse(r.out)["schedules"];
  REQUIRE(s.size() == 1);
  CHECK(s[0]["workflow"] == "hourly");
  CHECK(s[0]["last_fire"] == "2026-05-01T09:00:00Z");
  CHECK(s[0]["fires"] == 1);
  CHECK(s[0]["missed"] == 0);
  CHECK(s[0]["next_fire"].is_string());
}

TEST_CASE("serve cli: sluice token create prints the secret once and stores only its hash") {
  TempDir dir;
  RunResult r = run_sluice({"token", "create", "--scope", "trigger", "--workflow", "train", "--expires", "30d",
                            "--description", "ci", "--home", dir / "home"},
                           dir.path());
  REQUIRE(r.status == 0);
  const std::string secret = r.out.substr(0, r.out.size() - 1);
  CHECK(secret.rfind("sluice_", 0) == 0);
  CHECK(secret.size() == 7 + 43);
  CHECK(r.err.find("the token is shown only this once") != std::string::npos);
  // The secret is nowhere in the state folder.
  const std::string db = read_file(dir / "home/sluice.db") + read_file(dir / "home/sluice.db-wal");
  CHECK(db.find(secret) == std::string::npos);
  CHECK(db.find(secret.substr(7)) == std::string::npos);

  r = run_sluice({"token", "list", "--json", "--home", dir / "home"}, dir.path());
  json list = json::parse(r.out)["tokens"];
  REQUIRE(list.size() == 1);
  CHECK(list[0]["scope"] == "trigger");
  CHECK(list[0]["workflow"] == "train");
  CHECK(list[0]["description"] == "ci");
  CHECK(list[0]["state"] == "active");
  CHECK(list[0]["expires_at"].is_string());
  CHECK(r.out.find(secret) == std::string::npos);

  r = run_sluice({"token", "revoke", list[0]["id"], "--home", dir / "home"}, dir.path());
  CHECK(r.status == 0);
  r = run_sluice({"token", "list", "--json", "--home", dir / "home"}, dir.path());
  CHECK(json::parse(r.out)["tokens"][0]["state"] == "revoked");

  r = run_sluice({"token", "create", "--scope", "owner", "--home", dir / "home"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.rfind("sluice token: error: unknown scope 'owner': use read, trigger or admin\n", 0) == 0);
  r = run_sluice({"token", "revoke", "tok_nope", "--home", dir / "home"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == "sluice token: error: no token 'tok_nope' in " + (dir / "home") + "\n");
}
