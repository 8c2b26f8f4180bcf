#include "e2e/crash_helpers.h"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <regex>
#include <sstream>
#include <thread>

namespace sluice::test {

// Three chains of 8 steps that pass a growing file along, and a last step
// joining them: 25 steps, each taking ~0.1 s.
std::string chains_workflow() {
  std::string t = "name = \"chains\"\n";
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 8; ++i) {
      std::string name = "c" + std::to_string(c) + "_" + std::to_string(i);
      t += "[steps." + name + "]\n";
      if (i == 0) {
        t += "run = \"sleep 0.1; echo " + name + " > ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG; echo $SLUICE_STEP done\"\n";
      } else {
        t += "run = \"sleep 0.1; cat ${inputs.prev} > ${outputs.o}; echo " + name +
             " >> ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG; echo $SLUICE_STEP done\"\n";
        t += "inputs = { prev = \"${steps.c" + std::to_string(c) + "_" + std::to_string(i - 1) + ".outputs.o}\" }\n";
      }
      t += "outputs = { o = \"out.txt\" }\n";
    }
  }
  // The last step takes longer, so a kill after 24 steps lands while it runs.
  t += "[steps.all]\nrun = \"sleep 1; cat ${inputs.a} ${inputs.b} ${inputs.c} > ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG\"\n"
       "inputs = { a = \"${steps.c0_7.outputs.o}\", b = \"${steps.c1_7.outputs.o}\", c = \"${steps.c2_7.outputs.o}\" }\n"
       "outputs = { o = \"all.txt\" }\n";
  return t;
}

std::string expected_all() {
  std::string out;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 8; ++i) out += "c" + std::to_string(c) + "_" + std::to_string(i) + "\n";
  return out;
}

// Steps the terminal was told finished ("[3/25] succeeded c0_2 (104ms)").
std::set<std::string> reported_done(const std::string& out) {
  std::set<std::string> done;
  static const std::regex line(R"(\[\d+/\d+\] succeeded (\S+) )");
  for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it) done.insert((*it)[1]);
  return done;
}

std::set<std::string> lines(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.insert(l);
  return out;
}

std::vector<std::string> query(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  std::vector<std::string> rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string row;
    for (int i = 0; i < sqlite3_column_count(st); ++i) {
      const unsigned char* t = sqlite3_column_text(st, i);
      row += (i ? "|" : "") + std::string(t ? reinterpret_cast<const char*>(t) : "");
    }
    rows.push_back(row);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

void exec_sql(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  INFO(sql << ": " << (error ? error : ""));
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

void check_never_running_twice(const TempDir& dir, const std::string& run) {
  const std::string db = dir / ".sluice/sluice.db";
  for (const std::string& node : query(db, "SELECT node FROM steps WHERE run_id = '" + run + "'")) {
    INFO("step " << node);
    auto statuses = query(db,
                          "SELECT t.status FROM step_transitions t JOIN steps s ON s.id = t.step_id "
                          "WHERE s.run_id = '" + run + "' AND s.node = '" + node + "' ORDER BY t.at, t.id");
    for (size_t i = 1; i < statuses.size(); ++i) CHECK_FALSE((statuses[i] == "running" && statuses[i - 1] == "running"));
    auto attempts = query(db,
                          "SELECT a.started_at, coalesce(a.finished_at, ''), a.status FROM attempts a JOIN steps s "
                          "ON s.id = a.step_id WHERE s.run_id = '" + run + "' AND s.node = '" + node +
                              "' ORDER BY a.number");
    int64_t previous_end = 0;
    for (const std::string& a : attempts) {
      const size_t bar = a.find('|'), bar2 = a.rfind('|');
      CHECK(a.substr(bar2 + 1) != "running");
      REQUIRE(bar2 > bar + 1);  // finished
      CHECK(std::stoll(a.substr(0, bar)) >= previous_end);
      previous_end = std::stoll(a.substr(bar + 1, bar2 - bar - 1));
    }
  }
  CHECK(query(db, "PRAGMA quick_check") == std::vector<std::string>{"ok"});
}

std::string quick_check(const std::string& db_path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, nullptr) == SQLITE_OK);
  std::string out;
  while (sqlite3_step(st) == SQLITE_ROW) out += reinterpret_cast<const char*>(sqlite3_column_text(st, 0)) + std::string("\n");
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

Killed kill_run_after(const TempDir& dir, size_t kill_after, const std::vector<std::string>& env) {
  int pid = spawn_sluice({"run", "-j", "3", "wf.toml"}, dir.path(), dir / "out", dir / "err", env);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (reported_done(read_file(dir / "out")).size() < kill_after && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ::kill(pid, SIGKILL);
  CHECK(wait_sluice(pid) == 128 + SIGKILL);
  std::set<std::string> told = reported_done(read_file(dir / "out"));
  REQUIRE(told.size() >= kill_after);
  REQUIRE(told.size() < 25);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // steps it left running finish (orphans)
  return {pid, std::move(told)};
}

}  // namespace sluice::test
