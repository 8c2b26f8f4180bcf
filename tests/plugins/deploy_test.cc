// The built-in deploy plugin (plugins/deploy): release folders with an
// atomically switched `current`, rollback, and HTTP deployment against a
// real server on 127.0.0.1 whose health depends on the model it was sent.
#include <unistd.h>

#include <atomic>
#include <mutex>

#include "plugins/plugin_fixture.h"

using namespace std::chrono_literals;
using nlohmann::json;
using sluice::test::list_dir;
using sluice::test::PluginFixture;
using sluice::test::slurp;
using sluice::test::spit;
using sluice::test::TestServer;

namespace {

std::string link_of(const std::string& path) {
  std::error_code ec;
  return std::filesystem::read_symlink(path, ec).string();
}

std::vector<json> history_of(const std::string& root) {
  std::vector<json> out;
  std::ifstream in(root + "/history.jsonl");
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

}  // namespace

TEST_CASE("deploy: release copies the model, switches current and keeps the newest") {
  PluginFixture f("deploy");
  const std::string root = f.dir / "serving", model = f.dir / "model.json";
  for (int v = 1; v <= 3; ++v) {
    spit(model, "model " + std::to_string(v));
    auto r = f.invoke("release", {{"artifact", model}, {"root", root}, {"keep", 2}});
    INFO(r.error);
    REQUIRE(r.ok);
    const std::string dir = root + "/releases/" + std::to_string(v);
    CHECK(r.values == std::map<std::string, std::string>{{"version", std::to_string(v)},
                                                         {"release", dir},
                                                         {"path", dir + "/model.json"},
                                                         {"previous", v > 1 ? std::to_string(v - 1) : ""}});
  }
  CHECK(link_of(root + "/current") == "releases/3");
  CHECK(slurp(root + "/current/model.json") == "model 3");
  CHECK(list_dir(root + "/releases") == std::vector<std::string>{"2", "3"});
  CHECK(std::find(f.ctx.logs.begin(), f.ctx.logs.end(), "removed old release 1") != f.ctx.logs.end());
  const auto history = history_of(root);
  REQUIRE(history.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(history[i]["action"] == "release");
    CHECK(history[i]["version"] == std::to_string(i + 1));
    CHECK(history[i]["previous"] == (i ? std::to_string(i) : ""));
  }

  // Named versions; releases are immutable.
  auto r = f.invoke("release", {{"artifact", model}, {"root", root}, {"version", "2024.06-rc1"}});
  CHECK(r.ok);
  CHECK(link_of(root + "/current") == "releases/2024.06-rc1");
  r = f.invoke("release", {{"artifact", model}, {"root", root}, {"version", "2024.06-rc1"}});
  CHECK(r.error == "release 2024.06-rc1 already exists in " + root + "/releases (releases are immutable)");
  r = f.invoke("release", {{"artifact", model}, {"root", root}, {"version", "../up"}});
  CHECK(r.error == "bad arguments: 'version' must be letters, digits, '.', '_' or '-' (starting with a letter or "
                   "digit), not '../up'");
  r = f.invoke("release", {{"artifact", f.dir / "nope.json"}, {"root", root}});
  CHECK(r.error == "cannot release '" + (f.dir / "nope.json") + "': No such file or directory");
  // The next numbered release follows the highest number, not the named one.
  std::filesystem::create_directories(f.dir / "bundle/assets");
  spit(f.dir / "bundle/assets/vocab.txt", "a b c");
  r = f.invoke("release", {{"artifact", f.dir / "bundle"}, {"root", root}, {"keep", 10}});
  CHECK(r.values.at("version") == "4");
  CHECK(slurp(root + "/current/bundle/assets/vocab.txt") == "a b c");
  CHECK(list_dir(root + "/releases") == std::vector<std::string>{"2", "2024.06-rc1", "3", "4"});  // no staging left
}

TEST_CASE("deploy: rollback walks back through what was current") {
  PluginFixture f("deploy");
  const std::string root = f.dir / "serving", model = f.dir / "model.json";
  auto r = f.invoke("rollback", {{"root", root}});
  CHECK(r.error == "'" + root + "' is not a deployment folder");
  for (int v = 1; v <= 3; ++v) {
    spit(model, "model " + std::to_string(v));
    REQUIRE(f.invoke("release", {{"artifact", model}, {"root", root}}).ok);
  }
  r = f.invoke("rollback", {{"root", root}});
  INFO(r.error);
  CHECK(r.values == std::map<std::string, std::string>{
                        {"version", "2"}, {"release", root + "/releases/2"}, {"previous", "3"}});
  CHECK(slurp(root + "/current/model.json") == "model 2");
  r = f.invoke("rollback", {{"root", root}});
  CHECK(r.values.at("version") == "1");
  r = f.invoke("rollback", {{"root", root}});
  CHECK(r.error == "no release before 1 to roll back to");
  r = f.invoke("rollback", {{"root", root}, {"to", "3"}});
  CHECK(r.values.at("version") == "3");
  CHECK(r.values.at("previous") == "1");
  r = f.invoke("rollback", {{"root", root}});  // back to where it came from
  CHECK(r.values.at("version") == "1");
  r = f.invoke("rollback", {{"root", root}, {"to", "9"}});
  CHECK(r.error == "release 9 no longer exists in " + root + "/releases");
  r = f.invoke("rollback", {{"root", root}, {"to", "1"}});
  CHECK(r.error == "release 1 is already current");
  CHECK(history_of(root).size() == 7);  // 3 releases, 4 rollbacks

  std::filesystem::remove(root + "/current");
  r = f.invoke("rollback", {{"root", root}});
  CHECK(r.error == root + "/current does not exist: nothing is released");
}

TEST_CASE("deploy: readers never find current missing while releases switch") {
  PluginFixture f("deploy");
  const std::string root = f.dir / "serving", model = f.dir / "model.json";
  spit(model, "model 0");
  REQUIRE(f.invoke("release", {{"artifact", model}, {"root", root}}).ok);
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0}, missing{0}, torn{0};
  std::thread reader([&] {
    while (!stop) {
      std::ifstream in(root + "/current/model.json");
      if (!in) {
        ++missing;
        continue;
      }
      std::stringstream text;
      text << in.rdbuf();
      if (text.str().rfind("model ", 0) != 0) ++torn;
      ++reads;
    }
  });
  for (int v = 1; v <= 15; ++v) {
    spit(model, "model " + std::to_string(v));
    auto r = f.invoke("release", {{"artifact", model}, {"root", root}, {"keep", 3}});
    CHECK(r.ok);
  }
  stop = true;
  reader.join();
  CHECK(missing == 0);
  CHECK(torn == 0);
  CHECK(reads > 0);
  CHECK(slurp(root + "/current/model.json") == "model 15");
}

namespace {

// A serving endpoint: POST /deploy loads a model (the body, or a model_url);
// GET /health is 200 unless the model loaded starts with "bad".
struct ModelServer {
  TestServer http;
  std::mutex mu;
  std::string serving = "none";
  std::vector<std::string> posts;

  ModelServer() {
    http.server.Post("/deploy", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu);
      if (req.get_header_value("Content-Type") == "application/json")
        serving = json::parse(req.body).at("model_url").get<std::string>();
      else
        serving = req.body;
      posts.push_back(serving);
      res.set_content("{\"loaded\":true}", "application/json");
    });
    http.server.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mu);
      res.status = serving.rfind("bad", 0) == 0 ? 503 : 200;
    });
    http.server.Post("/broken", [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
    http.start();
  }
};

}  // namespace

TEST_CASE("deploy: http posts the model, checks health and rolls back when unhealthy") {
  ModelServer m;
  PluginFixture f("deploy");
  const std::string good = f.dir / "good.bin", bad = f.dir / "bad.bin";
  spit(good, "good model");
  spit(bad, "bad model");
  const json base = {{"endpoint", m.http.base + "/deploy"},
                     {"health_url", m.http.base + "/health"},
                     {"health_timeout", "1s"},
                     {"health_interval", "100ms"},
                     {"backoff", "1ms"}};
  auto with = [&](json extra) {
    json a = base;
    a.update(extra);
    return a;
  };

  auto r = f.invoke("http", with({{"artifact", good}}));
  INFO(r.error);
  CHECK(r.ok);
  CHECK(r.values == std::map<std::string, std::string>{{"deployed", "true"}, {"rolled_back", "false"}, {"health_checks", "1"}});
  CHECK(m.serving == "good model");

  const std::string unhealthy = m.http.base + "/health not healthy within 1s (last: HTTP 503)";
  r = f.invoke("http", with({{"artifact", bad}, {"rollback_artifact", good}}));
  CHECK(!r.ok);
  CHECK(r.error == unhealthy + "; rolled back to the previous model");
  CHECK(r.values == std::map<std::string, std::string>{{"deployed", "false"}, {"rolled_back", "true"}});
  CHECK(m.serving == "good model");
  CHECK(m.posts == std::vector<std::string>{"good model", "bad model", "good model"});

  r = f.invoke("http", with({{"artifact", bad}}));
  CHECK(r.error == unhealthy + "; nothing to roll back to (set rollback_artifact or rollback_url)");
  CHECK(m.serving == "bad model");

  r = f.invoke("http", with({{"model_url", "bad://m2"}, {"rollback_url", "bad://m1"}}));
  CHECK(r.error == unhealthy + "; rollback failed: the previous model is not healthy either (last: HTTP 503)");
  CHECK(r.values.at("rolled_back") == "false");

  r = f.invoke("http", with({{"model_url", "s3://models/churn/7"}}));
  CHECK(r.ok);
  CHECK(m.serving == "s3://models/churn/7");

  r = f.invoke("http", with({{"endpoint", m.http.base + "/broken"}, {"artifact", good}}));
  CHECK(r.error == "POST " + m.http.base + "/broken: HTTP 500; gave up after 3 attempts");
  r = f.invoke("http", with({{"artifact", good}, {"model_url", "x"}}));
  CHECK(r.error == "bad arguments: give 'artifact' or 'model_url', not both");
  r = f.invoke("http", base);
  CHECK(r.error == "bad arguments: give 'artifact' or 'model_url'");
}
