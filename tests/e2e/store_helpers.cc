#include "e2e/store_helpers.h"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <chrono>
#include <thread>

namespace sluice::test {

nlohmann::json list_runs(const TempDir& dir) {
  RunResult r = run_sluice({"runs", "--json", "--limit", "1000"}, dir.path());
  INFO(r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out)["runs"];
}

std::string newest_run(const TempDir& dir) {
  nlohmann::json runs = list_runs(dir);
  REQUIRE_FALSE(runs.empty());
  return runs[0]["id"];
}

std::string wait_for_run(const TempDir& dir) {
  for (int i = 0; i < 3000; ++i) {
    RunResult r = run_sluice({"runs", "--json"}, dir.path());
    if (r.status == 0) {
      nlohmann::json runs = nlohmann::json::parse(r.out)["runs"];
      if (!runs.empty()) return runs[0]["id"];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL("no run was recorded in " << dir.path());
  return {};
}

nlohmann::json show_run(const TempDir& dir, const std::string& run) {
  RunResult r = run_sluice({"show", "--json", run}, dir.path());
  INFO(r.err);
  REQUIRE(r.status == 0);
  return nlohmann::json::parse(r.out);
}

std::map<std::string, std::string> step_statuses(const nlohmann::json& show) {
  std::map<std::string, std::string> out;
  for (const auto& s : show["steps"]) out[s["node"]] = s["status"];
  return out;
}

nlohmann::json step_of(const nlohmann::json& show, const std::string& node) {
  for (const auto& s : show["steps"])
    if (s["node"] == node) return s;
  FAIL("no step " << node << " in run " << show["id"]);
  return {};
}

std::string object_path(const TempDir& dir, const std::string& digest) {
  std::string hex = digest.substr(7, 64);
  return dir / (".sluice/cas/sha256/" + hex.substr(0, 2) + "/" + hex.substr(2));
}

void exec_sql(const TempDir& dir, const std::string& sql) {
  const std::string path = dir / ".sluice/sluice.db";
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  INFO(sql << ": " << message);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace sluice::test
