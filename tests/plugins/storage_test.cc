// The built-in storage plugin (plugins/storage), loaded from the build tree
// and run in plugin workers against real files and a real HTTP server.
#include <atomic>
#include <map>
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

const std::string kHello = "hello world\n";
// sha256sum of "hello world\n", computed outside sluice.
const std::string kHelloSha = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";

}  // namespace

TEST_CASE("storage: fetch over HTTP verifies sha256 before the output appears") {
  TestServer http;
  http.server.Get("/data.csv", [](const httplib::Request&, httplib::Response& res) { res.set_content(kHello, "text/csv"); });
  http.start();
  PluginFixture f("storage");
  const std::string out = f.dir / "data.csv";
  const std::string url = http.base + "/data.csv";

  auto r = f.invoke("fetch", {{"url", url}, {"sha256", kHelloSha}}, {{"data", out}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(slurp(out) == kHello);
  CHECK(r.values == std::map<std::string, std::string>{{"sha256", kHelloSha}, {"bytes", "12"}, {"attempts", "1"}});

  // A wrong checksum fails the step and leaves neither the output nor a temp file.
  std::filesystem::remove(out);
  const std::string wrong(64, '0');
  r = f.invoke("fetch", {{"url", url}, {"sha256", wrong}}, {{"data", out}});
  CHECK(!r.ok);
  CHECK(r.error == "sha256 mismatch for " + url + ": expected " + wrong + ", got " + kHelloSha);
  CHECK(list_dir(f.dir.path).empty());

  // Upper-case digests are accepted; an existing output is replaced whole.
  spit(out, "stale");
  std::string upper = kHelloSha;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  r = f.invoke("fetch", {{"url", url}, {"sha256", upper}}, {{"data", out}});
  CHECK(r.ok);
  CHECK(slurp(out) == kHello);
  CHECK(list_dir(f.dir.path) == std::vector<std::string>{"data.csv"});
}

TEST_CASE("storage: fetch retries after 503s with backoff, and not after a 404") {
  std::atomic<int> hits{0}, always{0}, missing{0};
  TestServer http;
  http.server.Get("/flaky", [&](const httplib::Request&, httplib::Response& res) {
    if (++hits <= 2) {
      res.status = 503;
      return;
    }
    res.set_content(kHello, "text/plain");
  });
  http.server.Get("/down", [&](const httplib::Request&, httplib::Response& res) {
    ++always;
    res.status = 503;
  });
  http.server.Get("/gone", [&](const httplib::Request&, httplib::Response& res) {
    ++missing;
    res.status = 404;
  });
  http.start();
  PluginFixture f("storage");
  const std::string out = f.dir / "x";

  auto r = f.invoke("fetch", {{"url", http.base + "/flaky"}, {"backoff", "10ms"}}, {{"data", out}});
  INFO(r.error);
  CHECK(r.ok);
  CHECK(hits == 3);
  CHECK(r.values.at("attempts") == "3");
  CHECK(slurp(out) == kHello);
  CHECK(f.ctx.logs == std::vector<std::string>{
                          "warning: GET " + http.base + "/flaky: HTTP 503, retrying in 10ms (attempt 2 of 4)",
                          "warning: GET " + http.base + "/flaky: HTTP 503, retrying in 20ms (attempt 3 of 4)",
                          "stored 12 bytes from " + http.base + "/flaky (sha256 " + kHelloSha + ")"});

  r = f.invoke("fetch", {{"url", http.base + "/down"}, {"backoff", "1ms"}, {"retries", 2}}, {{"data", out}});
  CHECK(r.error == "GET " + http.base + "/down: HTTP 503; gave up after 3 attempts");
  CHECK(always == 3);

  r = f.invoke("fetch", {{"url", http.base + "/gone"}, {"backoff", "1ms"}}, {{"data", out}});
  CHECK(r.error == "GET " + http.base + "/gone: HTTP 404");
  CHECK(missing == 1);
  CHECK(slurp(out) == kHello);  // the earlier output is untouched by failures
}

TEST_CASE("storage: fetch enforces max_size whether or not the size is announced") {
  const std::string big(4096, 'x');
  TestServer http;
  http.server.Get("/big", [&](const httplib::Request&, httplib::Response& res) { res.set_content(big, "text/plain"); });
  http.server.Get("/stream", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [&](size_t, httplib::DataSink& sink) {
      for (int i = 0; i < 4; ++i) sink.write(big.data(), 1024);
      sink.done();
      return true;
    });
  });
  http.start();
  PluginFixture f("storage");
  const std::string out = f.dir / "x";
  auto r = f.invoke("fetch", {{"url", http.base + "/big"}, {"max_size", "1K"}}, {{"data", out}});
  CHECK(r.error == "GET " + http.base + "/big: larger than max_size 1K");
  r = f.invoke("fetch", {{"url", http.base + "/stream"}, {"max_size", "3K"}}, {{"data", out}});
  CHECK(r.error == "GET " + http.base + "/stream: larger than max_size 3K");
  CHECK(list_dir(f.dir.path).empty());
  r = f.invoke("fetch", {{"url", http.base + "/stream"}, {"max_size", "4K"}}, {{"data", out}});
  CHECK(r.ok);
  CHECK(slurp(out).size() == 4096);

  const std::string local = f.dir / "local.bin";
  spit(local, big);
  r = f.invoke("fetch", {{"url", "file://" + local}, {"max_size", "4095"}}, {{"data", out}});
  CHECK(r.error == "'" + local + "' is larger than max_size 4095");
}

TEST_CASE("storage: fetch gives up on a slow server after its timeout") {
  TestServer http;
  std::atomic<int> hits{0};
  http.server.Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    std::this_thread::sleep_for(1s);
    res.set_content("late", "text/plain");
  });
  http.start();
  PluginFixture f("storage");
  auto r = f.invoke("fetch", {{"url", http.base + "/slow"}, {"timeout", "200ms"}, {"retries", 1}, {"backoff", "1ms"}},
                    {{"data", f.dir / "x"}});
  CHECK(r.error == "GET " + http.base + "/slow: timed out after 200ms; gave up after 2 attempts");
  CHECK(hits == 2);
  CHECK(!r.timed_out);  // the step's own timeout did not fire: the plugin's did
}

TEST_CASE("storage: fetch copies local files and file:// URLs and names what it cannot read") {
  PluginFixture f("storage");
  const std::string src = f.dir / "my data.csv", out = f.dir / "copy.csv";
  spit(src, kHello);
  auto r = f.invoke("fetch", {{"url", src}, {"sha256", kHelloSha}}, {{"data", out}});
  CHECK(r.ok);
  CHECK(slurp(out) == kHello);
  std::filesystem::remove(out);
  r = f.invoke("fetch", {{"url", "file://" + (f.dir / "my%20data.csv")}}, {{"data", out}});
  CHECK(r.ok);
  CHECK(slurp(out) == kHello);

  r = f.invoke("fetch", {{"url", f.dir / "missing.csv"}}, {{"data", out}});
  CHECK(r.error == "cannot read '" + (f.dir / "missing.csv") + "': No such file or directory");
  r = f.invoke("fetch", {{"url", "ftp://example.com/x"}}, {{"data", out}});
  CHECK(r.error == "bad arguments: 'url': unsupported URL scheme 'ftp' (use file://, http://, https:// or a path)");
  r = f.invoke("fetch", {{"url", src}}, {{"model", out}});
  CHECK(r.error == "bad arguments: the step declares no output 'data' (outputs = { data = \"FILE\" })");
  r = f.invoke("fetch", {{"url", src}, {"output", "model"}, {"retries", "many"}}, {{"model", out}});
  CHECK(r.error == "bad arguments: 'retries' must be an integer, not 'many'");
  r = f.invoke("fetch", {{"url", src}, {"output", "model"}, {"timeout", "soon"}}, {{"model", out}});
  CHECK(r.error == "bad arguments: 'timeout': invalid duration 'soon': expected a number and a unit (ms, s, m, h, d), "
                   "as in \"90s\", \"5m\" or \"1h30m\"");
  r = f.invoke("fetch", json::object(), {{"data", out}});
  CHECK(r.error == "bad arguments: 'url' is required");
}

TEST_CASE("storage: put and get through a folder") {
  PluginFixture f("storage");
  const std::string src = f.dir / "model.json", store = f.dir / "store";
  spit(src, kHello);
  auto r = f.invoke("put", {{"path", src}, {"target", store}, {"name", "models/v1.json"}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(slurp(store + "/models/v1.json") == kHello);
  CHECK(r.values == std::map<std::string, std::string>{
                        {"location", store + "/models/v1.json"}, {"sha256", kHelloSha}, {"bytes", "12"}, {"attempts", "1"}});
  CHECK(list_dir(store + "/models") == std::vector<std::string>{"v1.json"});

  r = f.invoke("put", {{"path", src}, {"target", "file://" + store}});  // default name: the file's own
  CHECK(r.ok);
  CHECK(slurp(store + "/model.json") == kHello);

  const std::string out = f.dir / "back.json";
  r = f.invoke("get", {{"target", store}, {"name", "models/v1.json"}, {"sha256", kHelloSha}}, {{"data", out}});
  CHECK(r.ok);
  CHECK(slurp(out) == kHello);
  CHECK(r.values.at("location") == store + "/models/v1.json");

  r = f.invoke("put", {{"path", src}, {"target", store}, {"name", "../escape"}});
  CHECK(r.error == "bad arguments: 'name' must be a relative path without '.' or '..' parts, not '../escape'");
  r = f.invoke("get", {{"target", store}, {"name", "/etc/passwd"}}, {{"data", out}});
  CHECK(r.error == "bad arguments: 'name' must be a relative path without '.' or '..' parts, not '/etc/passwd'");
}

TEST_CASE("storage: put and get over HTTP") {
  std::mutex mu;
  std::map<std::string, std::string> objects;
  std::atomic<int> put_failures{1};
  TestServer http;
  http.server.Put(R"(/bucket/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer s3cret") {
      res.status = 401;
      return;
    }
    if (put_failures-- > 0) {
      res.status = 502;
      return;
    }
    std::lock_guard lock(mu);
    objects[req.matches[1]] = req.body;
    res.status = 201;
  });
  http.server.Get(R"(/bucket/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    auto it = objects.find(req.matches[1]);
    if (it == objects.end()) {
      res.status = 404;
      return;
    }
    res.set_content(it->second, "application/octet-stream");
  });
  http.start();
  PluginFixture f("storage");
  const std::string src = f.dir / "model.json";
  spit(src, kHello);
  const json auth = {{"Authorization", "Bearer s3cret"}};

  auto r = f.invoke("put", {{"path", src}, {"target", http.base + "/bucket/"}, {"name", "runs/m 1.json"},
                            {"headers", auth}, {"backoff", "1ms"}});
  INFO(r.error);
  REQUIRE(r.ok);
  CHECK(r.values.at("location") == http.base + "/bucket/runs/m%201.json");
  CHECK(r.values.at("attempts") == "2");  // one 502, then stored
  CHECK(objects.at("runs/m 1.json") == kHello);

  const std::string out = f.dir / "back.json";
  r = f.invoke("get", {{"target", http.base + "/bucket"}, {"name", "runs/m 1.json"}, {"sha256", kHelloSha}},
               {{"data", out}});
  CHECK(r.ok);
  CHECK(slurp(out) == kHello);

  r = f.invoke("put", {{"path", src}, {"target", http.base + "/bucket"}, {"backoff", "1ms"}});
  CHECK(r.error == "PUT " + http.base + "/bucket/model.json: HTTP 401");
}
