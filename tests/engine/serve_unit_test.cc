// The decision parts of `sluice serve`, without HTTP: when a schedule fires
// (plan_fires), tokens, the rate limiter, webhook signatures, times, and the
// /metrics text over a real store.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "dsl/parser.h"
#include "engine/serve.h"
#include "engine/serve_auth.h"
#include "engine/serve_clock.h"
#include "engine/serve_cron.h"
#include "engine/serve_metrics.h"
#include "engine/serve_webhook.h"
#include "registry/sqlite_store.h"
#include "support/temp_dir.h"

using namespace sluice::engine;
namespace reg = sluice::registry;
namespace dsl = sluice::dsl;

namespace {

int64_t at(const char* iso) { return parse_time(iso).value(); }

struct Sched {
  dsl::Schedule schedule;
  dsl::FireTimes times;
};

Sched schedule(const std::string& cron, dsl::Catchup catchup, int64_t window_ms = 24 * 3'600'000,
               const std::string& zone = "UTC") {
  Sched s;
  s.schedule.cron = cron;
  s.schedule.timezone = zone;
  s.schedule.catchup = catchup;
  s.schedule.catchup_window = dsl::Duration(window_ms);
  dsl::CronExpr expr;
  std::string error;
  size_t offset = 0;
  REQUIRE(dsl::CronExpr::parse(cron, expr, error, offset));
  REQUIRE(dsl::FireTimes::make(expr, zone, dsl::DstGap::Shift, dsl::DstRepeat::First, s.times, error));
  return s;
}

}  // namespace

TEST_CASE("serve cron: a fire is due once its time has come, not before") {
  Sched s = schedule("0 * * * *", dsl::Catchup::Latest);
  FirePlan p = plan_fires(s.times, s.schedule, at("2026-03-01T10:30:00Z"), at("2026-03-01T10:59:59Z"));
  CHECK(p.fire.empty());
  CHECK(p.missed == 0);
  CHECK(p.newest_due == 0);
  CHECK(p.next == at("2026-03-01T11:00:00Z"));
  p = plan_fires(s.times, s.schedule, at("2026-03-01T10:30:00Z"), at("2026-03-01T11:00:00Z"));
  CHECK(p.fire == std::vector<int64_t>{at("2026-03-01T11:00:00Z")});
  CHECK(p.next == at("2026-03-01T12:00:00Z"));
  // With the watermark at the fire (it was recorded), nothing is due again.
  p = plan_fires(s.times, s.schedule, at("2026-03-01T11:00:00Z"), at("2026-03-01T11:00:30Z"));
  CHECK(p.fire.empty());
  // A watermark inside a second still counts the whole second as handled.
  p = plan_fires(s.times, s.schedule, at("2026-03-01T11:00:00.700Z"), at("2026-03-01T11:00:30Z"));
  CHECK(p.fire.empty());
}

TEST_CASE("serve cron: catchup none fires only what is at most a minute late") {
  Sched s = schedule("0 * * * *", dsl::Catchup::None);
  FirePlan p = plan_fires(s.times, s.schedule, at("2026-03-01T10:30:00Z"), at("2026-03-01T11:01:00Z"));
  CHECK(p.fire == std::vector<int64_t>{at("2026-03-01T11:00:00Z")});
  p = plan_fires(s.times, s.schedule, at("2026-03-01T10:30:00Z"), at("2026-03-01T11:01:01Z"));
  CHECK(p.fire.empty());
  CHECK(p.missed == 1);
  CHECK(p.newest_due == at("2026-03-01T11:00:00Z"));
  p = plan_fires(s.times, s.schedule, at("2026-03-01T10:30:00Z"), at("2026-03-01T15:00:30Z"));
  CHECK(p.fire == std::vector<int64_t>{at("2026-03-01T15:00:00Z")});
  CHECK(p.missed == 4);
}

TEST_CASE("serve cron: catchup latest and all look back over catchup_window") {
  Sched latest = schedule("0 * * * *", dsl::Catchup::Latest, 2 * 3'600'000);
  FirePlan p = plan_fires(latest.times, latest.schedule, at("2026-03-01T00:30:00Z"), at("2026-03-01T05:30:00Z"));
  CHECK(p.fire == std::vector<int64_t>{at("2026-03-01T05:00:00Z")});
  CHECK(p.missed == 4);
  p = plan_fires(latest.times, latest.schedule, at("2026-03-01T00:30:00Z"), at("2026-03-01T03:30:00Z"));
  CHECK(p.fire == std::vector<int64_t>{at("2026-03-01T03:00:00Z")});

  Sched all = schedule("0 * * * *", dsl::Catchup::All, 2 * 3'600'000);
  p = plan_fires(all.times, all.schedule, at("2026-03-01T00:30:00Z"), at("2026-03-01T05:30:00Z"));
  CHECK(p.fire == std::vector<int64_t>{at("2026-03-01T04:00:00Z"), at("2026-03-01T05:00:00Z")});
  CHECK(p.missed == 3);
  CHECK(p.newest_due == at("2026-03-01T05:00:00Z"));

  // A window so old that nothing is inside: everything missed, the watermark moves on.
  p = plan_fires(latest.times, latest.schedule, at("2026-03-01T00:30:00Z"), at("2026-03-02T00:30:00Z"));
  CHECK(p.fire == std::vector<int64_t>{at("2026-03-02T00:00:00Z")});
  CHECK(p.missed == 23);
}

TEST_CASE("serve cron: years of downtime with a minutely schedule are caught up in bounded steps") {
  Sched s = schedule("* * * * *", dsl::Catchup::None);
  FirePlan p = plan_fires(s.times, s.schedule, at("2020-01-01T00:00:00Z"), at("2026-01-01T00:00:00Z"));
  CHECK(p.fire.empty());
  CHECK(p.missed == 200'000);  // one step's worth
  CHECK(p.newest_due == at("2020-01-01T00:00:00Z") + 200'000LL * 60'000);
  CHECK_FALSE(p.next);
}

TEST_CASE("serve cron: DST days go through plan_fires as FireTimes computes them") {
  // Berlin, 29 March 2026: 02:30 does not exist and shifts to 03:00 CEST = 01:00Z.
  Sched s = schedule("30 2 * * *", dsl::Catchup::Latest, 24 * 3'600'000, "Europe/Berlin");
  FirePlan p = plan_fires(s.times, s.schedule, at("2026-03-28T12:00:00Z"), at("2026-03-29T01:00:05Z"));
  CHECK(p.fire == std::vector<int64_t>{at("2026-03-29T01:00:00Z")});
  CHECK(p.next == at("2026-03-30T00:30:00Z"));
}

TEST_CASE("serve auth: tokens are random, prefixed, and stored as their SHA-256") {
  NewToken a = make_token(), b = make_token();
  CHECK(a.secret != b.secret);
  CHECK(a.id != b.id);
  CHECK(a.secret.rfind("sluice_", 0) == 0);
  CHECK(a.secret.size() == 50);
  CHECK(a.id.rfind("tok_", 0) == 0);
  CHECK(a.id.size() == 12);
  CHECK(token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2
  CHECK(token_hash(a.secret) != token_hash(b.secret));
}

TEST_CASE("serve auth: scopes include the ones below, and a workflow-limited token stays in its workflow") {
  Caller read{"tok_r", reg::TokenScope::Read, ""};
  Caller trigger{"tok_t", reg::TokenScope::Trigger, "train"};
  Caller admin{"tok_a", reg::TokenScope::Admin, ""};
  CHECK_FALSE(authorize(read, reg::TokenScope::Read, "train"));
  CHECK(authorize(read, reg::TokenScope::Trigger, "train")->message == "token tok_r has scope 'read'; this needs 'trigger'");
  CHECK_FALSE(authorize(trigger, reg::TokenScope::Read, "train"));
  CHECK_FALSE(authorize(trigger, reg::TokenScope::Trigger, "train"));
  CHECK(authorize(trigger, reg::TokenScope::Trigger, "report")->status == 403);
  CHECK(authorize(trigger, reg::TokenScope::Read, "")->message ==
        "token tok_t is limited to workflow 'train'; this request spans every workflow");
  CHECK(authorize(trigger, reg::TokenScope::Admin, "train")->message == "token tok_t has scope 'trigger'; this needs 'admin'");
  CHECK_FALSE(authorize(admin, reg::TokenScope::Admin, ""));
}

TEST_CASE("serve auth: the rate limiter allows a burst, then one request per 1/rate seconds") {
  RateLimiter limit(2, 3);
  CHECK(limit.take("a", 100.0) == 0);
  CHECK(limit.take("a", 100.0) == 0);
  CHECK(limit.take("a", 100.0) == 0);
  CHECK(limit.take("a", 100.0) == Approx(0.5));
  CHECK(limit.take("b", 100.0) == 0);  // per key
  CHECK(limit.take("a", 100.5) == 0);  // refilled one
  CHECK(limit.take("a", 100.5) == Approx(0.5));
  CHECK(limit.take("a", 110.0) == 0);  // never more than the burst
  CHECK(limit.take("a", 110.0) == 0);
  CHECK(limit.take("a", 110.0) == 0);
  CHECK(limit.take("a", 110.0) > 0);
  RateLimiter off(0, 1);
  for (int i = 0; i < 100; ++i) CHECK(off.take("x", 1.0) == 0);
}

TEST_CASE("serve webhook: signatures match GitHub's published example and nothing else") {
  // From GitHub's "Validating webhook deliveries".
  const std::string secret = "It's a Secret to Everybody";
  const std::string good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  CHECK(signature_matches(secret, "Hello, World!", good));
  CHECK_FALSE(signature_matches(secret, "Hello, World?", good));
  CHECK_FALSE(signature_matches("another secret", "Hello, World!", good));
  CHECK_FALSE(signature_matches(secret, "Hello, World!", good.substr(0, good.size() - 1)));
  CHECK_FALSE(signature_matches(secret, "Hello, World!", "sha1=" + good.substr(7)));
  CHECK_FALSE(signature_matches(secret, "Hello, World!", ""));
}

TEST_CASE("serve webhook: push and release payloads become events") {
  std::string error;
  auto push = parse_github_event(
      "push", nlohmann::json::parse(R"({"ref": "refs/tags/v1.2", "after": "abc", "repository": {"full_name": "a/b"},
                                        "sender": {"login": "octocat"}})"),
      error);
  REQUIRE(push);
  CHECK(push->tag == "v1.2");
  CHECK(push->branch.empty());
  CHECK(push->sha == "abc");
  CHECK(push->sender == "octocat");
  auto bad = parse_github_event("push", nlohmann::json::parse(R"({"ref": "HEAD", "repository": {"full_name": "a/b"}})"), error);
  CHECK_FALSE(bad);
  CHECK(error == "the push payload's ref 'HEAD' is neither refs/heads/... nor refs/tags/...");
  auto rel = parse_github_event(
      "release", nlohmann::json::parse(R"({"action": "created", "release": {"tag_name": "v2"}, "repository": {"full_name": "a/b"}})"),
      error);
  REQUIRE(rel);
  CHECK(rel->action == "created");
  CHECK(rel->tag == "v2");
}

TEST_CASE("serve clock: times parse from ISO 8601 with offsets or ms, and print in UTC") {
  CHECK(parse_time("2026-03-08T07:00:00Z") == 1'772'953'200'000);
  CHECK(parse_time("2026-03-08T02:00:00-05:00") == 1'772'953'200'000);
  CHECK(parse_time("2026-03-08T07:00:00.25Z") == 1'772'953'200'250);
  CHECK(parse_time("1772953200000") == 1'772'953'200'000);
  CHECK_FALSE(parse_time("2026-02-30T00:00:00Z"));
  CHECK_FALSE(parse_time("2026-03-08 07:00"));
  CHECK_FALSE(parse_time("yesterday"));
  CHECK(format_utc(1'772'953'200'000) == "2026-03-08T07:00:00Z");
  CHECK(format_utc(1'772'953'200'250) == "2026-03-08T07:00:00.250Z");
}

TEST_CASE("serve metrics: runs by status, step durations and the latest values of monitor steps") {
  sluice::test::ScratchDir dir;
  std::filesystem::create_directories(dir / "wf");
  std::ofstream(dir / "wf/watch.toml") << R"(
name = "watch"

[steps.drift]
uses = "monitor.drift"
with = { reference = "ref.csv", current = "cur.csv" }

[steps.report]
run = "echo report"
)";
  ServeOptions opt;
  opt.home = dir / "home";
  opt.workflows_dir = dir / "wf";
  ServeContext ctx(opt, make_wall_clock());
  auto cat = load_catalog(opt.workflows_dir);
  INFO((cat->errors.empty() ? std::string() : cat->errors[0].message));
  REQUIRE(cat->workflows.size() == 1);
  ctx.set_catalog(cat);
  const std::string digest = cat->workflows.at("watch").digest;
  const int64_t T = 1'780'000'000'000;
  auto run = [&](const std::string& id, reg::RunStatus status, double psi, const std::string& shift) {
    ctx.writer.apply({reg::PutWorkflow{.name = "watch", .digest = digest, .source = "", .at = T},
                      reg::CreateRun{.id = id, .workflow_name = "watch", .workflow_digest = digest, .at = T},
                      reg::SetRunStatus{.run_id = id, .status = status, .at = T + 5000},
                      reg::SetStepStatus{.run_id = id, .node = "drift", .status = reg::StepStatus::Running, .at = T},
                      reg::AddMetric{.run_id = id, .node = "drift", .name = "psi", .value = psi / 2, .at = T, .seq = 1},
                      reg::AddMetric{.run_id = id, .node = "drift", .name = "psi", .value = psi, .at = T, .seq = 2},
                      reg::SetValue{.run_id = id, .node = "drift", .key = "shift", .value = shift},
                      reg::SetValue{.run_id = id, .node = "drift", .key = "verdict", .value = "drifted"},
                      reg::SetStepStatus{.run_id = id, .node = "drift",
                                         .status = status == reg::RunStatus::Succeeded ? reg::StepStatus::Succeeded
                                                                                        : reg::StepStatus::Failed,
                                         .at = T + 2500}});
  };
  run("r1", reg::RunStatus::Succeeded, 0.25, "0.5");
  run("r2", reg::RunStatus::Succeeded, 0.125, "1e-3");
  run("r3", reg::RunStatus::Failed, 9, "9");  // newer, but failed: not what monitors report

  const std::string text = render_metrics(ctx);
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK(text.find(line + "\n") != std::string::npos);
  };
  has("sluice_runs{workflow=\"watch\",status=\"succeeded\"} 2");
  has("sluice_runs{workflow=\"watch\",status=\"failed\"} 1");
  has("# TYPE sluice_step_duration_seconds histogram");
  has("sluice_step_duration_seconds_bucket{workflow=\"watch\",le=\"1\"} 0");
  has("sluice_step_duration_seconds_bucket{workflow=\"watch\",le=\"5\"} 3");
  has("sluice_step_duration_seconds_count{workflow=\"watch\"} 3");
  has("sluice_step_duration_seconds_sum{workflow=\"watch\"} 7.5");
  has("sluice_monitor_metric{workflow=\"watch\",step=\"drift\",node=\"drift\",name=\"psi\"} 0.125");
  has("sluice_monitor_value{workflow=\"watch\",step=\"drift\",node=\"drift\",key=\"shift\"} 0.001");
  CHECK(text.find("key=\"verdict\"") == std::string::npos);  // not a number
  CHECK(text.find("step=\"report\"") == std::string::npos);  // not a monitor step
  has("sluice_queue_depth 0");
  // The histogram is fed incrementally: a second scrape counts nothing twice.
  CHECK(render_metrics(ctx).find("sluice_step_duration_seconds_count{workflow=\"watch\"} 3\n") != std::string::npos);
  CHECK(prom_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}
