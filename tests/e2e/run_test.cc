// End-to-end: `sluice run` with real processes in a temp dir.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "e2e/harness.h"

using namespace sluice::test;
namespace fs = std::filesystem;

namespace {

// The work dir of `node` in the only run under `dir`/.sluice/runs.
std::string workdir(const TempDir& dir, const std::string& node) {
  std::vector<fs::path> runs;
  for (const auto& e : fs::directory_iterator(dir / ".sluice/runs")) runs.push_back(e.path());
  REQUIRE(runs.size() == 1);
  return (runs[0] / node).string();
}

std::map<std::string, std::string> values_of(const TempDir& dir, const std::string& node) {
  std::map<std::string, std::string> out;
  std::istringstream in(read_file(workdir(dir, node) + "/values"));
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

long long num(const std::string& s) { return std::stoll(s); }

}  // namespace

TEST_CASE("run: steps overlap with -j2, shown by their own recorded times") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "par"
[steps.a]
run = "echo start=$(date +%s%N) >> $SLUICE_VALUES; sleep 0.5; echo end=$(date +%s%N) >> $SLUICE_VALUES"
[steps.b]
run = "echo start=$(date +%s%N) >> $SLUICE_VALUES; sleep 0.5; echo end=$(date +%s%N) >> $SLUICE_VALUES"
[steps.c]
run = "echo start=$(date +%s%N) >> $SLUICE_VALUES"
needs = ["a", "b"]
)");
  auto r = run_sluice({"run", "-j", "2", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  auto a = values_of(dir, "a"), b = values_of(dir, "b"), c = values_of(dir, "c");
  // a and b ran at the same time; c started after both ended.
  CHECK(num(a["start"]) < num(b["end"]));
  CHECK(num(b["start"]) < num(a["end"]));
  CHECK(num(c["start"]) >= std::max(num(a["end"]), num(b["end"])));
  CHECK(r.out.find("3 steps: 3 succeeded") != std::string::npos);

  // With -j1 they do not overlap.
  TempDir dir1;
  dir1.write("wf.toml", dir.read("wf.toml"));
  r = run_sluice({"run", "-j", "1", "wf.toml"}, dir1.path());
  REQUIRE(r.status == 0);
  a = values_of(dir1, "a");
  b = values_of(dir1, "b");
  CHECK((num(a["end"]) <= num(b["start"]) || num(b["end"]) <= num(a["start"])));
}

TEST_CASE("run: retries happen with growing delays, each attempt with its own log") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "retry"
[params]
stamps = "x"
[steps.flaky]
run = "date +%s%N >> ${params.stamps}; echo attempt $SLUICE_ATTEMPT; test $SLUICE_ATTEMPT -ge 4"
retries = 3
retry_backoff = "200ms"
)");
  auto r = run_sluice({"run", "-p", "stamps=" + (dir / "stamps"), "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  std::istringstream in(dir.read("stamps"));
  std::vector<long long> t;
  for (std::string l; std::getline(in, l);) t.push_back(std::stoll(l));
  REQUIRE(t.size() == 4);
  long long d1 = t[1] - t[0], d2 = t[2] - t[1], d3 = t[3] - t[2];
  // Nominal 200, 400, 800 ms, each jittered down by at most half.
  CHECK(d1 >= 100'000'000);
  CHECK(d2 >= 200'000'000);
  CHECK(d3 >= 400'000'000);
  CHECK(d3 > d1);
  for (int i = 1; i <= 4; ++i)
    CHECK(read_file(workdir(dir, "flaky") + "/attempt-" + std::to_string(i) + ".log") == "attempt " + std::to_string(i) + "\n");
  CHECK(r.out.find("retrying flaky in") != std::string::npos);
}

TEST_CASE("run: a timed-out step leaves no process behind") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "slow"
[steps.hang]
run = "sleep 1000 & echo $! > pids; sleep 1000 & echo $! >> pids; wait"
timeout = "1s"
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  CHECK(r.out.find("FAILED hang: timed out after 1s") != std::string::npos);
  std::istringstream in(read_file(workdir(dir, "hang") + "/pids"));
  int n = 0;
  for (std::string l; std::getline(in, l); ++n) CHECK_FALSE(process_alive(std::stoi(l)));
  CHECK(n == 2);
}

TEST_CASE("run: fail-fast stops the run - --keep-going runs every step whose needs succeeded") {
  const char* wf = R"(name = "ff"
[steps.bad]
run = "echo broken >&2; exit 3"
[steps.after_bad]
run = "true"
needs = ["bad"]
[steps.slow]
run = "sleep 1; touch done"
)";
  TempDir dir;
  dir.write("wf.toml", wf);
  auto r = run_sluice({"run", "-j", "2", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  // slow was running when bad failed: it was terminated, not left to finish.
  CHECK_FALSE(fs::exists(workdir(dir, "slow") + "/done"));
  CHECK(r.out.find("FAILED bad: exit code 3") != std::string::npos);
  CHECK(r.out.find("  | broken") != std::string::npos);  // the log's last lines in the summary
  CHECK(r.out.find("3 steps: 1 skipped, 1 cancelled, 1 failed") != std::string::npos);

  TempDir dir2;
  dir2.write("wf.toml", wf);
  r = run_sluice({"run", "-j", "2", "--keep-going", "wf.toml"}, dir2.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  CHECK(fs::exists(workdir(dir2, "slow") + "/done"));
  CHECK(r.out.find("3 steps: 1 succeeded, 1 skipped, 1 failed") != std::string::npos);
}

TEST_CASE("run: SIGINT terminates running steps, leaves no orphans and exits 130") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "int"
[steps.a]
run = "sleep 1000 & echo $! > pid; touch started; wait"
[steps.b]
run = "true"
needs = ["a"]
)");
  int pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  REQUIRE(wait_for_file(dir / ".sluice/runs", 10000));
  std::string started;
  for (int i = 0; i < 1000 && started.empty(); ++i) {
    for (const auto& e : fs::directory_iterator(dir / ".sluice/runs"))
      if (fs::exists(e.path() / "a/started")) started = (e.path() / "a").string();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE_FALSE(started.empty());
  kill(pid, SIGINT);
  int status = wait_sluice(pid, 30);
  INFO(read_file(dir / "out") << read_file(dir / "err"));
  CHECK(status == 130);
  int child = std::stoi(read_file(started + "/pid"));
  CHECK_FALSE(process_alive(child));
  CHECK(read_file(dir / "out").find("2 steps: 1 skipped, 1 cancelled") != std::string::npos);
}

// Look-ahead (engine/executor.cc): while every slot is busy, the next ready
// steps are prepared, or finished from the cache, before a slot frees.
TEST_CASE("run: a step prepared while every slot was busy starts only when one frees, as its first attempt") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "ahead"
[steps.a]
run = "sleep 0.3; echo end=$(date +%s%N) >> $SLUICE_VALUES"
[steps.b]
run = "echo start=$(date +%s%N) >> $SLUICE_VALUES; env | grep -E '^SLUICE_(ATTEMPT|WORKDIR)=' | sort > env.txt"
)");
  auto r = run_sluice({"run", "-j", "1", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(num(values_of(dir, "b")["start"]) >= num(values_of(dir, "a")["end"]));
  CHECK(read_file(workdir(dir, "b") + "/env.txt") == "SLUICE_ATTEMPT=1\nSLUICE_WORKDIR=" + workdir(dir, "b") + "\n");
}

TEST_CASE("run: fail-fast skips a step prepared ahead and leaves no work dir or cache key for it") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "ahead"
[steps.bad]
run = "sleep 0.3; exit 3"
[steps.later]
run = "echo x > o.txt"
outputs = { o = "o.txt" }
)");
  auto r = run_sluice({"run", "-j", "1", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  CHECK(r.out.find("2 steps: 1 skipped, 1 failed") != std::string::npos);
  CHECK(fs::exists(workdir(dir, "bad")));
  CHECK_FALSE(fs::exists(workdir(dir, "later")));
  const std::string run_id = fs::path(workdir(dir, "later")).parent_path().filename().string();
  auto show = run_sluice({"show", "--json", run_id}, dir.path());
  REQUIRE(show.status == 0);
  auto later = show.out.find("\"node\": \"later\"");
  REQUIRE(later != std::string::npos);
  const std::string step = show.out.substr(show.out.rfind("\"attempts\"", later), later - show.out.rfind("\"attempts\"", later));
  CHECK(step.find("\"cache_key\": \"\"") != std::string::npos);
  CHECK(step.find("\"cache\": \"\"") != std::string::npos);
}

TEST_CASE("run: a cached step finishes while every slot is busy, without waiting for one") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "ahead"
[params]
p = 1
[steps.a]
run = "sleep 0.3; echo ${params.p} > o.txt"
outputs = { o = "o.txt" }
[steps.b]
run = "echo b > o.txt"
outputs = { o = "o.txt" }
)");
  REQUIRE(run_sluice({"run", "-j", "1", "wf.toml"}, dir.path()).status == 0);
  auto r = run_sluice({"run", "-j", "1", "-p", "p=2", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  // a holds the only slot for 0.3 s; b is restored meanwhile.
  const size_t cached = r.out.find("[1/2] cached b\n"), ran = r.out.find("[2/2] succeeded a (");
  CHECK(cached != std::string::npos);
  CHECK(ran != std::string::npos);
  CHECK(cached < ran);
  CHECK(r.out.find("2 steps: 1 succeeded, 1 cached") != std::string::npos);
}

TEST_CASE("run: a step that cannot be prepared ahead fails when it starts, with its own message") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "ahead"
[steps.u]
run = "echo k=1 >> $SLUICE_VALUES"
[steps.v1]
run = "sleep 0.3"
needs = ["u"]
[steps.v2]
run = "echo ${steps.u.values.missing}"
needs = ["u"]
)");
  auto r = run_sluice({"run", "-j", "1", "--keep-going", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  CHECK(r.out.find("[2/3] succeeded v1 (") != std::string::npos);
  CHECK(r.out.find("[3/3] FAILED v2: step 'u' set no value 'missing' (${steps.u.values.missing}); it set: k\n") !=
        std::string::npos);
  CHECK(r.out.find("3 steps: 2 succeeded, 1 failed") != std::string::npos);
}

TEST_CASE("run: a declared output that was not created fails its step, naming the file") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "out"
[steps.make]
run = "echo hi > other.txt"
outputs = { model = "model.json" }
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  CHECK(r.status == 1);
  CHECK(r.out.find("FAILED make: missing output 'model': model.json was not created") != std::string::npos);
}

TEST_CASE("run: a retry starts without the outputs of the attempt before it") {
  TempDir dir;
  // Attempt 1 writes both outputs, then fails. Attempt 2 writes only `b` and
  // succeeds: the stale `a` must not count as created.
  dir.write("wf.toml", R"(name = "stale"
[steps.make]
run = "if [ $SLUICE_ATTEMPT = 1 ]; then echo old > a.txt; mkdir -p sub; echo old > sub/b.txt; exit 1; fi; echo new > sub/b.txt"
outputs = { a = "a.txt", b = "sub/b.txt" }
retries = 1
retry_backoff = "10ms"
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 1);
  CHECK(r.out.find("FAILED make: missing output 'a': a.txt was not created") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(workdir(dir, "make") + "/a.txt"));
  CHECK(read_file(workdir(dir, "make") + "/sub/b.txt") == "new\n");
}

TEST_CASE("run: outputs, inputs and values flow into later steps") {
  TempDir dir;
  dir.write("data/raw.csv", "a,b\n1,2\n");
  dir.write("wf.toml", R"(name = "flow"
[steps.prep]
run = "cp ${inputs.raw} ${outputs.clean}; echo rows=$(wc -l < ${inputs.raw}) >> $SLUICE_VALUES"
inputs = { raw = "data/raw.csv" }
outputs = { clean = "clean.csv" }
[steps.use]
run = "echo got ${steps.prep.values.rows} rows from $(cat ${inputs.clean} | head -1) > ${outputs.report}"
inputs = { clean = "${steps.prep.outputs.clean}" }
outputs = { report = "report.txt" }
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(read_file(workdir(dir, "use") + "/report.txt") == "got 2 rows from a,b\n");
}

TEST_CASE("run: a param holding shell syntax is passed literally") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "inject"
[params]
msg = "hello"
[steps.echo]
run = "printf '%s\n' ${params.msg} > out.txt; printf '%s\n' \"${params.msg}\" >> out.txt; printf '%s\n' '${params.msg}' >> out.txt"
)");
  const std::string evil = "$(touch x); rm -rf y `touch z` 'q\" \\";
  auto r = run_sluice({"run", "-p", "msg=" + evil, "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(read_file(workdir(dir, "echo") + "/out.txt") == evil + "\n" + evil + "\n" + evil + "\n");
  CHECK_FALSE(fs::exists(workdir(dir, "echo") + "/x"));
  CHECK_FALSE(fs::exists(workdir(dir, "echo") + "/z"));
}

TEST_CASE("run: environment carries the workflow's and step's env, run facts and params") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "env"
[params]
epochs = 3
[env]
GLOBAL = "g-${params.epochs}"
[steps.show]
run = "env | grep -E '^(GLOBAL|LOCAL|SLUICE_[A-Z_]+)=' | sort > env.txt"
env = { LOCAL = "l" }
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  REQUIRE(r.status == 0);
  std::string env = read_file(workdir(dir, "show") + "/env.txt");
  CHECK(env.find("GLOBAL=g-3\n") != std::string::npos);
  CHECK(env.find("LOCAL=l\n") != std::string::npos);
  CHECK(env.find("SLUICE_ATTEMPT=1\n") != std::string::npos);
  CHECK(env.find("SLUICE_PARAM_EPOCHS=3\n") != std::string::npos);
  CHECK(env.find("SLUICE_STEP=show\n") != std::string::npos);
  CHECK(env.find("SLUICE_WORKDIR=" + workdir(dir, "show") + "\n") != std::string::npos);
}

TEST_CASE("run: when skips a step and what depends only on it - exit 0") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "when"
[params]
min = 0.9
[steps.score]
run = "echo auc=0.8 >> $SLUICE_VALUES"
[steps.ship]
run = "touch shipped"
when = "steps.score.values.auc >= params.min"
[steps.announce]
run = "true"
needs = ["ship"]
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("3 steps: 1 succeeded, 2 skipped") != std::string::npos);
  r = run_sluice({"run", "-p", "min=0.5", "wf.toml"}, dir.path());
  CHECK(r.status == 0);
  CHECK(r.out.find("3 steps: 3 succeeded") != std::string::npos);
}

TEST_CASE("run: a step asking for more cpus than the machine has is refused before anything runs") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "huge"
[steps.big]
run = "touch ran"
resources = { cpus = 4096 }
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err.rfind("sluice run: error: step 'big' asks for 4096 cpus but this machine has ", 0) == 0);
  CHECK_FALSE(fs::exists(dir / ".sluice"));
}

TEST_CASE("run: --dry-run prints the order with params and matrix substituted - --only selects ancestors") {
  TempDir dir;
  dir.write("wf.toml", R"(name = "dry"
[params]
n = 5
[steps.a]
run = "echo ${params.n}"
[steps.b]
run = "echo ${matrix.k} ${run.id}"
matrix = { k = [1, 2] }
needs = ["a"]
[steps.c]
run = "echo c"
)");
  auto r = run_sluice({"run", "--dry-run", "--only", "b", "wf.toml"}, dir.path());
  REQUIRE(r.status == 0);
  CHECK(r.out.rfind("a: echo 5\nb[k=1]: echo 1 ", 0) == 0);
  CHECK(r.out.find("c:") == std::string::npos);
  CHECK_FALSE(fs::exists(dir / ".sluice"));
  r = run_sluice({"run", "--only", "nope", "wf.toml"}, dir.path());
  CHECK(r.status == 2);
  CHECK(r.err == "sluice run: error: unknown step 'nope'\n");
}
