// End-to-end: an attempt's log file is created at its first byte of output
// (docs/running.md, "Logs"): a silent attempt has none, and every reader of
// logs shows it as empty output.
#include <catch2/catch.hpp>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"
#include "e2e/store_helpers.h"

using namespace sluice::test;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string only_run_id(const TempDir& dir) {
  auto list = list_runs(dir);
  REQUIRE(list.size() == 1);
  return list[0]["id"];
}

}  // namespace

TEST_CASE("logs: a step that writes nothing has no log file and reads as empty everywhere") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "quiet"
[steps.quiet]
run = "echo 1 > out.txt"
[steps.talk]
run = "echo hello; echo oops >&2"
[steps.quiet_fail]
run = "exit 3"
needs = ["quiet", "talk"]
)");
  auto r = run_sluice({"run", "-j", "1", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 1);
  const std::string id = only_run_id(dir);
  const std::string runs = dir / (".sluice/runs/" + id);
  CHECK(read_file(runs + "/quiet/out.txt") == "1\n");
  CHECK_FALSE(fs::exists(runs + "/quiet/attempt-1.log"));
  CHECK_FALSE(fs::exists(runs + "/quiet_fail/attempt-1.log"));
  CHECK(read_file(runs + "/talk/attempt-1.log") == "hello\noops\n");
  // The summary says there was no output rather than naming a missing file.
  CHECK(r.out.find("\nFAILED quiet_fail: exit code 3\n  no output\n") != std::string::npos);

  // No digest is recorded for a log that does not exist.
  auto show = show_run(dir, id);
  CHECK(step_of(show, "quiet")["attempts"][0]["log_digest"] == "");
  CHECK(step_of(show, "quiet_fail")["attempts"][0]["log_digest"] == "");
  const std::string talk_digest = step_of(show, "talk")["attempts"][0]["log_digest"];
  CHECK(talk_digest.rfind("sha256:", 0) == 0);

  // `sluice logs`, plain, -f and --json: empty output, not an error.
  for (const char* step : {"quiet", "quiet_fail"}) {
    const std::string status = std::string(step) == "quiet" ? "succeeded" : "failed";
    auto logs = run_sluice({"logs", id, step}, dir.path());
    CHECK(logs.status == 0);
    CHECK(logs.out == "==> " + std::string(step) + " attempt 1 (" + status + ") <==\n");
    CHECK(logs.err.empty());
    auto follow = run_sluice({"logs", "-f", id, step}, dir.path());
    CHECK(follow.status == 0);
    CHECK(follow.out.empty());  // nothing was written: no header either
    auto as_json = json::parse(run_sluice({"logs", "--json", id, step}, dir.path()).out);
    CHECK(as_json["logs"][0]["log"] == "");
  }
  // Once the work dir is gone, the talkative step's log still comes from the store.
  fs::remove_all(runs);
  auto talk = run_sluice({"logs", id, "talk"}, dir.path());
  CHECK(talk.out == "==> talk attempt 1 (succeeded) <==\nhello\noops\n");
  auto quiet = run_sluice({"logs", id, "quiet"}, dir.path());
  CHECK(quiet.out == "==> quiet attempt 1 (succeeded) <==\n");
}

TEST_CASE("logs: a log that cannot be created at the first output fails the attempt and says why") {
  TempDir dir;
  // Each step puts a folder where its log would go, then writes.
  dir.write("wf.toml", R"(name = "blocked"
[steps.ok_exit]
run = "mkdir attempt-1.log; echo lost; echo ran > ran.txt"
[steps.bad_exit]
run = "mkdir attempt-1.log; echo lost; exit 4"
)");
  auto r = run_sluice({"run", "-k", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 1);
  const std::string id = only_run_id(dir);
  const std::string runs = dir / (".sluice/runs/" + id);
  CHECK(read_file(runs + "/ok_exit/ran.txt") == "ran\n");  // the process ran to its end
  auto show = show_run(dir, id);
  const json ok = step_of(show, "ok_exit"), bad = step_of(show, "bad_exit");
  CHECK(ok["status"] == "failed");
  CHECK(ok["error"] == "cannot open log file '" + runs + "/ok_exit/attempt-1.log': Is a directory");
  CHECK(bad["error"] == "exit code 4 (cannot open log file '" + runs + "/bad_exit/attempt-1.log': Is a directory)");
  // The folder in the log's place is not stored as the log.
  CHECK(ok["attempts"][0]["log_digest"] == "");
  CHECK(bad["attempts"][0]["log_digest"] == "");
}
