// The model registry over `sluice serve`'s HTTP API: models registered by
// real runs under the server, listed and shown over real HTTP, aliases moved
// with PUT (admin only) and the move visible in `sluice models history`.
// Every answer is checked against docs/openapi.yaml by the harness.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "e2e/serve_harness.h"

using namespace sluice::test;
using nlohmann::json;

namespace {

// Trains (writes model.json and reports `auc`) and registers the result as
// the next version of `recommender`.
const char* kTrainer = R"(
name = "trainer"

[params]
auc = 0.8

[steps.train]
run = "echo '{\"auc\": ${params.auc}}' > ${outputs.model}; echo auc ${params.auc} >> $SLUICE_METRICS"
outputs = { model = "model.json" }

[steps.register]
uses = "registry.register"
with = { model = "recommender", artifact = "${steps.train.outputs.model}", format = "json" }
)";

json error(const std::string& code, const std::string& message) { return {{"error", code}, {"message", message}}; }

// A server serving `trainer`, and the ids of the runs that registered
// versions 1..n of `recommender` (triggered through the API, run by the server).
struct ModelServer {
  TempDir dir;
  std::unique_ptr<TestServer> server;
  std::string admin;
  std::vector<std::string> runs;  // runs[i] registered version i + 1

  explicit ModelServer(const std::vector<std::string>& aucs) {
    write_workflow(dir, "trainer", kTrainer);
    server = std::make_unique<TestServer>(dir);
    server->start();
    admin = server->token("admin");
    for (const std::string& auc : aucs) {
      Reply r = server->post("/api/v1/workflows/trainer/runs", R"({"params": {"auc": )" + auc + "}}", admin);
      REQUIRE(r.status == 202);
      const std::string id = r.json()["run_id"];
      json run = server->wait_run(id, admin);
      INFO(run.dump(2));
      REQUIRE(run["status"] == "succeeded");
      runs.push_back(id);
    }
  }

  // `sluice ARGS --home HOME` as user "ci-bot"; its stdout.
  std::string sluice(std::vector<std::string> args) const {
    args.insert(args.end(), {"--home", server->home()});
    RunResult r = run_sluice(args, dir.path(), {"SLUICE_ACTOR=ci-bot"});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    return r.out;
  }
};

}  // namespace

TEST_CASE("serve models: list and show the models runs under serve registered, with lineage, aliases and history") {
  ModelServer ms({"0.81", "0.84"});
  TestServer& server = *ms.server;
  ms.sluice({"models", "promote", "recommender", "1", "--alias", "production", "--reason", "first release"});
  const TestServer::TokenInfo read = server.token_info("read");

  Reply r = server.get("/api/v1/models", read.secret);
  REQUIRE(r.status == 200);
  json models = r.json()["models"];
  REQUIRE(models.size() == 1);
  CHECK(models[0]["name"] == "recommender");
  CHECK(models[0]["versions"] == 2);
  CHECK(models[0]["aliases"] == json({{"production", 1}}));
  CHECK(models[0]["url"] == server.url() + "/api/v1/models/recommender");
  const json latest = models[0]["latest"];
  CHECK(latest["version"] == 2);
  CHECK(latest["metrics"]["auc"] == 0.84);
  CHECK(latest["lineage"]["run"] == ms.runs[1]);
  CHECK(latest["aliases"] == json::array());

  r = server.get("/api/v1/models/recommender", read.secret);
  REQUIRE(r.status == 200);
  const json model = r.json();
  CHECK(model["aliases"] == json({{"production", 1}}));
  REQUIRE(model["versions"].size() == 2);
  for (int i = 0; i < 2; ++i) {
    const json& v = model["versions"][i];
    CHECK(v["version"] == i + 1);
    CHECK(v["lineage"]["run"] == ms.runs[i]);
    CHECK(v["lineage"]["step"] == "train");
    CHECK(v["lineage"]["workflow"] == "trainer");
    CHECK(v["lineage"]["registered_run"] == ms.runs[i]);
    CHECK(v["lineage"]["registered_node"] == "register");
    CHECK(v["archived"] == false);
  }
  CHECK(model["versions"][0]["metrics"]["auc"] == 0.81);
  CHECK(model["versions"][0]["aliases"] == json({"production"}));
  // The digest is the train step's output, as GET /runs/{id} reports it.
  json run = server.get("/api/v1/runs/" + ms.runs[0], read.secret).json();
  for (const json& s : run["steps"])
    if (s["node"] == "train") CHECK(model["versions"][0]["digest"] == s["outputs"][0]["digest"]);
  REQUIRE(model["history"].size() == 1);
  CHECK(model["history"][0]["alias"] == "production");
  CHECK(model["history"][0]["version"] == 1);
  CHECK(model["history"][0]["actor"] == "ci-bot");
  CHECK(model["history"][0]["reason"] == "first release");
  CHECK(model["history"][0]["until"].is_null());

  // Unknown models are 404 with the registry's message, a suggestion included.
  r = server.get("/api/v1/models/recomender", read.secret);
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "no model 'recomender'; did you mean 'recommender'?"));
  r = server.get("/api/v1/models/churn", read.secret);
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "no model 'churn'"));

  // Auth: no token is 401; a token limited to a workflow may not read
  // models, which span workflows.
  for (const char* path : {"/api/v1/models", "/api/v1/models/recommender"}) {
    r = server.get(path);
    CHECK(r.status == 401);
    CHECK(r.json()["error"] == "unauthorized");
    const TestServer::TokenInfo limited = server.token_info("admin", "trainer");
    r = server.get(path, limited.secret);
    CHECK(r.status == 403);
    CHECK(r.json() == error("forbidden", "token " + limited.id +
                                             " is limited to workflow 'trainer'; this request spans every workflow"));
  }
}

TEST_CASE("serve models: PUT moves an alias for admin tokens only, records reason and actor, refuses bad moves") {
  ModelServer ms({"0.81", "0.84", "0.86"});
  TestServer& server = *ms.server;
  ms.sluice({"models", "archive", "recommender", "3"});
  const TestServer::TokenInfo admin = server.token_info("admin");
  const TestServer::TokenInfo read = server.token_info("read");
  const TestServer::TokenInfo trigger = server.token_info("trigger");
  const TestServer::TokenInfo limited = server.token_info("admin", "trainer");
  const std::string path = "/api/v1/models/recommender/aliases/production";
  const std::string body = R"({"version": 1, "reason": "first release"})";

  // Who may not: nothing moves.
  Reply r = server.put(path, body);
  CHECK(r.status == 401);
  CHECK(r.json() == error("unauthorized",
                          "missing bearer token: send 'Authorization: Bearer TOKEN' (create one with 'sluice token create')"));
  r = server.put(path, body, read.secret);
  CHECK(r.status == 403);
  CHECK(r.json() == error("forbidden", "token " + read.id + " has scope 'read'; this needs 'admin'"));
  r = server.put(path, body, trigger.secret);
  CHECK(r.status == 403);
  CHECK(r.json() == error("forbidden", "token " + trigger.id + " has scope 'trigger'; this needs 'admin'"));
  r = server.put(path, body, limited.secret);
  CHECK(r.status == 403);
  CHECK(r.json() == error("forbidden", "token " + limited.id +
                                           " is limited to workflow 'trainer'; this request spans every workflow"));
  CHECK(server.get("/api/v1/models/recommender", admin.secret).json()["history"] == json::array());

  // An admin token moves it: set, moved, already held.
  r = server.put(path, body, admin.secret);
  REQUIRE(r.status == 200);
  CHECK(r.json() == json({{"model", "recommender"},
                          {"alias", "production"},
                          {"version", 1},
                          {"previous", nullptr},
                          {"moved", true},
                          {"actor", admin.id},
                          {"reason", "first release"},
                          {"url", server.url() + "/api/v1/models/recommender"}}));
  r = server.put(path, R"({"version": 2, "reason": "auc +0.03"})", admin.secret);
  REQUIRE(r.status == 200);
  CHECK(r.json()["previous"] == 1);
  CHECK(r.json()["version"] == 2);
  CHECK(r.json()["moved"] == true);
  r = server.put(path, R"({"version": 2})", admin.secret);
  REQUIRE(r.status == 200);
  CHECK(r.json()["previous"] == 2);
  CHECK(r.json()["moved"] == false);

  // What the registry refuses.
  r = server.put("/api/v1/models/recomender/aliases/production", body, admin.secret);
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "no model 'recomender'; did you mean 'recommender'?"));
  r = server.put(path, R"({"version": 9})", admin.secret);
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "model 'recommender' has no version 9 (it has versions 1 to 3)"));
  r = server.put(path, R"({"version": 3})", admin.secret);
  CHECK(r.status == 409);
  CHECK(r.json() == error("conflict",
                          "version 3 of model 'recommender' is archived: an alias cannot point to an archived version"));
  // The CLI's alias rules.
  r = server.put("/api/v1/models/recommender/aliases/Prod", body, admin.secret);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_request",
                          "alias 'Prod' is invalid: use lowercase letters, digits, '_' and '-', starting with a letter"));
  r = server.put("/api/v1/models/recommender/aliases/latest", body, admin.secret);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_request", "'latest' cannot be an alias: it means the newest version"));
  // Bodies.
  r = server.put(path, R"({"version": "2"})", admin.secret);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_request", "'version' must be a version number (an integer from 1); found \"2\""));
  r = server.put(path, R"({"version": 0})", admin.secret);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_request", "'version' must be a version number (an integer from 1); found 0"));
  r = server.put(path, R"({"reason": "no version"})", admin.secret);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_request", "'version' is required: the version number the alias moves to"));
  r = server.put(path, R"({"version": 1, "force": true})", admin.secret);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_request", "unknown field 'force' in the request body: expected 'version' and 'reason'"));
  r = server.put(path, R"({"version": 1, "reason": 7})", admin.secret);
  CHECK(r.status == 422);
  CHECK(r.json() == error("invalid_request", "'reason' must be a string; found 7"));
  r = server.put(path, R"({"version": 1)", admin.secret);
  CHECK(r.status == 400);
  CHECK(r.json() == error("bad_request", "the request body is not valid JSON"));
  for (const char* bad : {"", "[1]"}) {
    r = server.put(path, bad, admin.secret);
    CHECK(r.status == 400);
    CHECK(r.json() == error("bad_request",
                            "the request body must be a JSON object such as {\"version\": 3, \"reason\": \"why\"}"));
  }
  // The path takes PUT only.
  r = server.get(path, admin.secret);
  CHECK(r.status == 405);
  CHECK(r.json() == error("method_not_allowed", "GET is not allowed on " + path + ": use PUT"));
  CHECK(r.header("allow") == "PUT");

  // None of the refusals moved anything; the CLI sees the API's moves with
  // their reasons and the token as the actor.
  r = server.get("/api/v1/models/recommender", read.secret);
  CHECK(r.json()["aliases"] == json({{"production", 2}}));
  const json history = json::parse(ms.sluice({"models", "history", "recommender", "--json"}))["history"];
  REQUIRE(history.size() == 2);
  CHECK(history[0]["version"] == 1);
  CHECK(history[0]["actor"] == admin.id);
  CHECK(history[0]["reason"] == "first release");
  CHECK(history[0]["action"] == "promote");
  CHECK(history[0]["until"] == history[1]["from"]);
  CHECK(history[1]["version"] == 2);
  CHECK(history[1]["actor"] == admin.id);
  CHECK(history[1]["reason"] == "auc +0.03");
  CHECK(history[1]["previous_version"] == 1);
  CHECK(history[1]["until"].is_null());
  const std::string text = ms.sluice({"models", "history", "recommender"});
  CHECK(text.find(admin.id + "  promote  auc +0.03\n") != std::string::npos);
}
