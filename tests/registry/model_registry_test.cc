// The model registry on a real SQLite file: versions, aliases and their
// history, rollback, archive, decisions, and promotions from several processes.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <set>

#include "registry/db.h"
#include "registry/model_registry.h"
#include "registry/sha256.h"
#include "support/fork_children.h"
#include "support/temp_dir.h"

using namespace sluice::registry;
using sluice::test::run_children;
using sluice::test::ScratchDir;

namespace {

std::string digest_of(const std::string& text) { return "sha256:" + sha256_hex(text); }

NewVersion version_of(const std::string& model, const std::string& content, double auc = 0.5) {
  NewVersion v;
  v.model = model;
  v.digest = digest_of(content);
  v.size = static_cast<int64_t>(content.size());
  v.filename = "model.json";
  v.format = "xgboost-json";
  v.metrics = {{"auc", auc}};
  v.actor = "tester";
  return v;
}

// Registers versions 1..n of `model`.
void register_n(ModelRegistry& reg, const std::string& model, int n) {
  for (int i = 1; i <= n; ++i) REQUIRE(reg.register_version(version_of(model, model + std::to_string(i), 0.5 + i / 100.0)));
}

PromoteRequest move(const std::string& model, int64_t version, const std::string& alias, const std::string& actor = "ann",
                    const std::string& reason = {}) {
  PromoteRequest r;
  r.model = model;
  r.version = version;
  r.alias = alias;
  r.actor = actor;
  r.reason = reason;
  return r;
}

std::string sql_error(const std::string& db_path, const std::string& sql) {
  Db db(db_path);
  try {
    db.exec(sql);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("model registry: versions count from 1 per model and keep what was registered") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  NewVersion v = version_of("churn", "bytes-1", 0.8);
  v.params_json = R"({"eta":0.1})";
  v.tags = {{"team", "growth"}, {"data", "2026-11"}};
  v.description = "first cut";
  auto v1 = reg.register_version(v);
  REQUIRE(v1);
  CHECK(v1->version == 1);
  CHECK(v1->model == "churn");
  CHECK(v1->digest == digest_of("bytes-1"));
  CHECK(v1->format == "xgboost-json");
  CHECK(v1->metric("auc") == 0.8);
  CHECK(v1->params_json == R"({"eta":0.1})");
  CHECK(v1->tags == std::vector<std::pair<std::string, std::string>>{{"data", "2026-11"}, {"team", "growth"}});
  CHECK(v1->description == "first cut");
  CHECK(v1->actor == "tester");
  CHECK_FALSE(v1->archived());

  CHECK(reg.register_version(version_of("churn", "bytes-2"))->version == 2);
  CHECK(reg.register_version(version_of("other", "bytes-3"))->version == 1);
  // The same bytes again are a new version (a re-registration is a decision, too).
  CHECK(reg.register_version(version_of("churn", "bytes-1"))->version == 3);

  auto list = reg.list_models();
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "churn");
  CHECK(list[0].versions == 3);
  CHECK(list[0].latest == 3);
  CHECK(list[1].name == "other");
  std::vector<std::string> refs = reg.referenced_digests();
  CHECK(std::set<std::string>(refs.begin(), refs.end()) ==
        std::set<std::string>{digest_of("bytes-1"), digest_of("bytes-2"), digest_of("bytes-3")});
  CHECK(std::is_sorted(refs.begin(), refs.end()));
  auto using1 = reg.versions_with_artifact(digest_of("bytes-1"));
  REQUIRE(using1.size() == 2);
  CHECK(using1[0].version == 1);
  CHECK(using1[1].version == 3);
}

TEST_CASE("model registry: a step registering again after a retry gets its version back") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  {
    // A run for the lineage to point at.
    Db db(dir / "sluice.db");
    db.exec(
        "INSERT INTO workflows (id, name, digest, source, first_seen) VALUES (1, 'wf', 'sha256:w', '', 1);"
        "INSERT INTO runs (id, workflow_id, workflow_name, triggered_by, status, status_at, created_at, "
        "sluice_version) VALUES ('r1', 1, 'wf', 'cli', 'running', 1, 1, 'x');");
  }
  NewVersion v = version_of("m", "same");
  v.lineage.registered_run = "r1";
  v.lineage.registered_node = "register";
  CHECK(reg.register_version(v)->version == 1);
  CHECK(reg.register_version(v)->version == 1);
  v.lineage.registered_node = "register_again";
  CHECK(reg.register_version(v)->version == 2);
  v.lineage.registered_run = "nope";
  CHECK(reg.register_version(v).error() == "run 'nope' is not recorded in the store");
}

TEST_CASE("model registry: bad names and unknown lineage are refused") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  CHECK(reg.register_version(version_of("Bad Name", "x")).error() ==
        "model name 'Bad Name' is invalid: use lowercase letters, digits, '_' and '-', starting with a letter or digit");
  NewVersion v = version_of("m", "x");
  v.digest = "md5:abc";
  CHECK(reg.register_version(v).error() == "'md5:abc' is not an artifact digest");
  v = version_of("m", "x");
  v.lineage.inputs = {{"data", digest_of("never stored")}};
  CHECK(reg.register_version(v).error() ==
        "lineage input 'data' (" + digest_of("never stored") + ") is not a recorded artifact");
  CHECK(reg.list_models().empty());  // nothing of a refused registration remains
  register_n(reg, "m", 1);
  CHECK(reg.promote(move("m", 1, "2prod")).error() ==
        "alias '2prod' is invalid: use lowercase letters, digits, '_' and '-', starting with a letter");
  CHECK(reg.promote(move("m", 1, "latest")).error() == "'latest' cannot be an alias: it means the newest version");
}

TEST_CASE("model registry: promote moves an alias and appends to its history") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  register_n(reg, "m", 3);
  auto first = reg.promote(move("m", 1, "production", "ann", "initial release"));
  REQUIRE(first);
  CHECK(first->outcome == PromoteResult::Outcome::Moved);
  CHECK(first->previous == 0);
  auto second = reg.promote(move("m", 2, "production", "bob", "better auc"));
  REQUIRE(second);
  CHECK(second->outcome == PromoteResult::Outcome::Moved);
  CHECK(second->previous == 1);
  REQUIRE(reg.promote(move("m", 3, "staging")));
  auto again = reg.promote(move("m", 2, "production"));
  CHECK(again->outcome == PromoteResult::Outcome::AlreadyHeld);

  CHECK(reg.resolve("m", "production")->version == 2);
  CHECK(reg.resolve("m", "staging")->version == 3);
  CHECK(reg.version("m", 2)->aliases == std::vector<std::string>{"production"});
  CHECK(reg.version("m", 1)->aliases.empty());

  auto h = reg.history("m", "production");
  REQUIRE(h);
  REQUIRE(h->size() == 2);
  CHECK(h->at(0).version == 1);
  CHECK(h->at(0).actor == "ann");
  CHECK(h->at(0).reason == "initial release");
  CHECK(h->at(0).action == "promote");
  REQUIRE(h->at(0).until);
  CHECK(*h->at(0).until == h->at(1).since);  // handed over in one instant: never two holders, never none
  CHECK(h->at(1).version == 2);
  CHECK(h->at(1).previous_version == 1);
  CHECK_FALSE(h->at(1).until);
  CHECK(reg.history("m")->size() == 3);  // every alias

  auto summary = reg.model("m");
  REQUIRE(summary);
  CHECK(summary->aliases == std::vector<std::pair<std::string, int64_t>>{{"production", 2}, {"staging", 3}});
}

TEST_CASE("model registry: a compare-and-set promote does nothing when the holder moved") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  register_n(reg, "m", 3);
  REQUIRE(reg.promote(move("m", 1, "production")));
  PromoteRequest r = move("m", 3, "production");
  r.expected = 2;  // the gate saw version 2 as champion, but 1 holds it
  r.decision = DecisionInput{"true", "{}", "gate held: true"};
  auto out = reg.promote(r);
  REQUIRE(out);
  CHECK(out->outcome == PromoteResult::Outcome::HolderChanged);
  CHECK(out->previous == 1);
  CHECK(reg.resolve("m", "production")->version == 1);
  CHECK(reg.history("m")->size() == 1);
  CHECK(reg.decisions("m")->empty());  // nothing recorded for a stale decision
  r.expected = 1;
  CHECK(reg.promote(r)->outcome == PromoteResult::Outcome::Moved);
  auto d = reg.decisions("m");
  REQUIRE(d->size() == 1);
  CHECK(d->at(0).candidate == 3);
  CHECK(d->at(0).champion == 1);
  CHECK(d->at(0).promoted);
  CHECK(d->at(0).gate == "true");
  CHECK(d->at(0).reason == "gate held: true");
}

TEST_CASE("model registry: unknown models, versions and aliases are named in the error") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  register_n(reg, "recommender", 3);
  REQUIRE(reg.promote(move("recommender", 2, "production")));
  REQUIRE(reg.promote(move("recommender", 3, "staging")));
  CHECK(reg.resolve("recomender", "1").error() == "no model 'recomender'; did you mean 'recommender'?");
  CHECK(reg.resolve("zzz", "1").error() == "no model 'zzz'");
  CHECK(reg.resolve("recommender", "7").error() == "model 'recommender' has no version 7 (it has versions 1 to 3)");
  CHECK(reg.resolve("recommender", "prodution").error() ==
        "model 'recommender' has no alias 'prodution'; did you mean 'production'?");
  CHECK(reg.resolve("recommender", "canary").error() ==
        "model 'recommender' has no alias 'canary' (aliases: production, staging)");
  CHECK(reg.resolve("recommender", "latest")->version == 3);
  CHECK(reg.resolve("recommender", "2")->version == 2);
  CHECK(reg.promote(move("recommender", 9, "production")).error() ==
        "model 'recommender' has no version 9 (it has versions 1 to 3)");
  CHECK(reg.rollback("recommender", "canary", "ann").error() ==
        "model 'recommender' has no alias 'canary' (aliases: production, staging)");
}

TEST_CASE("model registry: rollback walks the alias back through its earlier holders") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  register_n(reg, "m", 3);
  REQUIRE(reg.promote(move("m", 1, "production")));
  REQUIRE(reg.promote(move("m", 2, "production")));
  REQUIRE(reg.promote(move("m", 3, "production")));
  auto back = reg.rollback("m", "production", "ops", "latency regression");
  REQUIRE(back);
  CHECK(back->from == 3);
  CHECK(back->to == 2);
  CHECK(reg.resolve("m", "production")->version == 2);
  back = reg.rollback("m", "production", "ops");
  REQUIRE(back);
  CHECK(back->to == 1);
  CHECK(reg.rollback("m", "production", "ops").error() ==
        "alias 'production' of model 'm' has no earlier holder to roll back to (version 1 was its first)");
  auto h = reg.history("m", "production");
  REQUIRE(h->size() == 5);
  CHECK(h->at(3).action == "rollback");
  CHECK(h->at(3).version == 2);
  CHECK(h->at(3).previous_version == 3);
  CHECK(h->at(3).reason == "latency regression");
  CHECK(h->at(4).version == 1);
  // A promotion after a rollback is undone by the next rollback.
  REQUIRE(reg.promote(move("m", 3, "production")));
  CHECK(reg.rollback("m", "production", "ops")->to == 1);
}

TEST_CASE("model registry: archived versions hold no alias") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  register_n(reg, "m", 3);
  REQUIRE(reg.promote(move("m", 1, "production")));
  REQUIRE(reg.promote(move("m", 1, "staging")));
  CHECK(reg.archive("m", 1, "ann").error() ==
        "version 1 of model 'm' holds aliases 'production', 'staging': move them to another version before archiving");
  REQUIRE(reg.promote(move("m", 2, "production")));
  REQUIRE(reg.promote(move("m", 3, "staging")));
  auto archived = reg.archive("m", 1, "ann");
  REQUIRE(archived);
  CHECK(archived->archived());
  CHECK(archived->archived_by == "ann");
  CHECK(reg.archive("m", 1, "bob")->archived_by == "ann");  // idempotent
  CHECK(reg.promote(move("m", 1, "production")).error() ==
        "version 1 of model 'm' is archived: an alias cannot point to an archived version");
  CHECK(reg.rollback("m", "production", "ops").error() ==
        "cannot roll alias 'production' of model 'm' back to version 1: it is archived");
  CHECK(reg.resolve("m", "production")->version == 2);
  REQUIRE(reg.archive("m", 3, "ann").error().find("holds alias 'staging'") != std::string::npos);
  // "latest" skips archived versions; an explicit number still finds them.
  REQUIRE(reg.promote(move("m", 2, "staging")));
  REQUIRE(reg.archive("m", 3, "ann"));
  CHECK(reg.resolve("m", "latest")->version == 2);
  CHECK(reg.resolve("m", "3")->archived());
  // The artifact of an archived version stays referenced.
  CHECK(reg.referenced_digests().size() == 3);
}

TEST_CASE("model registry: the database itself forbids two holders and edits of the history") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  register_n(reg, "m", 2);
  REQUIRE(reg.promote(move("m", 1, "production")));
  REQUIRE(reg.archive("m", 2, "ann"));
  const std::string db = dir / "sluice.db";
  CHECK_THAT(sql_error(db, "INSERT INTO model_aliases (model_id, alias, version_id, since, actor, action) "
                           "VALUES (1, 'production', 1, 5, 'x', 'promote')"),
             Catch::Contains("UNIQUE constraint failed: model_aliases.model_id, model_aliases.alias"));
  CHECK_THAT(sql_error(db, "UPDATE model_aliases SET until = NULL, since = 0"),
             Catch::Contains("the alias history is append-only"));
  CHECK_THAT(sql_error(db, "DELETE FROM model_aliases"), Catch::Contains("the alias history is append-only"));
  CHECK_THAT(sql_error(db, "INSERT INTO model_aliases (model_id, alias, version_id, since, actor, action) "
                           "VALUES (1, 'staging', 2, 5, 'x', 'promote')"),
             Catch::Contains("an alias cannot point to an archived version"));
  CHECK_THAT(sql_error(db, "UPDATE model_versions SET archived_at = 9 WHERE version = 1"),
             Catch::Contains("a version holding an alias cannot be archived"));
  CHECK(reg.history("m")->size() == 1);
}

TEST_CASE("model registry: decisions that did not promote are recorded with what the gate saw") {
  ScratchDir dir;
  ModelRegistry reg(dir / "sluice.db");
  register_n(reg, "m", 2);
  REQUIRE(reg.promote(move("m", 1, "production")));
  auto d = reg.record_rejection("m", 2, "production", 1,
                                DecisionInput{"candidate.metrics.auc > 0.9", R"({"candidate":{"version":2}})",
                                              "gate did not hold: candidate.metrics.auc > 0.9"},
                                "ci");
  REQUIRE(d);
  auto all = reg.decisions("m");
  REQUIRE(all->size() == 1);
  CHECK_FALSE(all->at(0).promoted);
  CHECK(all->at(0).candidate == 2);
  CHECK(all->at(0).champion == 1);
  CHECK(all->at(0).inputs_json == R"({"candidate":{"version":2}})");
  CHECK(all->at(0).actor == "ci");
  CHECK(reg.resolve("m", "production")->version == 1);
}

TEST_CASE("model registry: concurrent promotions from several processes keep one holder and every history row") {
  ScratchDir dir;
  const std::string db = dir / "sluice.db";
  constexpr int kVersions = 5, kChildren = 4, kMoves = 40;
  {
    ModelRegistry reg(db);
    register_n(reg, "m", kVersions);
  }  // no connection may cross fork()
  std::vector<int> codes = run_children(kChildren, [&](int c) {
    ModelRegistry reg(db);
    std::mt19937 rng(static_cast<unsigned>(c + 1));
    int moved = 0;
    for (int i = 0; i < kMoves; ++i) {
      int64_t v = 1 + static_cast<int64_t>(rng() % kVersions);
      bool rollback = rng() % 5 == 0;
      if (rollback) {
        if (reg.rollback("m", "production", "child" + std::to_string(c))) ++moved;
        continue;
      }
      auto r = reg.promote(move("m", v, "production", "child" + std::to_string(c), "move " + std::to_string(i)));
      if (!r) throw std::runtime_error(r.error());
      if (r->outcome == PromoteResult::Outcome::Moved) ++moved;
    }
    std::ofstream(dir / ("moved-" + std::to_string(c))) << moved;
  });
  REQUIRE(codes == std::vector<int>(kChildren, 0));
  int moved = 0;
  for (int c = 0; c < kChildren; ++c) {
    int n = -1;
    std::ifstream(dir / ("moved-" + std::to_string(c))) >> n;
    REQUIRE(n >= 0);
    moved += n;
  }
  ModelRegistry reg(db);
  auto h = reg.history("m", "production");
  REQUIRE(h);
  // Every move that a process was told happened is in the history, once.
  CHECK(static_cast<int>(h->size()) == moved);
  REQUIRE(!h->empty());
  // The holdings form one unbroken chain: each ends exactly where the next
  // begins, a holder never follows itself, and only the last is open.
  for (size_t i = 0; i + 1 < h->size(); ++i) {
    INFO("history row " << i);
    REQUIRE(h->at(i).until);
    CHECK(*h->at(i).until == h->at(i + 1).since);
    CHECK(h->at(i).version != h->at(i + 1).version);
    CHECK(h->at(i + 1).previous_version == h->at(i).version);
  }
  CHECK_FALSE(h->back().until);
  CHECK(reg.resolve("m", "production")->version == h->back().version);
  Db check(db);
  CHECK(check.query_int("SELECT count(*) FROM model_aliases WHERE until IS NULL") == 1);
  CHECK(check.query_int("SELECT count(*) FROM pragma_foreign_key_check") == 0);
}

TEST_CASE("registry: reads inside read_snapshot see one state while another connection writes") {
  ScratchDir dir;
  const std::string db = dir / "sluice.db";
  ModelRegistry reader(db), writer(db);
  register_n(writer, "m", 3);
  REQUIRE(writer.promote(move("m", 1, "production")));

  size_t moves_before = 0, moves_inside = 0, versions_inside = 0;
  reader.read_snapshot([&] {
    moves_before = reader.history("m")->size();
    // Another connection moves the alias and registers a version meanwhile.
    REQUIRE(writer.promote(move("m", 2, "production")));
    REQUIRE(writer.register_version(version_of("m", "m4")));
    moves_inside = reader.history("m")->size();
    versions_inside = reader.versions("m")->size();
    CHECK(*reader.holder("m", "production") == std::optional<int64_t>(1));
  });
  CHECK(moves_before == 1);
  CHECK(moves_inside == 1);    // the snapshot did not see the move...
  CHECK(versions_inside == 3);  // ...nor the new version
  CHECK(reader.history("m")->size() == 2);  // after it, both are there
  CHECK(reader.versions("m")->size() == 4);
  CHECK(*reader.holder("m", "production") == std::optional<int64_t>(2));
}
