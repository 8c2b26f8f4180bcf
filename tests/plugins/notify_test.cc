// The built-in notify plugin (plugins/notify): signed webhooks with retries
// against a real server on 127.0.0.1, and JSON lines appended to a file.
#include <atomic>
#include <mutex>
#include <regex>

#include "plugins/plugin_fixture.h"

using nlohmann::json;
using sluice::test::PluginFixture;
using sluice::test::slurp;
using sluice::test::TestServer;

TEST_CASE("notify: webhook posts signed JSON, retries, and keeps its URL out of logs") {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> received;  // body, signature header
  std::atomic<int> hits{0};
  TestServer http;
  http.server.Post("/hooks/T0KEN123", [&](const httplib::Request& req, httplib::Response& res) {
    if (++hits <= 2) {
      res.status = 503;
      return;
    }
    std::lock_guard lock(mu);
    const std::string sig = req.has_header("X-Sluice-Signature-256") ? req.get_header_value("X-Sluice-Signature-256")
                                                                     : req.get_header_value("X-Hub-Signature-256");
    received.emplace_back(req.body, sig);
    res.set_content("ok", "text/plain");
  });
  http.server.Post("/hooks/BROKEN", [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
  http.start();
  PluginFixture f("notify");
  const std::string url = http.base + "/hooks/T0KEN123";

  auto r = f.invoke("webhook", {{"url", url}, {"text", "run 42 done"}, {"secret", "k3y"}, {"backoff", "1ms"}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values == std::map<std::string, std::string>{{"status", "200"}, {"attempts", "3"}});
  REQUIRE(received.size() == 1);
  CHECK(received[0].first == R"({"text":"run 42 done"})");
  // HMAC-SHA256(key "k3y", body), computed with Python's hmac module.
  CHECK(received[0].second == "sha256=1064d145ef5b736308f61933605a0a449f75466ed142b199c13465da633cb142");
  CHECK(f.ctx.logs == std::vector<std::string>{
                          "warning: webhook to 127.0.0.1: HTTP 503, retrying in 1ms (attempt 2 of 4)",
                          "warning: webhook to 127.0.0.1: HTTP 503, retrying in 2ms (attempt 3 of 4)",
                          "webhook to 127.0.0.1: HTTP 200"});

  // A payload with text merged in, signed under another header name.
  r = f.invoke("webhook", {{"url", url},
                           {"payload", {{"model", "churn"}, {"version", 3}}},
                           {"text", "auc 0.91"},
                           {"secret", "other"},
                           {"signature_header", "X-Hub-Signature-256"}});
  CHECK(r.ok);
  REQUIRE(received.size() == 2);
  CHECK(received[1].first == R"({"model":"churn","text":"auc 0.91","version":3})");
  CHECK(received[1].second == "sha256=de75f4629ea29fc28b7b37a15f3a5cbda6c66632b7215a04a87abb5fac626bef");

  r = f.invoke("webhook", {{"url", http.base + "/hooks/BROKEN"}, {"text", "x"}, {"retries", 1}, {"backoff", "1ms"}});
  CHECK(r.error == "webhook to 127.0.0.1: HTTP 500; gave up after 2 attempts");
  for (const auto& line : f.ctx.logs) CHECK(line.find("BROKEN") == std::string::npos);
  r = f.invoke("webhook", {{"url", url}});
  CHECK(r.error == "bad arguments: give 'text' or 'payload'");
}

TEST_CASE("notify: file appends one JSON line per call") {
  PluginFixture f("notify");
  const std::string path = f.dir / "events/alerts.jsonl";
  auto r = f.invoke("file", {{"path", path}, {"text", "drift in age"}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values == std::map<std::string, std::string>{{"path", path}});
  r = f.invoke("file", {{"path", path}, {"payload", {{"feature", "age"}, {"psi", 0.31}}}});
  REQUIRE(r.ok);

  std::istringstream lines(slurp(path));
  std::string line;
  std::vector<json> got;
  while (std::getline(lines, line)) got.push_back(json::parse(line));
  REQUIRE(got.size() == 2);
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
  for (auto& j : got) {
    CHECK(std::regex_match(j.at("time").get<std::string>(), iso));
    j.erase("time");
  }
  CHECK(got[0] == json{{"text", "drift in age"}});
  CHECK(got[1] == json{{"feature", "age"}, {"psi", 0.31}});
}
