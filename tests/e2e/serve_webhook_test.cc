// POST /hooks/github on a real server: signatures, event mapping through
// [triggers], redeliveries.
#include <catch2/catch.hpp>

#include "e2e/serve_harness.h"

using namespace sluice::test;
using nlohmann::json;

namespace {

const std::string kSecret = "It's a Secret to Everybody";

const char* kDeploy = R"(
name = "deploy"

[params]
commit = ""
branch = ""
attempts = 1

[[triggers.push]]
repository = "acme/shop"
branches = ["main", "release/*"]
params = { commit = "${event.sha}", branch = "${event.branch}", attempts = 2 }

[steps.ship]
run = "echo shipping ${params.commit} from ${params.branch}"
)";

const char* kPublish = R"(
name = "publish"

[params]
version = ""

[triggers.release]
tags = ["v*"]
params = { version = "${event.tag}" }

[steps.announce]
run = "echo release ${params.version}"
)";

const char* kQuiet = R"(
name = "quiet"

[steps.a]
run = "true"
)";

std::string push_payload(const std::string& ref, const std::string& repo = "acme/shop") {
  return json({{"ref", ref},
               {"before", std::string(40, '0')},
               {"after", "9fceb02d0ae598e95dc970b74767f19372d61af8"},
               {"deleted", false},
               {"repository", {{"full_name", repo}, {"name", "shop"}}},
               {"pusher", {{"name", "octocat"}}},
               {"sender", {{"login", "octocat"}}}})
      .dump();
}

std::map<std::string, std::string> github_headers(const std::string& event, const std::string& delivery,
                                                  const std::string& signature) {
  std::map<std::string, std::string> h = {{"X-GitHub-Event", event}, {"X-GitHub-Delivery", delivery},
                                          {"User-Agent", "GitHub-Hookshot/044aadd"}};
  if (!signature.empty()) h["X-Hub-Signature-256"] = signature;
  return h;
}

json error(const std::string& code, const std::string& message) { return {{"error", code}, {"message", message}}; }

}  // namespace

TEST_CASE("serve webhook: a signed push to a matching branch starts a run with the event's params") {
  TempDir dir;
  write_workflow(dir, "deploy", kDeploy);
  write_workflow(dir, "publish", kPublish);
  write_workflow(dir, "quiet", kQuiet);
  dir.write("secret", kSecret + "\n");
  TestServer server(dir, {"--webhook-secret-file", dir / "secret"});
  server.start();
  const std::string admin = server.token("admin");

  const std::string body = push_payload("refs/heads/release/2.1");
  Reply r = server.post("/hooks/github", body, "", github_headers("push", "72d3162e-1", github_signature(kSecret, body)));
  REQUIRE(r.status == 202);
  json out = r.json();
  CHECK(out["delivery"] == "72d3162e-1");
  CHECK(out["event"] == "push");
  CHECK(out["duplicate"] == false);
  REQUIRE(out["runs"].size() == 1);
  CHECK(out["runs"][0]["workflow"] == "deploy");
  const std::string id = out["runs"][0]["run_id"];
  json run = server.wait_run(id, admin);
  CHECK(run["status"] == "succeeded");
  CHECK(run["trigger"] == "webhook");
  CHECK(run["params"] == json({{"commit", "9fceb02d0ae598e95dc970b74767f19372d61af8"},
                               {"branch", "release/2.1"},
                               {"attempts", 2}}));
  CHECK(server.get("/api/v1/runs/" + id + "/steps/ship/log", admin).body ==
        "shipping 9fceb02d0ae598e95dc970b74767f19372d61af8 from release/2.1\n");

  // A redelivery of the same delivery starts nothing and answers as before.
  Reply again = server.post("/hooks/github", body, "", github_headers("push", "72d3162e-1", github_signature(kSecret, body)));
  CHECK(again.status == 200);
  json dup = again.json();
  CHECK(dup["duplicate"] == true);
  CHECK(dup["runs"] == out["runs"]);
  CHECK(server.count_runs(admin) == 1);

  // A release starts the publish workflow.
  const std::string rel = json({{"action", "published"},
                                {"release", {{"tag_name", "v1.4.0"}, {"name", "1.4"}}},
                                {"repository", {{"full_name", "acme/shop"}}},
                                {"sender", {{"login", "hubot"}}}})
                              .dump();
  r = server.post("/hooks/github", rel, "", github_headers("release", "72d3162e-2", github_signature(kSecret, rel)));
  REQUIRE(r.status == 202);
  REQUIRE(r.json()["runs"].size() == 1);
  CHECK(r.json()["runs"][0]["workflow"] == "publish");
  CHECK(server.wait_run(r.json()["runs"][0]["run_id"], admin)["params"]["version"] == "v1.4.0");

  // Events that match nothing: another branch, another repository, a ping, an unmapped event.
  const std::string dev = push_payload("refs/heads/dev");
  r = server.post("/hooks/github", dev, "", github_headers("push", "72d3162e-3", github_signature(kSecret, dev)));
  CHECK(r.status == 200);
  CHECK(r.json()["runs"].empty());
  const std::string fork = push_payload("refs/heads/main", "someone/shop");
  r = server.post("/hooks/github", fork, "", github_headers("push", "72d3162e-4", github_signature(kSecret, fork)));
  CHECK(r.status == 200);
  CHECK(r.json()["runs"].empty());
  const std::string ping = R"({"zen": "Keep it logically awesome.", "hook_id": 1})";
  r = server.post("/hooks/github", ping, "", github_headers("ping", "72d3162e-5", github_signature(kSecret, ping)));
  CHECK(r.status == 200);
  CHECK(r.json() == json({{"delivery", "72d3162e-5"}, {"event", "ping"}, {"duplicate", false}, {"runs", json::array()}}));
  r = server.post("/hooks/github", ping, "", github_headers("issues", "72d3162e-6", github_signature(kSecret, ping)));
  CHECK(r.status == 200);
  CHECK(r.json()["ignored"] == "event 'issues' starts no runs: triggers take push and release");
  CHECK(server.count_runs(admin) == 2);
}

TEST_CASE("serve webhook: bad, missing, SHA-1-only and one-byte-off signatures get 401 and start nothing") {
  TempDir dir;
  write_workflow(dir, "deploy", kDeploy);
  dir.write("secret", kSecret);
  TestServer server(dir, {"--webhook-secret-file", dir / "secret"});
  server.start();
  const std::string admin = server.token("admin");
  const std::string body = push_payload("refs/heads/main");

  Reply r = server.post("/hooks/github", body, "", github_headers("push", "d-1", github_signature("wrong secret", body)));
  CHECK(r.status == 401);
  CHECK(r.json() == error("bad_signature", "X-Hub-Signature-256 does not match the body: check the webhook's secret"));

  r = server.post("/hooks/github", body, "", github_headers("push", "d-2", ""));
  CHECK(r.status == 401);
  CHECK(r.json() == error("bad_signature", "missing X-Hub-Signature-256: give the webhook a secret in GitHub"));

  auto sha1_only = github_headers("push", "d-3", "");
  sha1_only["X-Hub-Signature"] = "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6";
  r = server.post("/hooks/github", body, "", sha1_only);
  CHECK(r.status == 401);
  CHECK(r.json() == error("bad_signature", "X-Hub-Signature (HMAC-SHA1) is not accepted: sluice verifies X-Hub-Signature-256"));

  // Signed, then one byte of the body changed on the way.
  std::string tampered = body;
  tampered[tampered.find("main") + 3] = 'x';  // "maix"
  r = server.post("/hooks/github", tampered, "", github_headers("push", "d-4", github_signature(kSecret, body)));
  CHECK(r.status == 401);
  CHECK(r.json() == error("bad_signature", "X-Hub-Signature-256 does not match the body: check the webhook's secret"));

  // A signature of the wrong shape, and one over the right body with upper-case hex (still valid).
  r = server.post("/hooks/github", body, "", github_headers("push", "d-5", "sha256=abc"));
  CHECK(r.status == 401);
  std::string upper = github_signature(kSecret, body);
  for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
  CHECK(server.count_runs(admin) == 0);
  r = server.post("/hooks/github", body, "", github_headers("push", "d-6", upper));
  CHECK(r.status == 202);
  CHECK(server.count_runs(admin) == 1);

  // Signed but not a push payload, or without a delivery id.
  const std::string junk = R"({"ref": 5})";
  r = server.post("/hooks/github", junk, "", github_headers("push", "d-7", github_signature(kSecret, junk)));
  CHECK(r.status == 400);
  CHECK(r.json() == error("bad_request", "the push payload has no repository.full_name"));
  r = server.post("/hooks/github", body, "", {{"X-GitHub-Event", "push"}, {"X-Hub-Signature-256", github_signature(kSecret, body)}});
  CHECK(r.status == 400);
  CHECK(r.json() == error("bad_request", "a GitHub delivery needs X-GitHub-Event and X-GitHub-Delivery headers"));
  CHECK(server.count_runs(admin) == 1);
}

TEST_CASE("serve webhook: without a secret the hook is off") {
  TempDir dir;
  write_workflow(dir, "deploy", kDeploy);
  TestServer server(dir);
  server.start();
  const std::string body = push_payload("refs/heads/main");
  Reply r = server.post("/hooks/github", body, "", github_headers("push", "d-1", github_signature(kSecret, body)));
  CHECK(r.status == 404);
  CHECK(r.json() == error("not_found", "webhooks are not enabled on this server: start it with --webhook-secret-file FILE"));
}
