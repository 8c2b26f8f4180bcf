// End-to-end: `${secrets.X}` values never reach the store, a stored log or the
// terminal. A shell step echoes its secret and reports it as a value, a Lua
// step logs it, returns it and fails with it, a plugin action (registry.promote)
// is given it in `with` and fails naming it: everything recorded reads ***.
#include <catch2/catch.hpp>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

const std::string kSecret = "s3cr3t-Tok3n";

bool holds_secret(const std::string& text) { return text.find(kSecret) != std::string::npos; }

// The stored log of an attempt, read from the artifact store by its digest.
std::string stored_log(const TempDir& dir, const std::string& digest) {
  REQUIRE(digest.rfind("sha256:", 0) == 0);
  const std::string hex = digest.substr(7);
  return read_file(dir / (".sluice/cas/sha256/" + hex.substr(0, 2) + "/" + hex.substr(2)));
}

}  // namespace

TEST_CASE("secrets: a secret a step prints, logs, reports or fails with is recorded and shown as ***") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "secrets"
[steps.echo]
run = 'echo "token=${secrets.api_token}"; echo "env=$TOKEN"; echo "secret=$TOKEN" >> $SLUICE_VALUES; printf %s "$TOKEN" > tok.txt'
env = { TOKEN = "${secrets.api_token}" }
outputs = { tok = "tok.txt" }
[steps.lua]
lua_inline = '''
local t = sluice.fs.read(ctx.inputs.tok)
print("lua sees " .. t)
return { seen = t }
'''
inputs = { tok = "${steps.echo.outputs.tok}" }
[steps.lua_fail]
lua_inline = 'error("bad token " .. sluice.fs.read(ctx.inputs.tok))'
inputs = { tok = "${steps.echo.outputs.tok}" }
[steps.promote]
uses = "registry.promote"
with = { model = "${secrets.api_token}", alias = "production" }
)");
  auto run = run_sluice({"run", "wf.toml", "--keep-going", "-v"}, dir.path(), {"SLUICE_SECRET_API_TOKEN=" + kSecret});
  CHECK(run.status == 1);
  // -v streams every step's lines, redacted; failures print redacted errors.
  CHECK(!holds_secret(run.out + run.err));
  CHECK(run.out.find("[echo] token=***\n") != std::string::npos);
  CHECK(run.out.find("[lua] info: lua sees ***\n") != std::string::npos);
  CHECK(run.out.find("FAILED promote: no model '***'\n") != std::string::npos);
  CHECK(run.out.find("FAILED lua_fail: lua_inline:lua_fail:1: bad token ***\n") != std::string::npos);

  auto runs = run_sluice({"runs", "--json"}, dir.path());
  REQUIRE(runs.status == 0);
  const std::string id = nlohmann::json::parse(runs.out)["runs"][0]["id"].get<std::string>();
  auto show = run_sluice({"show", "--json", id}, dir.path());
  REQUIRE(show.status == 0);
  CHECK(!holds_secret(show.out));
  const nlohmann::json shown = nlohmann::json::parse(show.out);
  std::map<std::string, nlohmann::json> steps;
  for (const auto& s : shown["steps"]) steps[s["node"].get<std::string>()] = s;
  CHECK(steps["echo"]["values"] == nlohmann::json{{"secret", "***"}});
  CHECK(steps["lua"]["values"] == nlohmann::json{{"seen", "***"}});
  CHECK(steps["lua_fail"]["error"] == "lua_inline:lua_fail:1: bad token ***");
  CHECK(steps["promote"]["error"] == "no model '***'");

  // The stored logs, as the artifact store holds them.
  CHECK(stored_log(dir, steps["echo"]["attempts"][0]["log_digest"]) == "token=***\nenv=***\n");
  CHECK(stored_log(dir, steps["lua"]["attempts"][0]["log_digest"]) == "info: lua sees ***\n");
  const std::string failed_log = stored_log(dir, steps["lua_fail"]["attempts"][0]["log_digest"]);
  CHECK(failed_log.rfind("error: lua_inline:lua_fail:1: bad token ***\n", 0) == 0);
  CHECK(!holds_secret(failed_log));
  // And the log files left in the run's folder.
  CHECK(read_file(dir / (".sluice/runs/" + id + "/echo/attempt-1.log")) == "token=***\nenv=***\n");

  // Nothing in the store's database (or its write-ahead log) holds it.
  for (const char* f : {".sluice/sluice.db", ".sluice/sluice.db-wal"})
    if (dir.exists(f)) CHECK(!holds_secret(dir.read(f)));
}

TEST_CASE("secrets: without secrets in the environment, logs and values are recorded as written") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "plain"
[steps.echo]
run = 'echo "***token=abc"; echo "v=abc" >> $SLUICE_VALUES'
)");
  auto run = run_sluice({"run", "wf.toml"}, dir.path());
  REQUIRE(run.status == 0);
  auto runs = run_sluice({"runs", "--json"}, dir.path());
  const std::string id = nlohmann::json::parse(runs.out)["runs"][0]["id"].get<std::string>();
  auto show = nlohmann::json::parse(run_sluice({"show", "--json", id}, dir.path()).out);
  CHECK(show["steps"][0]["values"] == nlohmann::json{{"v", "abc"}});
  CHECK(stored_log(dir, show["steps"][0]["attempts"][0]["log_digest"]) == "***token=abc\n");
}
