#include "registry/model_registry.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "dsl/suggest.h"
#include "registry/db.h"
#include "registry/schema.h"

namespace sluice::registry {

namespace {

bool name_chars(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

std::optional<std::string_view> opt(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return std::string_view(s);
}

// A version number as written: digits only, no sign, fits.
std::optional<int64_t> parse_version(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

constexpr const char* kVersionCols =
    "SELECT v.id, m.name, v.version, a.digest, a.kind, a.size, v.filename, v.format, v.description, "
    "v.params_json, v.run_id, v.node, v.workflow_digest, v.git_commit, v.registered_run, v.registered_node, "
    "v.actor, v.created_at, v.archived_at, v.archived_by, "
    "(SELECT s.step FROM steps s WHERE s.run_id = v.run_id AND s.node = v.node), "
    "(SELECT r.workflow_name FROM runs r WHERE r.id = v.run_id) "
    "FROM model_versions v JOIN models m ON m.id = v.model_id JOIN artifacts a ON a.id = v.artifact_id ";

}  // namespace

bool is_model_name(std::string_view name) {
  return !name.empty() && name.size() <= 128 && name[0] != '_' && name[0] != '-' && name_chars(name);
}

bool is_alias_name(std::string_view alias) {
  return !alias.empty() && alias.size() <= 128 && alias[0] >= 'a' && alias[0] <= 'z' && name_chars(alias) &&
         alias != "latest";
}

std::string check_model_name(std::string_view name) {
  if (is_model_name(name)) return {};
  return "model name '" + std::string(name) +
         "' is invalid: use lowercase letters, digits, '_' and '-', starting with a letter or digit";
}

std::string check_alias_name(std::string_view alias) {
  if (is_alias_name(alias)) return {};
  if (alias == "latest") return "'latest' cannot be an alias: it means the newest version";
  return "alias '" + std::string(alias) +
         "' is invalid: use lowercase letters, digits, '_' and '-', starting with a letter";
}

std::string default_actor() {
  if (const char* a = std::getenv("SLUICE_ACTOR"); a && *a) return a;
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[4096];
  if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found) == 0 && found && found->pw_name && *found->pw_name)
    return found->pw_name;
  if (const char* u = std::getenv("USER"); u && *u) return u;
  return "uid " + std::to_string(geteuid());
}

std::optional<double> ModelVersion::metric(std::string_view name) const {
  for (const MetricValue& m : metrics)
    if (m.name == name) return m.value;
  return std::nullopt;
}

bool split_model_ref(const std::string& text, std::string& name, std::string& ref) {
  size_t at = text.find('@');
  name = text.substr(0, at);
  ref = at == std::string::npos ? std::string() : text.substr(at + 1);
  if (name.empty()) return false;
  return at == std::string::npos || !ref.empty();
}

struct ModelRegistry::Impl {
  explicit Impl(const std::string& path) : db(path) { migrate(db); }

  Db db;

  // ---- lookups (inside or outside a transaction) ----

  std::optional<int64_t> model_id(const std::string& name) {
    Stmt s = db.prepare("SELECT id FROM models WHERE name = ?1");
    s.bind(1, name);
    if (!s.step()) return std::nullopt;
    return s.int64(0);
  }

  std::vector<std::string> model_names() {
    Stmt s = db.prepare("SELECT name FROM models ORDER BY name");
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

  Error no_model(const std::string& name) {
    std::string hint = dsl::did_you_mean(name, model_names());
    return Error{"no model '" + name + "'" + hint};
  }

  Result<int64_t> need_model(const std::string& name) {
    if (auto id = model_id(name)) return *id;
    return no_model(name);
  }

  struct VersionKey {
    int64_t id = 0;
    bool archived = false;
  };

  std::optional<VersionKey> version_key(int64_t model, int64_t version) {
    Stmt s = db.prepare("SELECT id, archived_at IS NOT NULL FROM model_versions WHERE model_id = ?1 AND version = ?2");
    s.bind(1, model).bind(2, version);
    if (!s.step()) return std::nullopt;
    return VersionKey{s.int64(0), s.int64(1) != 0};
  }

  Error no_version(const std::string& name, int64_t model, int64_t version) {
    Stmt s = db.prepare("SELECT min(version), max(version) FROM model_versions WHERE model_id = ?1");
    s.bind(1, model);
    s.step();
    std::string have = s.is_null(0) ? "it has no versions"
                       : s.int64(0) == s.int64(1)
                           ? "it has version " + std::to_string(s.int64(0))
                           : "it has versions " + std::to_string(s.int64(0)) + " to " + std::to_string(s.int64(1));
    return Error{"model '" + name + "' has no version " + std::to_string(version) + " (" + have + ")"};
  }

  Result<VersionKey> need_version(const std::string& name, int64_t model, int64_t version) {
    if (auto k = version_key(model, version)) return *k;
    return no_version(name, model, version);
  }

  std::vector<std::string> alias_names(int64_t model) {
    Stmt s = db.prepare("SELECT DISTINCT alias FROM model_aliases WHERE model_id = ?1 AND until IS NULL ORDER BY alias");
    s.bind(1, model);
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
  }

  Error no_alias(const std::string& name, int64_t model, const std::string& alias) {
    std::vector<std::string> have = alias_names(model);
    std::string hint = dsl::did_you_mean(alias, have);
    if (hint.empty()) hint = have.empty() ? " (it has no aliases)" : " (aliases: " + join(have) + ")";
    return Error{"model '" + name + "' has no alias '" + alias + "'" + hint};
  }

  struct Holding {
    int64_t row = 0;         // model_aliases.id
    int64_t version_id = 0;  // model_versions.id
    int64_t version = 0;
    int64_t since = 0;
    std::optional<int64_t> rollback_to;
  };

  std::optional<Holding> holding(int64_t model, const std::string& alias) {
    Stmt s = db.prepare(
        "SELECT h.id, h.version_id, v.version, h.since, h.rollback_to FROM model_aliases h "
        "JOIN model_versions v ON v.id = h.version_id WHERE h.model_id = ?1 AND h.alias = ?2 AND h.until IS NULL");
    s.bind(1, model).bind(2, alias);
    if (!s.step()) return std::nullopt;
    return Holding{s.int64(0), s.int64(1), s.int64(2), s.int64(3), s.opt_int64(4)};
  }

  std::optional<int64_t> artifact_id(const std::string& digest) {
    Stmt s = db.prepare("SELECT id FROM artifacts WHERE digest = ?1");
    s.bind(1, digest);
    if (!s.step()) return std::nullopt;
    return s.int64(0);
  }

  bool run_exists(const std::string& id) {
    Stmt s = db.prepare("SELECT 1 FROM runs WHERE id = ?1");
    s.bind(1, id);
    return s.step();
  }

  // ---- whole rows ----

  ModelVersion read_version_row(const Stmt& s) {
    ModelVersion v;
    v.model = s.text(1);
    v.version = s.int64(2);
    v.digest = s.text(3);
    v.kind = parse_artifact_kind(s.text(4)).value_or(ArtifactKind::File);
    v.size = s.int64(5);
    v.filename = s.text(6);
    v.format = s.text(7);
    v.description = s.text(8);
    v.params_json = s.text(9);
    v.lineage.run_id = s.text(10);
    v.lineage.node = s.text(11);
    v.lineage.workflow_digest = s.text(12);
    v.lineage.git_commit = s.text(13);
    v.lineage.registered_run = s.text(14);
    v.lineage.registered_node = s.text(15);
    v.actor = s.text(16);
    v.created_at = s.int64(17);
    v.archived_at = s.opt_int64(18);
    v.archived_by = s.text(19);
    v.lineage.step = s.text(20);
    v.lineage.workflow_name = s.text(21);
    return v;
  }

  // Metrics, tags, inputs and aliases of the version with row id `id`.
  void fill(int64_t id, ModelVersion& v) {
    {
      Stmt s = db.prepare("SELECT name, value FROM model_version_metrics WHERE version_id = ?1 ORDER BY name");
      s.bind(1, id);
      while (s.step()) v.metrics.push_back({s.text(0), s.real(1)});
    }
    {
      Stmt s = db.prepare("SELECT key, value FROM model_version_tags WHERE version_id = ?1 ORDER BY key");
      s.bind(1, id);
      while (s.step()) v.tags.emplace_back(s.text(0), s.text(1));
    }
    {
      Stmt s = db.prepare(
          "SELECT i.name, a.digest FROM model_version_inputs i JOIN artifacts a ON a.id = i.artifact_id "
          "WHERE i.version_id = ?1 ORDER BY i.name");
      s.bind(1, id);
      while (s.step()) v.lineage.inputs.push_back({s.text(0), s.text(1)});
    }
    {
      Stmt s = db.prepare("SELECT alias FROM model_aliases WHERE version_id = ?1 AND until IS NULL ORDER BY alias");
      s.bind(1, id);
      while (s.step()) v.aliases.push_back(s.text(0));
    }
  }

  // Versions matching `where` (SQL after the joins, binding ?1 and ?2).
  std::vector<ModelVersion> read_versions(const std::string& where, int64_t a, std::optional<int64_t> b = {}) {
    Stmt s = db.prepare(std::string(kVersionCols) + where);
    s.bind(1, a);
    if (b) s.bind(2, *b);
    std::vector<std::pair<int64_t, ModelVersion>> rows;
    while (s.step()) rows.emplace_back(s.int64(0), read_version_row(s));
    std::vector<ModelVersion> out;
    for (auto& [id, v] : rows) {
      fill(id, v);
      out.push_back(std::move(v));
    }
    return out;
  }

  ModelVersion read_version(int64_t model, int64_t version) {
    auto rows = read_versions("WHERE v.model_id = ?1 AND v.version = ?2", model, version);
    if (rows.empty()) throw StoreError("model version vanished inside a transaction");
    return std::move(rows[0]);
  }

  int64_t version_number(int64_t version_id) {
    Stmt s = db.prepare("SELECT version FROM model_versions WHERE id = ?1");
    s.bind(1, version_id);
    return s.step() ? s.int64(0) : 0;
  }

  // "now", but never before `floor`: history times follow commit order even
  // when clocks of several processes disagree slightly.
  static int64_t at_or_after(int64_t given, int64_t floor) { return std::max(given ? given : now_ms(), floor); }

  void insert_decision(int64_t model, const std::string& alias, int64_t candidate_id, std::optional<int64_t> champion_id,
                       const DecisionInput& d, bool promoted, const std::string& reason, const std::string& actor,
                       const std::string& run_id, const std::string& node, int64_t at) {
    Stmt s = db.prepare(
        "INSERT INTO model_decisions (model_id, alias, candidate_id, champion_id, gate, inputs_json, promoted, "
        "reason, actor, run_id, node, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    s.bind(1, model).bind(2, alias).bind(3, candidate_id).bind(4, champion_id).bind(5, opt(d.gate));
    s.bind(6, d.inputs_json.empty() ? std::string("{}") : d.inputs_json).bind(7, promoted).bind(8, reason);
    s.bind(9, actor).bind(10, opt(run_id)).bind(11, opt(node)).bind(12, at);
    s.run();
  }

  Result<std::string> check_step_ref(const std::string& run_id) {
    if (!run_id.empty() && !run_exists(run_id)) return Error{"run '" + run_id + "' is not recorded in the store"};
    return std::string();
  }
};

ModelRegistry::ModelRegistry(const std::string& db_path) : impl_(std::make_unique<Impl>(db_path)) {}
ModelRegistry::~ModelRegistry() = default;

Result<ModelVersion> ModelRegistry::register_version(const NewVersion& nv) {
  Impl& m = *impl_;
  if (std::string e = check_model_name(nv.model); !e.empty()) return Error{e};
  if (!Digest::parse(nv.digest)) return Error{"'" + nv.digest + "' is not an artifact digest"};
  for (const MetricValue& mv : nv.metrics)
    if (mv.name.empty()) return Error{"a metric has an empty name"};
  for (const auto& [k, v] : nv.tags)
    if (k.empty()) return Error{"a tag has an empty key"};
  Tx tx(m.db);
  for (const std::string* run : {&nv.lineage.run_id, &nv.lineage.registered_run}) {
    auto ok = m.check_step_ref(*run);
    if (!ok) return Error{ok.error()};
  }
  const int64_t at = nv.at ? nv.at : now_ms();
  {
    Stmt s = m.db.prepare("INSERT INTO models (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING");
    s.bind(1, nv.model).bind(2, at);
    s.run();
  }
  const int64_t model = *m.model_id(nv.model);
  if (!nv.lineage.registered_run.empty()) {
    Stmt s = m.db.prepare(
        "SELECT v.version FROM model_versions v JOIN artifacts a ON a.id = v.artifact_id WHERE v.model_id = ?1 "
        "AND a.digest = ?2 AND v.registered_run = ?3 AND v.registered_node IS ?4");
    s.bind(1, model).bind(2, nv.digest).bind(3, nv.lineage.registered_run).bind(4, opt(nv.lineage.registered_node));
    if (s.step()) {
      int64_t existing = s.int64(0);
      ModelVersion v = m.read_version(model, existing);
      tx.commit();
      return v;
    }
  }
  {
    Stmt s = m.db.prepare(
        "INSERT INTO artifacts (digest, kind, size, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (digest) DO NOTHING");
    s.bind(1, nv.digest).bind(2, to_string(nv.kind)).bind(3, nv.size).bind(4, at);
    s.run();
  }
  const int64_t artifact = *m.artifact_id(nv.digest);
  std::vector<std::pair<std::string, int64_t>> inputs;
  for (const ModelLineage::Input& in : nv.lineage.inputs) {
    auto id = m.artifact_id(in.digest);
    if (!id) return Error{"lineage input '" + in.name + "' (" + in.digest + ") is not a recorded artifact"};
    inputs.emplace_back(in.name, *id);
  }
  int64_t number = 0;
  {
    Stmt s = m.db.prepare("SELECT coalesce(max(version), 0) + 1 FROM model_versions WHERE model_id = ?1");
    s.bind(1, model);
    s.step();
    number = s.int64(0);
  }
  {
    Stmt s = m.db.prepare(
        "INSERT INTO model_versions (model_id, version, artifact_id, filename, format, description, params_json, "
        "run_id, node, workflow_digest, git_commit, registered_run, registered_node, actor, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");
    s.bind(1, model).bind(2, number).bind(3, artifact).bind(4, nv.filename).bind(5, opt(nv.format));
    s.bind(6, opt(nv.description)).bind(7, nv.params_json.empty() ? std::string("{}") : nv.params_json);
    s.bind(8, opt(nv.lineage.run_id)).bind(9, opt(nv.lineage.node)).bind(10, opt(nv.lineage.workflow_digest));
    s.bind(11, opt(nv.lineage.git_commit)).bind(12, opt(nv.lineage.registered_run));
    s.bind(13, opt(nv.lineage.registered_node)).bind(14, nv.actor.empty() ? default_actor() : nv.actor).bind(15, at);
    s.run();
  }
  const int64_t vid = m.version_key(model, number)->id;
  for (const MetricValue& mv : nv.metrics) {
    Stmt s = m.db.prepare(
        "INSERT INTO model_version_metrics (version_id, name, value) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (version_id, name) DO UPDATE SET value = excluded.value");
    s.bind(1, vid).bind(2, mv.name);
    if (std::isnan(mv.value)) s.bind(3, nullptr); else s.bind(3, mv.value);
    s.run();
  }
  for (const auto& [k, v] : nv.tags) {
    Stmt s = m.db.prepare(
        "INSERT INTO model_version_tags (version_id, key, value) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (version_id, key) DO UPDATE SET value = excluded.value");
    s.bind(1, vid).bind(2, k).bind(3, v);
    s.run();
  }
  for (const auto& [name, id] : inputs) {
    Stmt s = m.db.prepare(
        "INSERT INTO model_version_inputs (version_id, name, artifact_id) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (version_id, name) DO UPDATE SET artifact_id = excluded.artifact_id");
    s.bind(1, vid).bind(2, name).bind(3, id);
    s.run();
  }
  ModelVersion v = m.read_version(model, number);
  tx.commit();
  return v;
}

Result<PromoteResult> ModelRegistry::promote(const PromoteRequest& r) {
  Impl& m = *impl_;
  if (std::string e = check_alias_name(r.alias); !e.empty()) return Error{e};
  Tx tx(m.db);
  auto model = m.need_model(r.model);
  if (!model) return Error{model.error()};
  auto key = m.need_version(r.model, *model, r.version);
  if (!key) return Error{key.error()};
  if (key->archived)
    return Error{"version " + std::to_string(r.version) + " of model '" + r.model +
                 "' is archived: an alias cannot point to an archived version"};
  std::optional<Impl::Holding> current = m.holding(*model, r.alias);
  PromoteResult out;
  out.previous = current ? current->version : 0;
  if (r.expected && *r.expected != out.previous) {
    out.outcome = PromoteResult::Outcome::HolderChanged;
    return out;  // the transaction rolls back: nothing was written
  }
  const int64_t at = Impl::at_or_after(r.at, current ? current->since : 0);
  const std::string actor = r.actor.empty() ? default_actor() : r.actor;
  auto step_ok = m.check_step_ref(r.run_id);
  if (!step_ok) return Error{step_ok.error()};
  std::optional<int64_t> champion_id;
  if (current) champion_id = current->version_id;
  if (current && current->version == r.version) {
    out.outcome = PromoteResult::Outcome::AlreadyHeld;
    if (r.decision)
      m.insert_decision(*model, r.alias, key->id, champion_id, *r.decision, false,
                        "version " + std::to_string(r.version) + " already holds alias '" + r.alias + "'", actor,
                        r.run_id, r.node, at);
    tx.commit();
    return out;
  }
  if (current) {
    Stmt s = m.db.prepare("UPDATE model_aliases SET until = ?1 WHERE id = ?2");
    s.bind(1, at).bind(2, current->row);
    s.run();
  }
  {
    Stmt s = m.db.prepare(
        "INSERT INTO model_aliases (model_id, alias, version_id, since, actor, reason, action, rollback_to, run_id, "
        "node) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'promote', ?7, ?8, ?9)");
    s.bind(1, *model).bind(2, r.alias).bind(3, key->id).bind(4, at).bind(5, actor).bind(6, opt(r.reason));
    std::optional<int64_t> back;
    if (current) back = current->row;
    s.bind(7, back).bind(8, opt(r.run_id)).bind(9, opt(r.node));
    s.run();
  }
  if (r.decision)
    m.insert_decision(*model, r.alias, key->id, champion_id, *r.decision, true, r.decision->reason, actor, r.run_id,
                      r.node, at);
  tx.commit();
  out.outcome = PromoteResult::Outcome::Moved;
  return out;
}

Result<Decision> ModelRegistry::record_rejection(const std::string& model_name, int64_t candidate,
                                                 const std::string& alias, int64_t champion, const DecisionInput& d,
                                                 const std::string& actor, const std::string& run_id,
                                                 const std::string& node) {
  Impl& m = *impl_;
  if (std::string e = check_alias_name(alias); !e.empty()) return Error{e};
  Tx tx(m.db);
  auto model = m.need_model(model_name);
  if (!model) return Error{model.error()};
  auto cand = m.need_version(model_name, *model, candidate);
  if (!cand) return Error{cand.error()};
  std::optional<int64_t> champion_id;
  if (champion) {
    auto ch = m.need_version(model_name, *model, champion);
    if (!ch) return Error{ch.error()};
    champion_id = ch->id;
  }
  auto step_ok = m.check_step_ref(run_id);
  if (!step_ok) return Error{step_ok.error()};
  const int64_t at = d.at ? d.at : now_ms();
  const std::string who = actor.empty() ? default_actor() : actor;
  m.insert_decision(*model, alias, cand->id, champion_id, d, false, d.reason, who, run_id, node, at);
  Decision out{m.db.query_int("SELECT last_insert_rowid()"), model_name, alias, candidate, champion, d.gate,
               d.inputs_json.empty() ? "{}" : d.inputs_json, false, d.reason, who, run_id, node, at};
  tx.commit();
  return out;
}

Result<RollbackResult> ModelRegistry::rollback(const std::string& model_name, const std::string& alias,
                                               const std::string& actor, const std::string& reason) {
  Impl& m = *impl_;
  Tx tx(m.db);
  auto model = m.need_model(model_name);
  if (!model) return Error{model.error()};
  std::optional<Impl::Holding> current = m.holding(*model, alias);
  if (!current) return m.no_alias(model_name, *model, alias);
  if (!current->rollback_to)
    return Error{"alias '" + alias + "' of model '" + model_name + "' has no earlier holder to roll back to (version " +
                 std::to_string(current->version) + " was its first)"};
  int64_t target_id = 0;
  std::optional<int64_t> further;
  {
    Stmt s = m.db.prepare("SELECT version_id, rollback_to FROM model_aliases WHERE id = ?1");
    s.bind(1, *current->rollback_to);
    if (!s.step()) throw StoreError("alias history row " + std::to_string(*current->rollback_to) + " is missing");
    target_id = s.int64(0);
    further = s.opt_int64(1);
  }
  const int64_t target = m.version_number(target_id);
  {
    Stmt s = m.db.prepare("SELECT archived_at IS NOT NULL FROM model_versions WHERE id = ?1");
    s.bind(1, target_id);
    s.step();
    if (s.int64(0))
      return Error{"cannot roll alias '" + alias + "' of model '" + model_name + "' back to version " +
                   std::to_string(target) + ": it is archived"};
  }
  const int64_t at = Impl::at_or_after(0, current->since);
  {
    Stmt s = m.db.prepare("UPDATE model_aliases SET until = ?1 WHERE id = ?2");
    s.bind(1, at).bind(2, current->row);
    s.run();
  }
  {
    Stmt s = m.db.prepare(
        "INSERT INTO model_aliases (model_id, alias, version_id, since, actor, reason, action, rollback_to) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'rollback', ?7)");
    s.bind(1, *model).bind(2, alias).bind(3, target_id).bind(4, at);
    s.bind(5, actor.empty() ? default_actor() : actor).bind(6, opt(reason)).bind(7, further);
    s.run();
  }
  tx.commit();
  return RollbackResult{current->version, target};
}

Result<ModelVersion> ModelRegistry::archive(const std::string& model_name, int64_t version, const std::string& actor) {
  Impl& m = *impl_;
  Tx tx(m.db);
  auto model = m.need_model(model_name);
  if (!model) return Error{model.error()};
  auto key = m.need_version(model_name, *model, version);
  if (!key) return Error{key.error()};
  {
    Stmt s = m.db.prepare("SELECT alias FROM model_aliases WHERE version_id = ?1 AND until IS NULL ORDER BY alias");
    s.bind(1, key->id);
    std::vector<std::string> held;
    while (s.step()) held.push_back("'" + s.text(0) + "'");
    if (!held.empty())
      return Error{"version " + std::to_string(version) + " of model '" + model_name + "' holds alias" +
                   (held.size() > 1 ? "es " : " ") + join(held) + ": move " + (held.size() > 1 ? "them" : "it") +
                   " to another version before archiving"};
  }
  if (!key->archived) {
    Stmt s = m.db.prepare("UPDATE model_versions SET archived_at = ?1, archived_by = ?2 WHERE id = ?3");
    s.bind(1, now_ms()).bind(2, actor.empty() ? default_actor() : actor).bind(3, key->id);
    s.run();
  }
  ModelVersion v = m.read_version(*model, version);
  tx.commit();
  return v;
}

void ModelRegistry::read_snapshot(const std::function<void()>& read) {
  Tx tx(impl_->db, Tx::Mode::Deferred);
  read();
  tx.commit();
}

std::vector<ModelSummary> ModelRegistry::list_models() {
  Impl& m = *impl_;
  Tx tx(m.db, Tx::Mode::Deferred);
  std::vector<ModelSummary> out;
  std::vector<int64_t> ids;
  {
    Stmt s = m.db.prepare(
        "SELECT m.id, m.name, m.created_at, "
        "(SELECT count(*) FROM model_versions v WHERE v.model_id = m.id), "
        "(SELECT coalesce(max(version), 0) FROM model_versions v WHERE v.model_id = m.id), "
        "max(coalesce((SELECT max(created_at) FROM model_versions v WHERE v.model_id = m.id), 0), "
        "    coalesce((SELECT max(since) FROM model_aliases h WHERE h.model_id = m.id), 0)) "
        "FROM models m ORDER BY m.name");
    while (s.step()) {
      ids.push_back(s.int64(0));
      out.push_back(ModelSummary{s.text(1), s.int64(2), s.int64(3), s.int64(4), s.int64(5), {}});
    }
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    Stmt s = m.db.prepare(
        "SELECT h.alias, v.version FROM model_aliases h JOIN model_versions v ON v.id = h.version_id "
        "WHERE h.model_id = ?1 AND h.until IS NULL ORDER BY h.alias");
    s.bind(1, ids[i]);
    while (s.step()) out[i].aliases.emplace_back(s.text(0), s.int64(1));
  }
  tx.commit();
  return out;
}

Result<ModelSummary> ModelRegistry::model(const std::string& name) {
  for (ModelSummary& s : list_models())
    if (s.name == name) return std::move(s);
  return impl_->no_model(name);
}

Result<std::vector<ModelVersion>> ModelRegistry::versions(const std::string& model_name) {
  Impl& m = *impl_;
  Tx tx(m.db, Tx::Mode::Deferred);
  auto model = m.need_model(model_name);
  if (!model) return Error{model.error()};
  auto out = m.read_versions("WHERE v.model_id = ?1 ORDER BY v.version", *model);
  tx.commit();
  return out;
}

Result<ModelVersion> ModelRegistry::version(const std::string& model_name, int64_t version) {
  Impl& m = *impl_;
  Tx tx(m.db, Tx::Mode::Deferred);
  auto model = m.need_model(model_name);
  if (!model) return Error{model.error()};
  if (!m.version_key(*model, version)) return m.no_version(model_name, *model, version);
  ModelVersion v = m.read_version(*model, version);
  tx.commit();
  return v;
}

Result<ModelVersion> ModelRegistry::resolve(const std::string& model_name, const std::string& ref) {
  Impl& m = *impl_;
  Tx tx(m.db, Tx::Mode::Deferred);
  auto model = m.need_model(model_name);
  if (!model) return Error{model.error()};
  int64_t number = 0;
  if (auto n = parse_version(ref)) {
    if (!m.version_key(*model, *n)) return m.no_version(model_name, *model, *n);
    number = *n;
  } else if (ref == "latest") {
    Stmt s = m.db.prepare("SELECT max(version) FROM model_versions WHERE model_id = ?1 AND archived_at IS NULL");
    s.bind(1, *model);
    s.step();
    if (s.is_null(0)) return Error{"model '" + model_name + "' has no unarchived version"};
    number = s.int64(0);
  } else {
    auto h = m.holding(*model, ref);
    if (!h) return m.no_alias(model_name, *model, ref);
    number = h->version;
  }
  ModelVersion v = m.read_version(*model, number);
  tx.commit();
  return v;
}

Result<std::optional<int64_t>> ModelRegistry::holder(const std::string& model_name, const std::string& alias) {
  Impl& m = *impl_;
  auto model = m.need_model(model_name);
  if (!model) return Error{model.error()};
  auto h = m.holding(*model, alias);
  if (!h) return std::optional<int64_t>();
  return std::optional<int64_t>(h->version);
}

Result<std::vector<AliasEvent>> ModelRegistry::history(const std::string& model_name, const std::string& alias) {
  Impl& m = *impl_;
  Tx tx(m.db, Tx::Mode::Deferred);
  auto model = m.need_model(model_name);
  if (!model) return Error{model.error()};
  Stmt s = m.db.prepare(
      "SELECT h.id, h.alias, v.version, h.since, h.until, h.actor, h.reason, h.action, "
      "(SELECT pv.version FROM model_aliases p JOIN model_versions pv ON pv.id = p.version_id "
      " WHERE p.model_id = h.model_id AND p.alias = h.alias AND p.id < h.id ORDER BY p.id DESC LIMIT 1), "
      "h.run_id, h.node FROM model_aliases h JOIN model_versions v ON v.id = h.version_id "
      "WHERE h.model_id = ?1 AND (?2 IS NULL OR h.alias = ?2) ORDER BY h.id");
  s.bind(1, *model).bind(2, opt(alias));
  std::vector<AliasEvent> out;
  while (s.step())
    out.push_back(AliasEvent{s.int64(0), model_name, s.text(1), s.int64(2), s.int64(3), s.opt_int64(4), s.text(5),
                             s.text(6), s.text(7), s.int64(8), s.text(9), s.text(10)});
  tx.commit();
  return out;
}

Result<std::vector<Decision>> ModelRegistry::decisions(const std::string& model_name) {
  Impl& m = *impl_;
  Tx tx(m.db, Tx::Mode::Deferred);
  auto model = m.need_model(model_name);
  if (!model) return Error{model.error()};
  Stmt s = m.db.prepare(
      "SELECT d.id, d.alias, c.version, ch.version, d.gate, d.inputs_json, d.promoted, d.reason, d.actor, d.run_id, "
      "d.node, d.at FROM model_decisions d JOIN model_versions c ON c.id = d.candidate_id "
      "LEFT JOIN model_versions ch ON ch.id = d.champion_id WHERE d.model_id = ?1 ORDER BY d.id");
  s.bind(1, *model);
  std::vector<Decision> out;
  while (s.step())
    out.push_back(Decision{s.int64(0), model_name, s.text(1), s.int64(2), s.int64(3), s.text(4), s.text(5),
                           s.int64(6) != 0, s.text(7), s.text(8), s.text(9), s.text(10), s.int64(11)});
  tx.commit();
  return out;
}

std::vector<std::string> ModelRegistry::referenced_digests() {
  Stmt s = impl_->db.prepare(
      "SELECT DISTINCT a.digest FROM model_versions v JOIN artifacts a ON a.id = v.artifact_id ORDER BY a.digest");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

std::vector<ModelVersion> ModelRegistry::versions_with_artifact(const std::string& digest) {
  Impl& m = *impl_;
  Tx tx(m.db, Tx::Mode::Deferred);
  auto id = m.artifact_id(digest);
  std::vector<ModelVersion> out;
  if (id) out = m.read_versions("WHERE v.artifact_id = ?1 ORDER BY m.name, v.version", *id);
  tx.commit();
  return out;
}

}  // namespace sluice::registry
