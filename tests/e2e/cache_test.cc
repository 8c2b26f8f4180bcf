// End-to-end: the step cache. What a change to one input, one step or the
// cache itself makes run again, and what `sluice why` says about it.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "e2e/harness.h"
#include "e2e/store_helpers.h"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

// Every step appends "<step>" (and notify the value it read) to $EXEC_LOG,
// which tells what really ran.
const char* const kWorkflow = R"(name = "cachewf"
[steps.prep_a]
run = "cp ${inputs.a} ${outputs.o}; echo rows=$(wc -l < ${inputs.a}) >> $SLUICE_VALUES; echo $SLUICE_STEP >> $EXEC_LOG"
inputs = { a = "data/a.csv" }
outputs = { o = "a.csv" }
[steps.prep_b]
run = "cp ${inputs.b} ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG"
inputs = { b = "data/b.csv" }
outputs = { o = "b.csv" }
[steps.join]
run = "cat ${inputs.x} ${inputs.y} > ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG"
inputs = { x = "${steps.prep_a.outputs.o}", y = "${steps.prep_b.outputs.o}" }
outputs = { o = "joined.csv" }
[steps.report]
run = "wc -c < ${inputs.j} > ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG"
inputs = { j = "${steps.join.outputs.o}" }
outputs = { o = "report.txt" }
[steps.side]
run = "cp ${inputs.b} ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG"
inputs = { b = "${steps.prep_b.outputs.o}" }
outputs = { o = "side.csv" }
[steps.notify]
run = "echo $SLUICE_STEP rows=${steps.prep_a.values.rows} >> $EXEC_LOG"
needs = ["report", "side"]
)";

struct Fixture {
  TempDir dir;
  Fixture() {
    dir.write("wf.toml", kWorkflow);
    dir.write("data/a.csv", "x,y\n1,2\n");
    dir.write("data/b.csv", "u,v\n7,8\n9,9\n");
  }
  // Runs the workflow; returns the new run's id and what it executed.
  std::pair<std::string, std::string> run(const std::vector<std::string>& extra = {}) {
    std::error_code ec;
    fs::remove(dir / "exec.log", ec);
    std::vector<std::string> args = {"run", "-j", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back("wf.toml");
    RunResult r = run_sluice(args, dir.path(), {"EXEC_LOG=" + (dir / "exec.log")});
    INFO(r.out << r.err);
    REQUIRE(r.status == 0);
    last_out = r.out;
    return {newest_run(dir), executed()};
  }
  // The steps that ran, sorted, one per line.
  std::string executed() const {
    std::istringstream in(dir.read("exec.log"));
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
  std::string why(const std::string& run, const std::string& step) {
    RunResult r = run_sluice({"why", run, step}, dir.path());
    INFO(r.err);
    CHECK(r.status == 0);
    return r.out;
  }
  std::string digest(const std::string& run, const std::string& node) {
    return step_of(show_run(dir, run), node)["outputs"]["o"]["digest"];
  }
  std::string last_out;
};

std::string short_digest(const std::string& d) { return d.substr(0, 7 + 12) + ".."; }

}  // namespace

TEST_CASE("cache: an unchanged re-run runs nothing cacheable, restores outputs and values, and records them") {
  Fixture f;
  auto [r1, ran1] = f.run();
  CHECK(ran1 == "join\nnotify rows=2\nprep_a\nprep_b\nreport\nside\n");
  CHECK(f.why(r1, "prep_a") == "prep_a: ran: no earlier execution\n");
  CHECK(f.why(r1, "notify") == "notify: ran: the step declares no outputs, so it is never cached\n");

  auto [r2, ran2] = f.run();
  CHECK(ran2 == "notify rows=2\n");  // the value of a cached step still reaches later steps
  CHECK(f.last_out.find("6 steps: 1 succeeded, 5 cached") != std::string::npos);
  auto show = show_run(f.dir, r2);
  CHECK(step_statuses(show) == std::map<std::string, std::string>{{"prep_a", "cached"}, {"prep_b", "cached"},
                                                                     {"join", "cached"},   {"report", "cached"},
                                                                     {"side", "cached"},   {"notify", "succeeded"}});
  // The cached steps' outputs and values are this run's too (lineage stays whole).
  for (const char* node : {"prep_a", "prep_b", "join", "report", "side"}) CHECK(f.digest(r2, node) == f.digest(r1, node));
  CHECK(step_of(show, "prep_a")["values"]["rows"] == "2");
  CHECK(f.why(r2, "join") == "join: cached: its cache key matches the result of step 'join' in run " + r1 + "\n");
  // Outputs are restored into a cached step's work dir, read-only, when a
  // step that runs depends on it (notify needs report); others stay in the
  // artifact store only.
  const std::string restored = f.dir / (".sluice/runs/" + r2 + "/report/report.txt");
  CHECK(read_file(restored) == "20\n");
  CHECK_FALSE(fs::exists(f.dir / (".sluice/runs/" + r2 + "/join")));
  struct stat st {};
  REQUIRE(::stat(restored.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0444);
  // `sluice artifacts ls RUN` lists them under the new run.
  RunResult ls = run_sluice({"artifacts", "ls", "--json", r2}, f.dir.path());
  CHECK(nlohmann::json::parse(ls.out)["artifacts"].size() == 5);
}

TEST_CASE("cache: one changed byte of an input re-runs exactly that step and its descendants") {
  Fixture f;
  auto [r1, ran1] = f.run();
  f.dir.write("data/a.csv", "x,y\n1,3\n");  // same size, one byte
  auto [r2, ran2] = f.run();
  CHECK(ran2 == "join\nnotify rows=2\nprep_a\nreport\n");
  auto show = show_run(f.dir, r2);
  CHECK(step_statuses(show)["prep_b"] == "cached");
  CHECK(step_statuses(show)["side"] == "cached");
  // prep_a copies its input, so its output's digest is its input's.
  CHECK(f.why(r2, "prep_a") == "prep_a: ran: changed since run " + r1 + "\n  input 'a' changed: " +
                                   short_digest(f.digest(r1, "prep_a")) + " -> " + short_digest(f.digest(r2, "prep_a")) +
                                   "\n");
  CHECK(f.why(r2, "join") == "join: ran: changed since run " + r1 + "\n  input 'x' changed: " +
                                 short_digest(f.digest(r1, "prep_a")) + " -> " + short_digest(f.digest(r2, "prep_a")) +
                                 "\n");
  CHECK(f.why(r2, "prep_b") == "prep_b: cached: its cache key matches the result of step 'prep_b' in run " + r1 + "\n");
  // report's input changed, its output did not (same size): what follows it
  // would be cached. Changing the byte back finds the first run's results.
  f.dir.write("data/a.csv", "x,y\n1,2\n");
  auto [r3, ran3] = f.run();
  CHECK(ran3 == "notify rows=2\n");
  CHECK(f.why(r3, "prep_a") == "prep_a: cached: its cache key matches the result of step 'prep_a' in run " + r1 + "\n");
}

TEST_CASE("cache: a change to one step re-runs that step only, and why names the command, a value, --no-cache") {
  Fixture f;
  auto [r1, ran1] = f.run();
  std::string wf = kWorkflow;
  const std::string from = "run = \"cp ${inputs.b} ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG\"\ninputs = { b = \"${steps";
  const std::string to = "run = \"cp ${inputs.b} ${outputs.o} && echo $SLUICE_STEP >> $EXEC_LOG\"\ninputs = { b = \"${steps";
  REQUIRE(wf.find(from) != std::string::npos);
  f.dir.write("wf.toml", wf.replace(wf.find(from), from.size(), to));
  auto [r2, ran2] = f.run();
  CHECK(ran2 == "notify rows=2\nside\n");
  CHECK(f.why(r2, "side") == "side: ran: changed since run " + r1 + "\n  command changed\n");

  // A value an upstream step reports is part of the key of a step that reads it.
  f.dir.write("data/a.csv", "x,y\n1,2\n3,4\n");
  f.dir.write("wf.toml", std::string(kWorkflow) + R"([steps.uses_value]
run = "echo ${steps.prep_a.values.rows} > ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG"
outputs = { o = "rows.txt" }
)");
  auto [r3, ran3] = f.run();
  f.dir.write("data/a.csv", "x,y\n1,2\n3,4\n5,6\n");
  auto [r4, ran4] = f.run();
  CHECK(ran4 == "join\nnotify rows=4\nprep_a\nreport\nuses_value\n");
  CHECK(f.why(r4, "uses_value") == "uses_value: ran: changed since run " + r3 + "\n  value 'prep_a.rows' changed: '3' -> '4'\n");

  auto [r5, ran5] = f.run({"--no-cache"});
  CHECK(ran5 == "join\nnotify rows=4\nprep_a\nprep_b\nreport\nside\nuses_value\n");
  CHECK(f.why(r5, "prep_b") == "prep_b: ran: --no-cache\n");
  // A --no-cache run refreshes the cache: the next run is served from it.
  auto [r6, ran6] = f.run();
  CHECK(ran6 == "notify rows=4\n");
  CHECK(f.why(r6, "prep_b") == "prep_b: cached: its cache key matches the result of step 'prep_b' in run " + r5 + "\n");
}

TEST_CASE("cache: cache = false runs every time - cache clear forgets precisely - a lost object is restored, or a miss") {
  Fixture f;
  std::string wf = std::string(kWorkflow) + "[steps.always]\nrun = \"echo 1 > ${outputs.o}; echo $SLUICE_STEP >> $EXEC_LOG\"\n"
                                            "outputs = { o = \"one.txt\" }\ncache = false\n";
  f.dir.write("wf.toml", wf);
  auto [r1, ran1] = f.run();
  auto [r2, ran2] = f.run();
  CHECK(ran2 == "always\nnotify rows=2\n");
  CHECK(f.why(r2, "always") == "always: ran: cache = false\n");

  RunResult clear = run_sluice({"cache", "clear", "cachewf.join"}, f.dir.path());
  CHECK(clear.status == 0);
  CHECK(clear.out == "removed 1 cache entry of step 'join' of workflow 'cachewf'\n");
  auto [r3, ran3] = f.run();
  CHECK(ran3 == "always\njoin\nnotify rows=2\n");  // join's output is the same bytes: report stays cached
  CHECK(f.why(r3, "join") == "join: ran: its key matches run " + r2 +
                                 ", but that result is no longer in the cache (cleared, or its outputs are gone from the "
                                 "artifact store)\n");

  // A small output's object removed from the artifact store comes back from
  // the bytes the database keeps (docs/store.md, "Small files"): a hit.
  const std::string report_object = object_path(f.dir, f.digest(r3, "report"));
  const std::string report_bytes = read_file(report_object);
  fs::remove(report_object);
  auto [r4, ran4] = f.run();
  CHECK(ran4 == "always\nnotify rows=2\n");
  CHECK(read_file(report_object) == report_bytes);
  // Without those bytes, an output object removed cannot be restored: a miss.
  exec_sql(f.dir, "UPDATE artifacts SET data = NULL");
  fs::remove(report_object);
  auto [r4b, ran4b] = f.run();
  CHECK(ran4b == "always\nnotify rows=2\nreport\n");

  CHECK(run_sluice({"cache", "clear", "other"}, f.dir.path()).out == "removed 0 cache entries of workflow 'other'\n");
  RunResult all = run_sluice({"cache", "clear"}, f.dir.path());
  CHECK(all.out == "removed 5 cache entries of every workflow\n");
  auto [r5, ran5] = f.run();
  CHECK(ran5 == "always\njoin\nnotify rows=2\nprep_a\nprep_b\nreport\nside\n");
  CHECK(run_sluice({"cache", "wipe"}, f.dir.path()).status == 2);
}

TEST_CASE("cache: a step that writes to its input fails and the stored artifact stays intact") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "rw"
[steps.make]
run = "echo original > ${outputs.o}"
outputs = { o = "data.txt" }
[steps.vandal]
run = "echo vandalised >> ${inputs.d}; echo ok > ${outputs.o}"
inputs = { d = "${steps.make.outputs.o}" }
outputs = { o = "out.txt" }
)");
  RunResult r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  auto show = show_run(dir, newest_run(dir));
  CHECK(step_of(show, "vandal")["status"] == "failed");
  if (::geteuid() == 0) {
    // Root ignores the read-only mode: inputs are copies, and the change is caught.
    CHECK(step_of(show, "vandal")["error"] ==
          "input 'd' was changed by the step: inputs are read-only, write to an output instead");
  } else {
    CHECK(r.out.find("Permission denied") != std::string::npos);
  }
  std::string digest = step_of(show, "make")["outputs"]["o"]["digest"];
  CHECK(read_file(object_path(dir, digest)) == "original\n");
  CHECK(read_file(dir / (".sluice/runs/" + std::string(show["id"]) + "/make/data.txt")) == "original\n");
  CHECK(run_sluice({"artifacts", "verify"}, dir.path()).status == 0);
}

namespace {

// The digest the store documents for the `stdlib` key part, computed here
// from the source tree: each stdlib/**/*.lua as "<path>\n<size>\n<bytes>", in
// path order.
std::string stdlib_digest_of_sources() {
  const fs::path root = fs::path(SLUICE_SOURCE_DIR) / "stdlib";
  std::vector<std::string> paths;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().extension() == ".lua") paths.push_back(e.path().lexically_relative(root).string());
  std::sort(paths.begin(), paths.end());
  std::string all;
  for (const std::string& p : paths) {
    std::string bytes = read_file(root / p);
    all += p + "\n" + std::to_string(bytes.size()) + "\n" + bytes;
  }
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(all.data(), all.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) out += {hex[md[i] >> 4], hex[md[i] & 15]};
  return out;
}

}  // namespace

TEST_CASE("cache: a Lua step's key holds the Lua standard library it can require") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "luakey"
[steps.score]
lua_inline = '''
local metrics = require("sluice.metrics")
sluice.fs.write(ctx.outputs.o, type(metrics))
return { ok = true }
'''
outputs = { o = "o.txt" }
)");
  RunResult r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  RunResult why = run_sluice({"why", "--json", newest_run(dir), "score"}, dir.path());
  REQUIRE(why.status == 0);
  const nlohmann::json doc = nlohmann::json::parse(why.out);
  const nlohmann::json& parts = doc["steps"][0]["key_parts"];
  REQUIRE(parts.contains("stdlib"));
  CHECK(parts["stdlib"] == stdlib_digest_of_sources());
  CHECK(parts.contains("script"));
  // The same binary, the same library: the second run is a cache hit.
  r = run_sluice({"run", "wf.toml"}, dir.path());
  CHECK(r.out.find("1 steps: 1 cached") != std::string::npos);
}
