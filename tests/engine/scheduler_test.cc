// The scheduler (Plan + Executor loop) driven by a fake runner: no processes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "dsl/parser.h"
#include "engine/executor.h"

using namespace sluice;
using namespace sluice::engine;

namespace {

// Finishes started "processes" in a random order; fails the ones whose
// command is "false" (exit 1).
class FakeRunner : public Runner {
 public:
  explicit FakeRunner(uint64_t seed) : rng_(seed) {}
  Id start(const ProcessSpec& spec) override {
    Id id = next_++;
    live_.emplace(id, spec.command);
    peak_ = std::max(peak_, live_.size());
    return id;
  }
  bool wait(Id& id, ProcessResult& result, std::chrono::milliseconds) override {
    if (live_.empty()) return false;
    auto it = live_.begin();
    std::advance(it, static_cast<long>(rng_() % live_.size()));
    id = it->first;
    result = ProcessResult{};
    result.outcome = ProcessResult::Outcome::Exited;
    result.exit_code = it->second == "false" ? 1 : 0;
    live_.erase(it);
    return true;
  }
  void cancel(Id id) override { cancelled_.insert(id); }
  void cancel_all() override {}
  size_t running() const override { return live_.size(); }
  void wake() override {}
  size_t peak() const { return peak_; }

 private:
  std::mt19937_64 rng_;
  Id next_ = 1;
  std::map<Id, std::string> live_;
  std::set<Id> cancelled_;
  size_t peak_ = 0;
};

struct Recorder : EventSink {
  std::vector<Event> events;
  void on_event(const Event& e) override { events.push_back(e); }
};

std::string random_workflow(std::mt19937& rng, int n) {
  std::string text = "name = \"random\"\n";
  for (int i = 0; i < n; ++i) {
    text += "[steps.s" + std::to_string(i) + "]\nrun = \"true\"\n";
    std::set<int> needs;
    if (i > 0)
      for (int k = static_cast<int>(rng() % 4); k > 0; --k) needs.insert(static_cast<int>(rng() % static_cast<unsigned>(i)));
    if (!needs.empty()) {
      text += "needs = [";
      for (int d : needs) text += "\"s" + std::to_string(d) + "\",";
      text += "]\n";
    }
  }
  return text;
}

RunOptions options(uint32_t jobs, const std::string& home) {
  RunOptions o;
  o.run_id = "test-run";
  o.home = home;
  o.jobs = jobs;
  o.cpus = 8;
  return o;
}

}  // namespace

TEST_CASE("scheduler: every step starts after all it needs finished, once, within -j") {
  auto home = std::filesystem::temp_directory_path() / "sluice-scheduler-test";
  std::mt19937 rng(42);
  for (uint32_t jobs : {1u, 2u, 8u}) {
    for (int trial = 0; trial < 10; ++trial) {
      DYNAMIC_SECTION("jobs " << jobs << " trial " << trial) {
        dsl::Diagnostics diags;
        dsl::WorkflowPtr wf = dsl::parse_workflow(random_workflow(rng, 30 + trial * 7), "random.toml", diags);
        REQUIRE(wf);
        FakeRunner runner(static_cast<uint64_t>(trial) * 31 + jobs);
        Recorder rec;
        Executor ex(*wf, runner, rec, options(jobs, home.string()));
        std::atomic<bool> stop{false};
        RunRecord run = ex.run(stop);

        std::vector<int> started(wf->dag.size(), 0), finished(wf->dag.size(), 0);
        for (const Event& e : rec.events) {
          if (e.kind == Event::Kind::StepStarted) {
            ++started[e.node];
            for (uint32_t p : wf->dag.predecessors(e.node)) CHECK(finished[p] == 1);
            CHECK(e.running <= jobs);
          } else if (e.kind == Event::Kind::StepFinished) {
            CHECK(e.state == NodeState::Succeeded);
            ++finished[e.node];
          }
        }
        for (uint32_t i = 0; i < wf->dag.size(); ++i) {
          CHECK(started[i] == 1);
          CHECK(finished[i] == 1);
          CHECK(run.nodes[i].state == NodeState::Succeeded);
        }
        CHECK(runner.peak() <= jobs);
        if (jobs > 1) CHECK(runner.peak() > 1);  // random DAGs this wide do overlap
      }
    }
  }
  std::filesystem::remove_all(home);
}

TEST_CASE("scheduler: fail-fast skips what was not started - keep-going runs the independent branch") {
  auto home = std::filesystem::temp_directory_path() / "sluice-scheduler-test2";
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::parse_workflow(R"(name = "w"
[steps.bad]
run = "false"
[steps.after_bad]
run = "true"
needs = ["bad"]
[steps.other]
run = "true"
needs = ["slow"]
[steps.slow]
run = "true"
)", "w.toml", diags);
  REQUIRE(wf);
  for (bool keep_going : {false, true}) {
    FakeRunner runner(1);
    Recorder rec;
    RunOptions o = options(1, home.string());
    o.keep_going = keep_going;
    Executor ex(*wf, runner, rec, o);
    std::atomic<bool> stop{false};
    RunRecord run = ex.run(stop);
    auto state = [&](const char* n) { return run.nodes[static_cast<size_t>(wf->dag.find(n))].state; };
    CHECK(state("bad") == NodeState::Failed);
    CHECK(state("after_bad") == NodeState::Skipped);
    CHECK(run.nodes[static_cast<size_t>(wf->dag.find("after_bad"))].skip ==
          SkipReason::UpstreamFailed);
    // With -j1, `bad` runs first; fail-fast then stops the rest.
    CHECK(state("slow") == (keep_going ? NodeState::Succeeded : NodeState::Skipped));
    CHECK(state("other") == (keep_going ? NodeState::Succeeded : NodeState::Skipped));
  }
  std::filesystem::remove_all(home);
}

TEST_CASE("scheduler: continue_on_error lets dependents run - a when-skip cascades only to steps that need nothing else") {
  auto home = std::filesystem::temp_directory_path() / "sluice-scheduler-test3";
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::parse_workflow(R"(name = "w"
[params]
go = false
[steps.flaky]
run = "false"
continue_on_error = true
[steps.after_flaky]
run = "true"
needs = ["flaky"]
[steps.gated]
run = "true"
when = "params.go"
[steps.only_gated]
run = "true"
needs = ["gated"]
[steps.mixed]
run = "true"
needs = ["gated", "after_flaky"]
)", "w.toml", diags);
  INFO(diags.format_all());
  REQUIRE(wf);
  FakeRunner runner(3);
  Recorder rec;
  RunOptions o = options(2, home.string());
  o.params = dsl::default_params(*wf);
  Executor ex(*wf, runner, rec, o);
  std::atomic<bool> stop{false};
  RunRecord run = ex.run(stop);
  auto node = [&](const char* n) { return run.nodes[static_cast<size_t>(wf->dag.find(n))]; };
  CHECK(node("flaky").state == NodeState::Failed);
  CHECK(node("after_flaky").state == NodeState::Succeeded);
  CHECK(node("gated").state == NodeState::Skipped);
  CHECK(node("gated").skip == SkipReason::When);
  CHECK(node("only_gated").state == NodeState::Skipped);
  CHECK(node("only_gated").skip == SkipReason::UpstreamSkipped);
  CHECK(node("mixed").state == NodeState::Succeeded);
  std::filesystem::remove_all(home);
}

TEST_CASE("plan: retries back off exponentially with jitter, capped at five minutes") {
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::parse_workflow(R"(name = "w"
[steps.a]
run = "false"
retries = 12
retry_backoff = "1s"
)", "w.toml", diags);
  REQUIRE(wf);
  Plan plan(*wf, {}, PlanOptions{false, 1, 1, 0});
  auto now = Clock::now();
  std::vector<double> delays;
  for (int attempt = 1; attempt <= 12; ++attempt) {
    auto n = plan.next_startable();
    REQUIRE(n);
    plan.started(*n);
    auto d = plan.failed(*n, now, 0.0);  // jitter 0 -> half the nominal delay
    REQUIRE(d);
    delays.push_back(std::chrono::duration<double>(*d).count());
    CHECK_FALSE(plan.next_startable());
    plan.wake_retries(now + *d);
  }
  CHECK(delays[0] == Approx(0.5));
  CHECK(delays[1] == Approx(1.0));
  CHECK(delays[2] == Approx(2.0));
  CHECK(delays[9] == Approx(256.0));
  CHECK(delays[10] == Approx(300.0));  // 512 capped
  auto n = plan.next_startable();
  REQUIRE(n);
  plan.started(*n);
  CHECK_FALSE(plan.failed(*n, now, 0.5));  // 13th attempt: no retries left
  CHECK(plan.state(*n) == NodeState::Failed);
  CHECK(plan.done());
}

TEST_CASE("plan: a 2-cpu step never runs beside another on a 2-core machine") {
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::parse_workflow(R"(name = "w"
[steps.big]
run = "true"
resources = { cpus = 2 }
[steps.small1]
run = "true"
[steps.small2]
run = "true"
)", "w.toml", diags);
  REQUIRE(wf);
  Plan plan(*wf, {}, PlanOptions{false, 8, 2, 0});
  auto first = plan.next_startable();
  REQUIRE(first);
  CHECK(wf->dag.node(*first).name == "big");
  plan.started(*first);
  CHECK_FALSE(plan.next_startable());  // no slot left
  plan.succeeded(*first);
  auto a = plan.next_startable();
  REQUIRE(a);
  plan.started(*a);
  auto b = plan.next_startable();
  REQUIRE(b);  // two 1-cpu steps fit together
  plan.started(*b);
  CHECK(plan.running() == 2);
}

TEST_CASE("plan: resume restores finished nodes and continues attempts without charging interrupted ones") {
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::parse_workflow(R"(name = "w"
[steps.a]
run = "true"
[steps.b]
run = "false"
needs = ["a"]
retries = 1
[steps.c]
run = "true"
needs = ["b"]
)", "w.toml", diags);
  REQUIRE(wf);
  const uint32_t a = wf->dag.instances(0)[0], b = wf->dag.instances(1)[0], c = wf->dag.instances(2)[0];
  SECTION("a restored as succeeded releases b, whose attempts continue") {
    Plan plan(*wf, {}, PlanOptions{false, 2, 2, 0});
    plan.resume_attempts(b, 3, 2);  // 3 recorded, the engine's death cut 2 short
    plan.restore(a, NodeState::Succeeded, SkipReason::None);
    CHECK(plan.take_finished() == std::vector<uint32_t>{a});
    auto n = plan.next_startable();
    REQUIRE(n == b);
    plan.started(b);
    CHECK(plan.attempts(b) == 4);  // numbering goes on
    // 4 attempts, 2 of them interrupted: 2 count against retries = 1, so
    // this failure is final.
    CHECK_FALSE(plan.failed(b, Clock::now(), 0.0));
    CHECK(plan.state(b) == NodeState::Failed);
    CHECK(plan.state(c) == NodeState::Skipped);
  }
  SECTION("an interrupted attempt leaves the retry it was owed") {
    Plan plan(*wf, {}, PlanOptions{false, 2, 2, 0});
    plan.resume_attempts(b, 1, 1);
    plan.restore(a, NodeState::Succeeded, SkipReason::None);
    plan.started(*plan.next_startable());
    CHECK(plan.attempts(b) == 2);
    CHECK(plan.failed(b, Clock::now(), 0.0));  // 1 counted attempt: retries = 1 allows one more
    CHECK(plan.state(b) == NodeState::Backoff);
  }
  SECTION("a restored failure stops the run, and restored skips stay as they were") {
    Plan plan(*wf, {}, PlanOptions{false, 2, 2, 0});
    plan.restore(a, NodeState::Failed, SkipReason::None);
    CHECK(plan.state(b) == NodeState::Skipped);
    CHECK(plan.skip_reason(b) == SkipReason::UpstreamFailed);  // as when a fails in a run
    CHECK(plan.state(c) == NodeState::Skipped);
    CHECK(plan.stopping());
    plan.restore(b, NodeState::Succeeded, SkipReason::None);  // already final: left as it is
    CHECK(plan.state(b) == NodeState::Skipped);
    CHECK(plan.done());
    CHECK(plan.failed_count() == 1);
  }
}

TEST_CASE("run ids from one process only grow, from many threads and within one millisecond") {
  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  for (auto& ids : made)
    threads.emplace_back([&ids] {
      for (int i = 0; i < 5000; ++i) ids.push_back(sluice::engine::new_run_id());
    });
  for (auto& t : threads) t.join();
  std::vector<std::string> all;
  for (const auto& ids : made) {
    for (size_t i = 1; i < ids.size(); ++i) REQUIRE(ids[i - 1] < ids[i]);  // each thread sees them grow
    all.insert(all.end(), ids.begin(), ids.end());
  }
  std::sort(all.begin(), all.end());
  CHECK(std::adjacent_find(all.begin(), all.end()) == all.end());  // and none twice
  // The format: "YYYYMMDD-HHMMSS.mmm-xxxxxxxx".
  const std::string& id = all.front();
  REQUIRE(id.size() == 28);
  CHECK(id[8] == '-');
  CHECK(id[15] == '.');
  CHECK(id[19] == '-');
  CHECK(id.find_first_not_of("0123456789abcdef", 20) == std::string::npos);
}
