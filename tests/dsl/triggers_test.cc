#include <catch2/catch.hpp>

#include "dsl/parser.h"
#include "dsl/triggers.h"

using namespace sluice::dsl;

namespace {

WorkflowPtr parse_ok(const std::string& text) {
  Diagnostics diags;
  WorkflowPtr wf = parse_workflow(text, "wf.toml", diags);
  INFO(diags.format_all());
  REQUIRE(wf);
  return wf;
}

RepoEvent push_branch(const std::string& repo, const std::string& branch) {
  RepoEvent e;
  e.kind = TriggerEvent::Push;
  e.repository = repo;
  e.ref = "refs/heads/" + branch;
  e.branch = branch;
  e.sha = "0123456789abcdef0123456789abcdef01234567";
  e.sender = "octocat";
  return e;
}

RepoEvent push_tag(const std::string& repo, const std::string& tag) {
  RepoEvent e = push_branch(repo, "");
  e.ref = "refs/tags/" + tag;
  e.branch.clear();
  e.tag = tag;
  return e;
}

RepoEvent release(const std::string& repo, const std::string& tag, const std::string& action) {
  RepoEvent e;
  e.kind = TriggerEvent::Release;
  e.repository = repo;
  e.tag = tag;
  e.action = action;
  e.sender = "octocat";
  return e;
}

const char* kHooks = R"(
name = "hooks"

[params]
commit = ""
channel = "dev"
epochs = 3
rate = 0.5

[[triggers.push]]
repository = "acme/shop"
branches = ["main", "release/*"]
params = { commit = "${event.sha}", channel = "push-$${{event.branch}}-${event.branch}" }

[[triggers.push]]
tags = ["v**"]
params = { epochs = 7, rate = 2 }

[triggers.release]
tags = ["v1.*"]
params = { channel = "${event.tag}/${event.action}" }

[steps.a]
run = "true"
)";

}  // namespace

TEST_CASE("triggers: glob patterns on branch and tag names") {
  CHECK(glob_match("main", "main"));
  CHECK_FALSE(glob_match("main", "mainline"));
  CHECK(glob_match("release/*", "release/1.2"));
  CHECK_FALSE(glob_match("release/*", "release/1.2/hotfix"));
  CHECK(glob_match("release/**", "release/1.2/hotfix"));
  CHECK(glob_match("**", "a/b/c"));
  CHECK_FALSE(glob_match("*", "a/b"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("v?.*", "v1.0"));
  CHECK_FALSE(glob_match("v?.*", "v10.0"));
  CHECK_FALSE(glob_match("?", "/"));
  // A single star cannot cross '/', but an earlier ** can: no greedy dead end.
  CHECK(glob_match("**/b*c", "x/bz/bqc"));
  CHECK(glob_match("feature/**/done", "feature/a/b/done"));
  CHECK_FALSE(glob_match("feature/*/done", "feature/a/b/done"));
  // Stars cost linear work, not exponential.
  CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*b", std::string(200, 'a')));
}

TEST_CASE("triggers: a [triggers] section reads as tables and arrays of tables") {
  WorkflowPtr wf = parse_ok(kHooks);
  REQUIRE(wf->triggers.size() == 3);
  const EventTrigger& t = wf->triggers[0];
  CHECK(t.event == TriggerEvent::Push);
  CHECK(t.repository == "acme/shop");
  CHECK(t.branches == std::vector<std::string>{"main", "release/*"});
  REQUIRE(t.params.size() == 2);
  CHECK(t.params[0].name == "channel");
  CHECK(t.params[0].has_event_fields);
  CHECK(t.params[1].name == "commit");
  CHECK(wf->triggers[2].event == TriggerEvent::Release);
  CHECK(wf->triggers[2].tags == std::vector<std::string>{"v1.*"});
  CHECK(wf->triggers[2].actions.empty());
}

TEST_CASE("triggers: pushes match by repository, branch and tag filters") {
  WorkflowPtr wf = parse_ok(kHooks);
  const EventTrigger& branches = wf->triggers[0];
  const EventTrigger& tags = wf->triggers[1];
  CHECK(trigger_matches(branches, push_branch("acme/shop", "main")));
  CHECK(trigger_matches(branches, push_branch("acme/shop", "release/2")));
  CHECK_FALSE(trigger_matches(branches, push_branch("acme/shop", "dev")));
  CHECK_FALSE(trigger_matches(branches, push_branch("acme/other", "main")));
  CHECK_FALSE(trigger_matches(branches, push_tag("acme/shop", "v1")));  // a branch filter leaves tags out
  CHECK(trigger_matches(tags, push_tag("any/repo", "v2.0")));
  CHECK_FALSE(trigger_matches(tags, push_branch("any/repo", "v2")));    // and a tag filter branches
  RepoEvent deleted = push_branch("acme/shop", "main");
  deleted.deleted = true;
  CHECK_FALSE(trigger_matches(branches, deleted));
  CHECK_FALSE(trigger_matches(branches, release("acme/shop", "v1.0", "published")));

  EventTrigger any;
  CHECK(trigger_matches(any, push_branch("x/y", "whatever")));
  CHECK(trigger_matches(any, push_tag("x/y", "whatever")));
}

TEST_CASE("triggers: releases match published by default, or the listed actions") {
  WorkflowPtr wf = parse_ok(kHooks);
  const EventTrigger& t = wf->triggers[2];
  CHECK(trigger_matches(t, release("acme/shop", "v1.4", "published")));
  CHECK_FALSE(trigger_matches(t, release("acme/shop", "v1.4", "created")));
  CHECK_FALSE(trigger_matches(t, release("acme/shop", "v2.0", "published")));
  EventTrigger created = t;
  created.actions = {"created", "edited"};
  CHECK(trigger_matches(created, release("acme/shop", "v1.4", "edited")));
  CHECK_FALSE(trigger_matches(created, release("acme/shop", "v1.4", "published")));
}

TEST_CASE("triggers: params take event fields, $$ is a dollar, literals keep their type") {
  WorkflowPtr wf = parse_ok(kHooks);
  auto params = trigger_params(wf->triggers[0], push_branch("acme/shop", "main"));
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "channel");
  CHECK(params[0].second == Value("push-${{event.branch}}-main"));
  CHECK(params[1].second == Value("0123456789abcdef0123456789abcdef01234567"));

  auto literal = trigger_params(wf->triggers[1], push_tag("acme/shop", "v9"));
  REQUIRE(literal.size() == 2);
  CHECK(literal[0].second == Value(int64_t{7}));
  CHECK(literal[1].second == Value(int64_t{2}));  // widened to float when the run's params are typed

  auto rel = trigger_params(wf->triggers[2], release("acme/shop", "v1.4", "published"));
  REQUIRE(rel.size() == 1);
  CHECK(rel[0].second == Value("v1.4/published"));
  CHECK(event_field(rel.empty() ? RepoEvent{} : release("a/b", "t", "published"), "sha") == std::nullopt);
}
