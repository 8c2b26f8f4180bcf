#include "registry/sqlite_store.h"

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <map>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "registry/db.h"
#include "registry/schema.h"
#include "registry/sqlite_serve.h"

namespace sluice::registry {
namespace {

// Empty text is stored as NULL ("not known").
std::optional<std::string_view> opt(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return std::string_view(s);
}

std::optional<int64_t> final_at(bool final, int64_t at) {
  if (final) return at;
  return std::nullopt;
}

template <class E>
E decode(std::optional<E> value, const std::string& text, const char* what) {
  if (!value) throw StoreError("unknown " + std::string(what) + " '" + text + "' in the database");
  return *value;
}

const char* write_name(const Write& w) {
  static constexpr const char* kNames[] = {
      "PutWorkflow", "CreateRun",  "SetRunStatus", "SetStepStatus", "StartAttempt",
      "FinishAttempt", "SetValue", "AddMetric",    "PutArtifact",   "AddOutput",
      "AddInput",    "PutCacheEntry", "AddKeyPart", "AddEvent",
      // sluice serve
      "PutToken", "RevokeToken", "PutIdempotencyKey", "ExpireIdempotencyKeys", "PutDelivery", "PutSchedule",
      "FireSchedule", "MarkDeadlineMissed", "SkipFires", "QueueRun", "ClaimQueuedRun", "DequeueRun",
      // sluice resume
      "ExpectOwner", "ResumeRun", "ReopenStep"};
  static_assert(std::size(kNames) == std::variant_size_v<Write>);
  return kNames[w.index()];
}

// What a write is about, for an error message: "run R", "run R, node N".
std::string write_subject(const Write& w) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, PutWorkflow>) return "workflow " + x.name + " " + x.digest;
        else if constexpr (std::is_same_v<T, CreateRun>) return "run " + x.id;
        else if constexpr (std::is_same_v<T, PutArtifact>) return "artifact " + x.digest;
        else if constexpr (std::is_same_v<T, SetRunStatus> || std::is_same_v<T, AddEvent>) return "run " + x.run_id;
        else if constexpr (std::is_same_v<T, PutToken> || std::is_same_v<T, RevokeToken>) return "token " + x.id;
        else if constexpr (std::is_same_v<T, PutIdempotencyKey>) return "idempotency key " + x.key;
        else if constexpr (std::is_same_v<T, ExpireIdempotencyKeys>) return "idempotency keys";
        else if constexpr (std::is_same_v<T, PutDelivery>) return "delivery " + x.id;
        else if constexpr (std::is_same_v<T, PutSchedule> || std::is_same_v<T, FireSchedule> ||
                           std::is_same_v<T, MarkDeadlineMissed> || std::is_same_v<T, SkipFires>)
          return "schedule " + x.workflow;
        else if constexpr (std::is_same_v<T, QueueRun> || std::is_same_v<T, ClaimQueuedRun> ||
                           std::is_same_v<T, DequeueRun> || std::is_same_v<T, ExpectOwner> ||
                           std::is_same_v<T, ResumeRun>)
          return "run " + x.run_id;
        else return "run " + x.run_id + ", node " + x.node;
      },
      w);
}

// Column lists shared by the queries that read whole rows.
constexpr const char* kRunCols =
    "r.id, r.workflow_id, r.workflow_name, w.digest, r.params_json, r.triggered_by, r.status, "
    "r.created_at, r.started_at, r.finished_at, r.sluice_version, r.git_commit, r.parent_run, r.error, "
    "r.owner_pid, r.owner_start, r.no_cache, r.options_json "
    "FROM runs r JOIN workflows w ON w.id = r.workflow_id";

RunRow read_run(const Stmt& s) {
  RunRow r;
  r.id = s.text(0);
  r.workflow_id = s.int64(1);
  r.workflow_name = s.text(2);
  r.workflow_digest = s.text(3);
  r.params_json = s.text(4);
  r.trigger = decode(parse_trigger(s.text(5)), s.text(5), "trigger");
  r.status = decode(parse_run_status(s.text(6)), s.text(6), "run status");
  r.created_at = s.int64(7);
  r.started_at = s.opt_int64(8);
  r.finished_at = s.opt_int64(9);
  r.sluice_version = s.text(10);
  r.git_commit = s.text(11);
  r.parent_run = s.text(12);
  r.error = s.text(13);
  r.owner_pid = s.is_null(14) ? 0 : s.int64(14);
  r.owner_start = s.text(15);
  r.no_cache = s.int64(16) != 0;
  r.options_json = s.text(17);
  return r;
}

constexpr const char* kStepCols =
    "s.run_id, s.node, s.step, s.matrix_json, s.status, s.attempts, s.cache_key, s.skip_reason, "
    "s.error, s.started_at, s.finished_at, s.cache_note";

StepRow read_step(const Stmt& s) {
  StepRow r;
  r.run_id = s.text(0);
  r.node = s.text(1);
  r.step = s.text(2);
  r.matrix_json = s.text(3);
  r.status = decode(parse_step_status(s.text(4)), s.text(4), "step status");
  r.attempts = static_cast<int>(s.int64(5));
  r.cache_key = s.text(6);
  r.skip_reason = s.text(7);
  r.error = s.text(8);
  r.started_at = s.opt_int64(9);
  r.finished_at = s.opt_int64(10);
  r.cache_note = s.text(11);
  return r;
}

std::optional<int> opt_int(const Stmt& s, int col) {
  if (s.is_null(col)) return std::nullopt;
  return static_cast<int>(s.int64(col));
}

class SqliteStore final : public Store {
 public:
  // The CHECK constraints of the schema (a status among its names) are not
  // evaluated for this connection's writes: every value they guard comes
  // from an enum's to_string() here, and SQLite evaluates `x IN (3 or more
  // constants)` by building a temporary b-tree for every row written — eight
  // per recorded step, more than half of the CPU time of recording a run
  // (bench/README.md, "executor overhead"). They still bind other writers.
  explicit SqliteStore(const std::string& path) : db_(path) {
    migrate(db_);
    db_.exec("PRAGMA ignore_check_constraints=ON");
  }

  void apply(const std::vector<Write>& batch) override {
    if (batch.empty()) return;
    // Step and artifact rows are never deleted, so the ids remembered from
    // committed batches stay true; those learnt in a batch that rolls back
    // may not exist, and are all forgotten then (as they are when many).
    if (step_ids_.size() + artifact_ids_.size() > kMaxRememberedIds) forget_ids();
    Tx tx(db_);
    for (size_t i = 0; i < batch.size(); ++i) {
      try {
        std::visit([this](const auto& w) { put(w); }, batch[i]);
      } catch (const StoreError& e) {
        forget_ids();
        throw StoreError("write " + std::to_string(i + 1) + " of " + std::to_string(batch.size()) + " (" +
                             write_name(batch[i]) + ", " + write_subject(batch[i]) + "): " + e.what(),
                         e.code(), e.sql());
      }
    }
    try {
      tx.commit();
    } catch (...) {
      forget_ids();
      throw;
    }
  }

  // ---- reads ----

  std::optional<WorkflowRow> workflow(int64_t id) override {
    Stmt s = db_.prepare("SELECT id, name, digest, source, path, first_seen FROM workflows WHERE id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return WorkflowRow{s.int64(0), s.text(1), s.text(2), s.text(3), s.text(4), s.int64(5)};
  }

  std::optional<RunRow> run(const std::string& id) override {
    Stmt s = db_.prepare(std::string("SELECT ") + kRunCols + " WHERE r.id = ?1");
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return read_run(s);
  }

  RunPage list_runs(const RunFilter& filter) override {
    // One statement per combination of filters, so each can use its index:
    // (workflow_name, id), (status, id) or the primary key, newest first.
    std::string sql = std::string("SELECT ") + kRunCols;
    std::string where;
    auto cond = [&](const char* c) { where += where.empty() ? " WHERE " : " AND "; where += c; };
    if (!filter.workflow.empty()) cond("r.workflow_name = :workflow");
    if (filter.status) cond("r.status = :status");
    if (!filter.cursor.empty()) cond("r.id < :cursor");
    sql += where + " ORDER BY r.id DESC LIMIT :limit";
    Stmt s = db_.prepare(sql);
    if (!filter.workflow.empty()) s.bind(":workflow", filter.workflow);
    if (filter.status) s.bind(":status", to_string(*filter.status));
    if (!filter.cursor.empty()) s.bind(":cursor", filter.cursor);
    int limit = std::max(filter.limit, 1);
    s.bind(":limit", limit + 1);  // one more tells whether there is a next page
    RunPage page;
    while (s.step()) page.runs.push_back(read_run(s));
    if (page.runs.size() > static_cast<size_t>(limit)) {
      page.runs.pop_back();
      page.next_cursor = page.runs.back().id;
    }
    return page;
  }

  std::vector<RunRow> runs_in_status(RunStatus status) override {
    Stmt s = db_.prepare(std::string("SELECT ") + kRunCols + " WHERE r.status = ?1 ORDER BY r.id");
    s.bind(1, to_string(status));
    std::vector<RunRow> out;
    while (s.step()) out.push_back(read_run(s));
    return out;
  }

  std::vector<StepRow> steps(const std::string& run_id) override {
    Stmt s = db_.prepare(std::string("SELECT ") + kStepCols + " FROM steps s WHERE s.run_id = ?1 ORDER BY s.id");
    s.bind(1, run_id);
    std::vector<StepRow> out;
    while (s.step()) out.push_back(read_step(s));
    return out;
  }

  std::optional<StepRow> step(const std::string& run_id, const std::string& node) override {
    Stmt s = db_.prepare(std::string("SELECT ") + kStepCols + " FROM steps s WHERE s.run_id = ?1 AND s.node = ?2");
    s.bind(1, run_id).bind(2, node);
    if (!s.step()) return std::nullopt;
    return read_step(s);
  }

  std::vector<TransitionRow> transitions(const std::string& run_id, const std::string& node) override {
    Stmt s = db_.prepare(
        "SELECT t.at, t.status FROM step_transitions t JOIN steps s ON s.id = t.step_id "
        "WHERE s.run_id = ?1 AND s.node = ?2 ORDER BY t.at, t.id");
    s.bind(1, run_id).bind(2, node);
    std::vector<TransitionRow> out;
    while (s.step()) out.push_back({s.int64(0), decode(parse_step_status(s.text(1)), s.text(1), "step status")});
    return out;
  }

  std::vector<AttemptRow> attempts(const std::string& run_id, const std::string& node) override {
    Stmt s = db_.prepare(
        "SELECT a.number, a.status, a.started_at, a.finished_at, a.exit_code, a.signal, a.log_path, "
        "a.log_digest, a.error, a.pgid, a.pgid_start FROM attempts a JOIN steps s ON s.id = a.step_id "
        "WHERE s.run_id = ?1 AND s.node = ?2 ORDER BY a.number");
    s.bind(1, run_id).bind(2, node);
    std::vector<AttemptRow> out;
    while (s.step()) {
      AttemptRow a;
      a.number = static_cast<int>(s.int64(0));
      a.status = decode(parse_attempt_status(s.text(1)), s.text(1), "attempt status");
      a.started_at = s.int64(2);
      a.finished_at = s.opt_int64(3);
      a.exit_code = opt_int(s, 4);
      a.signal = opt_int(s, 5);
      a.log_path = s.text(6);
      a.log_digest = s.text(7);
      a.error = s.text(8);
      a.pgid = s.is_null(9) ? 0 : s.int64(9);
      a.pgid_start = s.text(10);
      out.push_back(std::move(a));
    }
    return out;
  }

  std::vector<ValueRow> values(const std::string& run_id, const std::string& node) override {
    Stmt s = db_.prepare(
        "SELECT v.key, v.value FROM step_values v JOIN steps s ON s.id = v.step_id "
        "WHERE s.run_id = ?1 AND s.node = ?2 ORDER BY v.key");
    s.bind(1, run_id).bind(2, node);
    std::vector<ValueRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1)});
    return out;
  }

  std::vector<MetricRow> metrics(const std::string& run_id, const std::string& node) override {
    Stmt s = db_.prepare(
        "SELECT m.seq, m.name, m.value, m.step, m.at FROM metrics m JOIN steps s ON s.id = m.step_id "
        "WHERE s.run_id = ?1 AND s.node = ?2 ORDER BY m.seq");
    s.bind(1, run_id).bind(2, node);
    std::vector<MetricRow> out;
    while (s.step()) out.push_back({s.int64(0), s.text(1), s.real(2), s.opt_int64(3), s.int64(4)});
    return out;
  }

  std::vector<OutputRow> outputs(const std::string& run_id, const std::string& node) override {
    Stmt s = db_.prepare(
        "SELECT o.name, a.digest, o.path FROM step_outputs o JOIN steps s ON s.id = o.step_id "
        "JOIN artifacts a ON a.id = o.artifact_id WHERE s.run_id = ?1 AND s.node = ?2 ORDER BY o.name");
    s.bind(1, run_id).bind(2, node);
    std::vector<OutputRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2)});
    return out;
  }

  std::vector<InputRow> inputs(const std::string& run_id, const std::string& node) override {
    Stmt s = db_.prepare(
        "SELECT i.name, a.digest, f.run_id, f.node, i.from_output FROM step_inputs i "
        "JOIN steps s ON s.id = i.step_id JOIN artifacts a ON a.id = i.artifact_id "
        "LEFT JOIN steps f ON f.id = i.from_step WHERE s.run_id = ?1 AND s.node = ?2 ORDER BY i.name");
    s.bind(1, run_id).bind(2, node);
    std::vector<InputRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.text(3), s.text(4)});
    return out;
  }

  std::optional<ArtifactRow> artifact(const std::string& digest) override {
    Stmt s = db_.prepare("SELECT digest, kind, size, created_at FROM artifacts WHERE digest = ?1");
    s.bind(1, digest);
    if (!s.step()) return std::nullopt;
    return ArtifactRow{s.text(0), decode(parse_artifact_kind(s.text(1)), s.text(1), "artifact kind"), s.int64(2),
                       s.int64(3)};
  }

  std::vector<LineageRow> producers(const std::string& digest) override {
    Stmt s = db_.prepare(
        "SELECT s.run_id, s.node, o.name, o.path FROM artifacts a JOIN step_outputs o ON o.artifact_id = a.id "
        "JOIN steps s ON s.id = o.step_id WHERE a.digest = ?1 ORDER BY s.run_id, s.id, o.name");
    s.bind(1, digest);
    std::vector<LineageRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.text(3)});
    return out;
  }

  std::vector<LineageRow> consumers(const std::string& digest) override {
    Stmt s = db_.prepare(
        "SELECT s.run_id, s.node, i.name FROM artifacts a JOIN step_inputs i ON i.artifact_id = a.id "
        "JOIN steps s ON s.id = i.step_id WHERE a.digest = ?1 ORDER BY s.run_id, s.id, i.name");
    s.bind(1, digest);
    std::vector<LineageRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), {}});
    return out;
  }

  std::optional<CacheRow> find_cache(const std::string& cache_key) override {
    Stmt s = db_.prepare(
        "SELECT c.cache_key, s.run_id, s.node, c.created_at FROM cache_entries c "
        "JOIN steps s ON s.id = c.step_id WHERE c.cache_key = ?1");
    s.bind(1, cache_key);
    if (!s.step()) return std::nullopt;
    return CacheRow{s.text(0), s.text(1), s.text(2), s.int64(3)};
  }

  std::optional<CachedResult> cached_result(const std::string& cache_key) override {
    // Most lookups miss (a step that changed, a new run): one probe of the
    // key answers those.
    {
      Stmt probe = db_.prepare("SELECT 1 FROM cache_entries WHERE cache_key = ?1");
      probe.bind(1, cache_key);
      if (!probe.step()) return std::nullopt;
    }
    // One statement (one read snapshot): the entry, then its outputs, then its values.
    Stmt s = db_.prepare(
        "SELECT 0, s.run_id, s.node, c.created_at, NULL FROM cache_entries c JOIN steps s ON s.id = c.step_id "
        "WHERE c.cache_key = ?1 "
        "UNION ALL SELECT 1, o.name, a.digest, NULL, o.path FROM cache_entries c JOIN step_outputs o ON o.step_id = c.step_id "
        "JOIN artifacts a ON a.id = o.artifact_id WHERE c.cache_key = ?1 "
        "UNION ALL SELECT 2, v.key, v.value, NULL, NULL FROM cache_entries c JOIN step_values v ON v.step_id = c.step_id "
        "WHERE c.cache_key = ?1 ORDER BY 1, 2");
    s.bind(1, cache_key);
    std::optional<CachedResult> out;
    while (s.step()) {
      switch (s.int64(0)) {
        case 0: out = CachedResult{CacheRow{cache_key, s.text(1), s.text(2), s.int64(3)}, {}, {}}; break;
        case 1: if (out) out->outputs.push_back({s.text(1), s.text(2), s.text(4)}); break;
        default: if (out) out->values.push_back({s.text(1), s.text(2)}); break;
      }
    }
    return out;
  }

  std::vector<CachedResult> cached_results_of_run(const std::string& run_id) override {
    Tx snapshot(db_, Tx::Mode::Deferred);  // the three reads see one state
    std::vector<CachedResult> out;
    std::unordered_map<int64_t, size_t> by_step;  // an entry's step id -> its index in `out`
    int64_t lo = INT64_MAX, hi = INT64_MIN;       // the entries' step ids span [lo, hi]
    // No DISTINCT or ORDER BY in SQL (each would sort every row): a key two
    // steps of the run share repeats its rows, which are dropped here, and
    // each entry's few outputs and values are put in name order here.
    Stmt e = db_.prepare(
        "SELECT c.cache_key, s.run_id, s.node, c.created_at, c.step_id FROM steps p "
        "JOIN cache_entries c ON c.cache_key = p.cache_key JOIN steps s ON s.id = c.step_id WHERE p.run_id = ?1");
    e.bind(1, run_id);
    while (e.step()) {
      const int64_t step = e.int64(4);
      if (!by_step.emplace(step, out.size()).second) continue;
      out.push_back(CachedResult{CacheRow{e.text(0), e.text(1), e.text(2), e.int64(3)}, {}, {}});
      lo = std::min(lo, step);
      hi = std::max(hi, step);
    }
    if (out.empty()) return out;
    // The entries' outputs and values. Usually the entries' steps are the
    // steps of one or a few runs, close together in id order: reading the
    // id range [lo, hi] of the outputs and values tables in order is then far
    // cheaper than following every entry again. When they are scattered over
    // many runs, the range would hold mostly other steps' rows, so each
    // entry is followed from the run's steps as in the first query.
    const bool dense = static_cast<uint64_t>(hi - lo) <= 4 * static_cast<uint64_t>(out.size()) + 256;
    Stmt o = db_.prepare(
        dense ? "SELECT o.step_id, o.name, a.digest, o.path FROM step_outputs o JOIN artifacts a ON a.id = o.artifact_id "
                "WHERE o.step_id BETWEEN ?1 AND ?2"
              : "SELECT c.step_id, o.name, a.digest, o.path FROM steps p JOIN cache_entries c ON c.cache_key = p.cache_key "
                "JOIN step_outputs o ON o.step_id = c.step_id JOIN artifacts a ON a.id = o.artifact_id WHERE p.run_id = ?1");
    if (dense) o.bind(1, lo).bind(2, hi);
    else o.bind(1, run_id);
    while (o.step()) {
      auto it = by_step.find(o.int64(0));
      if (it == by_step.end()) continue;
      std::vector<OutputRow>& list = out[it->second].outputs;
      const std::string name = o.text(1);
      if (std::none_of(list.begin(), list.end(), [&](const OutputRow& x) { return x.name == name; }))
        list.push_back({name, o.text(2), o.text(3)});
    }
    Stmt v = db_.prepare(
        dense ? "SELECT v.step_id, v.key, v.value FROM step_values v WHERE v.step_id BETWEEN ?1 AND ?2"
              : "SELECT c.step_id, v.key, v.value FROM steps p JOIN cache_entries c ON c.cache_key = p.cache_key "
                "JOIN step_values v ON v.step_id = c.step_id WHERE p.run_id = ?1");
    if (dense) v.bind(1, lo).bind(2, hi);
    else v.bind(1, run_id);
    while (v.step()) {
      auto it = by_step.find(v.int64(0));
      if (it == by_step.end()) continue;
      std::vector<ValueRow>& list = out[it->second].values;
      const std::string key = v.text(1);
      if (std::none_of(list.begin(), list.end(), [&](const ValueRow& x) { return x.key == key; }))
        list.push_back({key, v.text(2)});
    }
    for (CachedResult& r : out) {
      std::sort(r.outputs.begin(), r.outputs.end(), [](const OutputRow& a, const OutputRow& b) { return a.name < b.name; });
      std::sort(r.values.begin(), r.values.end(), [](const ValueRow& a, const ValueRow& b) { return a.key < b.key; });
    }
    return out;
  }

  std::string previous_run(const std::string& workflow, const std::string& before_run) override {
    Stmt s = db_.prepare("SELECT id FROM runs WHERE workflow_name = ?1 AND id < ?2 ORDER BY id DESC LIMIT 1");
    s.bind(1, workflow).bind(2, before_run);
    return s.step() ? s.text(0) : std::string();
  }

  std::optional<std::pair<std::string, std::string>> latest_run_of_file(const std::string& path) override {
    // Per name the file was recorded under, its newest run (runs_by_workflow).
    Stmt s = db_.prepare(
        "SELECT (SELECT r.id FROM runs r WHERE r.workflow_name = w.name ORDER BY r.id DESC LIMIT 1) AS run, w.name "
        "FROM (SELECT DISTINCT name FROM workflows WHERE path = ?1) w WHERE run IS NOT NULL ORDER BY run DESC LIMIT 1");
    s.bind(1, path);
    if (!s.step()) return std::nullopt;
    return std::make_pair(s.text(0), s.text(1));
  }

  std::vector<KeyPartRow> key_parts(const std::string& run_id, const std::string& node) override {
    Stmt s = db_.prepare(
        "SELECT k.part, k.digest FROM cache_key_parts k JOIN steps s ON s.id = k.step_id "
        "WHERE s.run_id = ?1 AND s.node = ?2 ORDER BY k.part");
    s.bind(1, run_id).bind(2, node);
    std::vector<KeyPartRow> out;
    while (s.step()) out.push_back({s.text(0), s.text(1)});
    return out;
  }

  std::optional<StepRow> last_successful(const std::string& workflow, const std::string& node,
                                         const std::string& before_run) override {
    // Walks the workflow's runs newest first (index runs_by_workflow) and
    // probes each for the node (index on steps (run_id, node)).
    std::string sql = std::string("SELECT ") + kStepCols +
                      " FROM runs r JOIN steps s ON s.run_id = r.id AND s.node = :node"
                      " WHERE r.workflow_name = :workflow AND s.status IN ('succeeded', 'cached')";
    if (!before_run.empty()) sql += " AND r.id < :before";
    sql += " ORDER BY r.id DESC LIMIT 1";
    Stmt s = db_.prepare(sql);
    s.bind(":node", node).bind(":workflow", workflow);
    if (!before_run.empty()) s.bind(":before", before_run);
    if (!s.step()) return std::nullopt;
    return read_step(s);
  }

  std::vector<EventRow> events(const std::string& run_id, int64_t after_seq) override {
    Stmt s = db_.prepare(
        "SELECT id, run_id, seq, at, kind, node, message FROM events "
        "WHERE run_id = ?1 AND seq > ?2 ORDER BY seq");
    s.bind(1, run_id).bind(2, after_seq);
    std::vector<EventRow> out;
    while (s.step()) out.push_back({s.int64(0), s.text(1), s.int64(2), s.int64(3), s.text(4), s.text(5), s.text(6)});
    return out;
  }

  std::optional<EventRow> last_event(const std::string& run_id) override {
    Stmt s = db_.prepare(
        "SELECT id, run_id, seq, at, kind, node, message FROM events WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1");
    s.bind(1, run_id);
    if (!s.step()) return std::nullopt;
    return EventRow{s.int64(0), s.text(1), s.int64(2), s.int64(3), s.text(4), s.text(5), s.text(6)};
  }

  int64_t count_events(const std::string& run_id, const std::string& kind) override {
    Stmt s = db_.prepare("SELECT count(*) FROM events WHERE run_id = ?1 AND kind = ?2");
    s.bind(1, run_id).bind(2, kind);
    s.step();
    return s.int64(0);
  }

  std::vector<ArtifactRow> list_artifacts() override {
    Stmt s = db_.prepare("SELECT digest, kind, size, created_at FROM artifacts ORDER BY created_at DESC, id DESC");
    std::vector<ArtifactRow> out;
    while (s.step())
      out.push_back({s.text(0), decode(parse_artifact_kind(s.text(1)), s.text(1), "artifact kind"), s.int64(2),
                     s.int64(3)});
    return out;
  }

  int64_t clear_cache(const std::string& workflow, const std::string& step) override {
    std::string sql = "DELETE FROM cache_entries";
    if (!workflow.empty()) {
      sql += " WHERE step_id IN (SELECT s.id FROM runs r JOIN steps s ON s.run_id = r.id WHERE r.workflow_name = :workflow";
      if (!step.empty()) sql += " AND s.step = :step";
      sql += ")";
    } else if (!step.empty()) {
      sql += " WHERE step_id IN (SELECT id FROM steps WHERE step = :step)";
    }
    Tx tx(db_);
    Stmt s = db_.prepare(sql);
    if (!workflow.empty()) s.bind(":workflow", workflow);
    if (!step.empty()) s.bind(":step", step);
    s.run();
    int64_t removed = db_.changes();
    tx.commit();
    return removed;
  }

  // ---- sluice serve (registry/sqlite_serve.cc) ----

  std::optional<TokenRow> token_by_hash(const std::string& hash) override { return serve_sql::token_by_hash(db_, hash); }
  std::optional<TokenRow> token(const std::string& id) override { return serve_sql::token(db_, id); }
  std::vector<TokenRow> tokens() override { return serve_sql::tokens(db_); }
  std::optional<IdempotencyRow> idempotency_key(const std::string& token_id, const std::string& key) override {
    return serve_sql::idempotency_key(db_, token_id, key);
  }
  std::optional<DeliveryRow> delivery(const std::string& id) override { return serve_sql::delivery(db_, id); }
  std::optional<ScheduleRow> schedule(const std::string& workflow) override { return serve_sql::schedule(db_, workflow); }
  std::vector<ScheduleRow> schedules() override { return serve_sql::schedules(db_); }
  std::vector<FireRow> fires(const std::string& workflow, int limit) override {
    return serve_sql::fires(db_, workflow, limit);
  }
  std::vector<QueueRow> run_queue() override { return serve_sql::run_queue(db_); }
  std::vector<QueueRow> unclaimed_runs(int limit) override { return serve_sql::unclaimed_runs(db_, limit); }
  int64_t count_unclaimed() override { return serve_sql::count_unclaimed(db_); }
  std::optional<QueueRow> queued_run(const std::string& run_id) override { return serve_sql::queued_run(db_, run_id); }
  std::vector<RunCount> count_runs() override { return serve_sql::count_runs(db_); }
  std::vector<FinishedStep> finished_steps(int64_t after, int limit) override {
    return serve_sql::finished_steps(db_, after, limit);
  }
  std::vector<StepRow> last_succeeded_instances(const std::string& workflow, const std::string& step) override {
    std::string run_id = serve_sql::last_succeeded_run(db_, workflow, step);
    std::vector<StepRow> out;
    if (run_id.empty()) return out;
    for (StepRow& r : steps(run_id))
      if (r.step == step) out.push_back(std::move(r));
    return out;
  }

 private:
  static constexpr size_t kMaxRememberedIds = 200'000;

  void forget_ids() {
    step_ids_.clear();
    artifact_ids_.clear();
    last_step_id_ = 0;
  }

  static std::string step_key(const std::string& run_id, const std::string& node) { return run_id + '\n' + node; }

  // The id of a step this connection has seen, or 0 (no query).
  int64_t known_step_id(const std::string& run_id, const std::string& node) const {
    // Writes about one step come in a row: StartAttempt after SetStepStatus...
    if (last_step_id_ != 0 && node == last_step_.second && run_id == last_step_.first) return last_step_id_;
    auto it = step_ids_.find(step_key(run_id, node));
    return it != step_ids_.end() ? it->second : 0;
  }

  // The database id of a step; throws if it was never created.
  int64_t step_id(const std::string& run_id, const std::string& node) {
    if (last_step_id_ != 0 && node == last_step_.second && run_id == last_step_.first) return last_step_id_;
    int64_t id = known_step_id(run_id, node);
    if (id == 0) {
      Stmt s = db_.prepare("SELECT id FROM steps WHERE run_id = ?1 AND node = ?2");
      s.bind(1, run_id).bind(2, node);
      if (!s.step())
        throw StoreError("no step '" + node + "' in run '" + run_id + "' (a SetStepStatus must create it first)");
      id = s.int64(0);
      step_ids_.emplace(step_key(run_id, node), id);
    }
    last_step_ = {run_id, node};
    return last_step_id_ = id;
  }

  // The database id of an artifact; throws if it was never recorded.
  int64_t artifact_id(const std::string& digest) {
    if (auto it = artifact_ids_.find(digest); it != artifact_ids_.end()) return it->second;
    Stmt s = db_.prepare("SELECT id FROM artifacts WHERE digest = ?1");
    s.bind(1, digest);
    if (!s.step()) throw StoreError("no artifact " + digest + " (a PutArtifact must record it first)");
    const int64_t id = s.int64(0);
    artifact_ids_.emplace(digest, id);
    return id;
  }

  void require_run(const std::string& run_id) {
    Stmt s = db_.prepare("SELECT 1 FROM runs WHERE id = ?1");
    s.bind(1, run_id);
    if (!s.step()) throw StoreError("no run '" + run_id + "' (a CreateRun must create it first)");
  }

  void put(const PutWorkflow& w) {
    Stmt s = db_.prepare(
        "INSERT INTO workflows (name, digest, source, path, first_seen) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT (name, digest) DO NOTHING");
    s.bind(1, w.name).bind(2, w.digest).bind(3, w.source).bind(4, opt(w.path)).bind(5, w.at).run();
  }

  void put(const CreateRun& w) {
    int64_t workflow_id = 0;
    {
      Stmt s = db_.prepare("SELECT id FROM workflows WHERE name = ?1 AND digest = ?2");
      s.bind(1, w.workflow_name).bind(2, w.workflow_digest);
      if (!s.step())
        throw StoreError("no workflow '" + w.workflow_name + "' with digest " + w.workflow_digest +
                         " (a PutWorkflow must record it first)");
      workflow_id = s.int64(0);
    }
    Stmt s = db_.prepare(
        "INSERT INTO runs (id, workflow_id, workflow_name, params_json, triggered_by, status, status_at, "
        "created_at, started_at, finished_at, sluice_version, git_commit, parent_run, owner_pid, owner_start, no_cache, "
        "options_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) "
        "ON CONFLICT (id) DO UPDATE SET no_cache = excluded.no_cache, options_json = excluded.options_json "
        "WHERE runs.status = 'queued' AND excluded.status = 'running'");
    s.bind(1, w.id).bind(2, workflow_id).bind(3, w.workflow_name);
    s.bind(4, w.params_json.empty() ? std::string("{}") : w.params_json);
    s.bind(5, to_string(w.trigger)).bind(6, to_string(w.status)).bind(7, w.at);
    s.bind(8, final_at(w.status == RunStatus::Running, w.at)).bind(9, final_at(is_final(w.status), w.at));
    s.bind(10, w.sluice_version).bind(11, opt(w.git_commit)).bind(12, opt(w.parent_run));
    std::optional<int64_t> pid;
    if (w.owner_pid > 0) pid = w.owner_pid;
    s.bind(13, pid).bind(14, opt(w.owner_start)).bind(15, int64_t{w.no_cache ? 1 : 0});
    s.bind(16, w.options_json.empty() ? std::string("{}") : w.options_json);
    s.run();
  }

  // "Is final" is spelt out with '=' and OR and the new status's finality
  // bound (?6, ?12): a list of three or more constants after IN makes SQLite
  // build a temporary b-tree at every execution, and these run for every
  // state change of every step.
  void put(const SetRunStatus& w) {
    Stmt s = db_.prepare(
        "UPDATE runs SET status = ?2, status_at = ?3, "
        "started_at = CASE WHEN ?2 = 'running' THEN coalesce(started_at, ?3) ELSE started_at END, "
        "finished_at = ?4, error = ?5 "
        "WHERE id = ?1 AND NOT (?6 = 0 AND "
        "(status = 'succeeded' OR status = 'failed' OR status = 'cancelled'))");
    s.bind(1, w.run_id).bind(2, to_string(w.status)).bind(3, w.at);
    s.bind(4, final_at(is_final(w.status), w.at)).bind(5, opt(w.error)).bind(6, is_final(w.status));
    s.run();
    if (db_.changes() == 0) require_run(w.run_id);  // else: the run is final, the write ignored
  }

  // A step's first write usually creates it: tried as a plain insert first
  // (its id from last_insert_rowid), and only a step that exists already
  // goes through the upsert, with RETURNING when its id is not known.
  void put(const SetStepStatus& w) {
    const std::string_view matrix = w.matrix_json.empty() ? std::string_view("{}") : std::string_view(w.matrix_json);
    auto bind_row = [&](Stmt& s) {
      s.bind(1, w.run_id).bind(2, w.node).bind(3, w.step.empty() ? w.node : w.step).bind(4, matrix);
      s.bind(5, to_string(w.status)).bind(6, w.at).bind(7, opt(w.cache_key)).bind(8, opt(w.skip_reason));
      s.bind(9, opt(w.error)).bind(10, final_at(w.status == StepStatus::Running, w.at));
      s.bind(11, final_at(is_final(w.status), w.at)).bind(12, opt(w.cache_note));
    };
    int64_t id = known_step_id(w.run_id, w.node);
    if (id == 0) {
      Stmt s = db_.prepare(
          "INSERT INTO steps (run_id, node, step, matrix_json, status, status_at, cache_key, skip_reason, "
          "error, started_at, finished_at, cache_note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
          "ON CONFLICT (run_id, node) DO NOTHING");
      bind_row(s);
      s.run();
      if (db_.changes() == 1) id = db_.last_insert_rowid();
    } else {
      id = upsert_step(w, bind_row, false);
      if (id == 0) return;  // the step is final and the write is ignored
    }
    if (id == 0) {  // there, but not known to this connection
      id = upsert_step(w, bind_row, true);
      if (id == 0) return;
    }
    if (id != last_step_id_) {
      step_ids_.emplace(step_key(w.run_id, w.node), id);
      last_step_ = {w.run_id, w.node};
      last_step_id_ = id;
    }
    add_transition(id, w.at, w.status);
  }

  // The update of an existing step; its id (from RETURNING when `find_id`,
  // else the known one), or 0 when the step is final and the write ignored.
  template <class BindRow>
  int64_t upsert_step(const SetStepStatus& w, const BindRow& bind_row, bool find_id) {
    static const std::string kUpsert =
        "INSERT INTO steps (run_id, node, step, matrix_json, status, status_at, cache_key, skip_reason, "
        "error, started_at, finished_at, cache_note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
        "ON CONFLICT (run_id, node) DO UPDATE SET status = excluded.status, status_at = excluded.status_at, "
        "cache_key = coalesce(excluded.cache_key, steps.cache_key), skip_reason = excluded.skip_reason, "
        "cache_note = coalesce(excluded.cache_note, steps.cache_note), "
        "error = excluded.error, started_at = coalesce(steps.started_at, excluded.started_at), "
        "finished_at = excluded.finished_at "
        "WHERE NOT (?13 = 0 AND (steps.status = 'succeeded' OR steps.status = 'cached' OR "
        "steps.status = 'failed' OR steps.status = 'skipped' OR steps.status = 'cancelled'))";
    if (find_id) {
      static const std::string kUpsertReturning = kUpsert + " RETURNING id";
      Stmt s = db_.prepare(kUpsertReturning);
      bind_row(s);
      s.bind(13, is_final(w.status));
      return s.step() ? s.int64(0) : 0;
    }
    Stmt s = db_.prepare(kUpsert);
    bind_row(s);
    s.bind(13, is_final(w.status));
    s.run();
    return db_.changes() == 1 ? known_step_id(w.run_id, w.node) : 0;
  }

  // A re-applied transition (same status, same millisecond) is recorded once.
  void add_transition(int64_t step_id, int64_t at, StepStatus status) {
    Stmt t = db_.prepare("INSERT OR IGNORE INTO step_transitions (step_id, at, status) VALUES (?1, ?2, ?3)");
    t.bind(1, step_id).bind(2, at).bind(3, to_string(status)).run();
  }

  void put(const StartAttempt& w) {
    int64_t id = step_id(w.run_id, w.node);
    Stmt s = db_.prepare(
        "INSERT INTO attempts (step_id, number, status, started_at, log_path, pgid, pgid_start) "
        "VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6) ON CONFLICT (step_id, number) DO NOTHING");
    std::optional<int64_t> pgid;
    if (w.pgid > 0) pgid = w.pgid;
    s.bind(1, id).bind(2, w.number).bind(3, w.at).bind(4, opt(w.log_path)).bind(5, pgid).bind(6, opt(w.pgid_start)).run();
    Stmt u = db_.prepare("UPDATE steps SET attempts = max(attempts, ?2) WHERE id = ?1");
    u.bind(1, id).bind(2, w.number).run();
  }

  void put(const FinishAttempt& w) {
    Stmt s = db_.prepare(
        "UPDATE attempts SET status = ?3, finished_at = ?4, exit_code = ?5, signal = ?6, "
        "log_path = coalesce(?7, log_path), log_digest = coalesce(?8, log_digest), error = ?9 "
        "WHERE step_id = ?1 AND number = ?2");
    s.bind(1, step_id(w.run_id, w.node)).bind(2, w.number).bind(3, to_string(w.status)).bind(4, w.at);
    s.bind(5, w.exit_code).bind(6, w.signal).bind(7, opt(w.log_path)).bind(8, opt(w.log_digest));
    s.bind(9, opt(w.error)).run();
    if (db_.changes() == 0)
      throw StoreError("attempt " + std::to_string(w.number) + " was never started (a StartAttempt must come first)");
  }

  void put(const SetValue& w) {
    Stmt s = db_.prepare(
        "INSERT INTO step_values (step_id, key, value) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (step_id, key) DO UPDATE SET value = excluded.value");
    s.bind(1, step_id(w.run_id, w.node)).bind(2, w.key).bind(3, w.value).run();
  }

  void put(const AddMetric& w) {
    // SQLite turns NaN into NULL anyway; saying so keeps it deliberate.
    std::optional<double> value;
    if (!std::isnan(w.value)) value = w.value;
    Stmt s = db_.prepare(
        w.seq > 0 ? "INSERT INTO metrics (step_id, seq, name, value, step, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                    "ON CONFLICT (step_id, seq) DO UPDATE SET name = excluded.name, value = excluded.value, "
                    "step = excluded.step, at = excluded.at"
                  : "INSERT INTO metrics (step_id, seq, name, value, step, at) "
                    "SELECT ?1, coalesce(max(seq), 0) + 1, ?3, ?4, ?5, ?6 FROM metrics WHERE step_id = ?1");
    s.bind(1, step_id(w.run_id, w.node));
    if (w.seq > 0) s.bind(2, w.seq);
    s.bind(3, w.name).bind(4, value).bind(5, w.step).bind(6, w.at).run();
  }

  void put(const PutArtifact& w) {
    Stmt s = db_.prepare(
        "INSERT INTO artifacts (digest, kind, size, created_at, data) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT (digest) DO NOTHING");
    s.bind(1, w.digest).bind(2, to_string(w.kind)).bind(3, w.size).bind(4, w.at);
    if (w.data) s.bind_blob(5, *w.data);
    else s.bind(5, nullptr);
    s.run();
    // New: its id is the inserted row's; a known one is looked up when needed.
    if (db_.changes() == 1) {
      artifact_ids_.emplace(w.digest, db_.last_insert_rowid());
    } else if (w.data) {  // recorded before, maybe without bytes (its object was synced, or lost since)
      Stmt u = db_.prepare("UPDATE artifacts SET data = ?2 WHERE digest = ?1 AND data IS NULL");
      u.bind(1, w.digest).bind_blob(2, *w.data).run();
    }
  }

  void put(const AddOutput& w) {
    Stmt s = db_.prepare(
        "INSERT INTO step_outputs (step_id, name, artifact_id, path) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (step_id, name) DO UPDATE SET artifact_id = excluded.artifact_id, path = excluded.path");
    s.bind(1, step_id(w.run_id, w.node)).bind(2, w.name).bind(3, artifact_id(w.digest)).bind(4, w.path).run();
  }

  void put(const AddInput& w) {
    std::optional<int64_t> from;
    if (!w.from_run.empty()) from = step_id(w.from_run, w.from_node);
    Stmt s = db_.prepare(
        "INSERT INTO step_inputs (step_id, name, artifact_id, from_step, from_output) VALUES (?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT (step_id, name) DO UPDATE SET artifact_id = excluded.artifact_id, "
        "from_step = excluded.from_step, from_output = excluded.from_output");
    s.bind(1, step_id(w.run_id, w.node)).bind(2, w.name).bind(3, artifact_id(w.digest)).bind(4, from);
    s.bind(5, opt(w.from_output)).run();
  }

  void put(const PutCacheEntry& w) {
    Stmt s = db_.prepare(
        "INSERT INTO cache_entries (cache_key, step_id, created_at) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (cache_key) DO UPDATE SET step_id = excluded.step_id, created_at = excluded.created_at");
    s.bind(1, w.cache_key).bind(2, step_id(w.run_id, w.node)).bind(3, w.at).run();
  }

  void put(const AddKeyPart& w) {
    Stmt s = db_.prepare(
        "INSERT INTO cache_key_parts (step_id, part, digest) VALUES (?1, ?2, ?3) "
        "ON CONFLICT (step_id, part) DO UPDATE SET digest = excluded.digest");
    s.bind(1, step_id(w.run_id, w.node)).bind(2, w.part).bind(3, w.digest).run();
  }

  void put(const AddEvent& w) {
    Stmt s = db_.prepare(
        w.seq > 0 ? "INSERT INTO events (run_id, seq, at, kind, node, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                    "ON CONFLICT (run_id, seq) DO NOTHING"
                  : "INSERT INTO events (run_id, seq, at, kind, node, message) "
                    "SELECT ?1, coalesce(max(seq), 0) + 1, ?3, ?4, ?5, ?6 FROM events WHERE run_id = ?1");
    s.bind(1, w.run_id);
    if (w.seq > 0) s.bind(2, w.seq);
    s.bind(3, w.at).bind(4, w.kind).bind(5, opt(w.node)).bind(6, opt(w.message)).run();
  }

  void put(const PutToken& w) { serve_sql::put(db_, w); }
  void put(const RevokeToken& w) { serve_sql::put(db_, w); }
  void put(const PutIdempotencyKey& w) { serve_sql::put(db_, w); }
  void put(const ExpireIdempotencyKeys& w) { serve_sql::put(db_, w); }
  void put(const PutDelivery& w) { serve_sql::put(db_, w); }
  void put(const PutSchedule& w) { serve_sql::put(db_, w); }
  void put(const FireSchedule& w) { serve_sql::put(db_, w); }
  void put(const MarkDeadlineMissed& w) { serve_sql::put(db_, w); }
  void put(const SkipFires& w) { serve_sql::put(db_, w); }
  void put(const QueueRun& w) { serve_sql::put(db_, w); }
  void put(const ClaimQueuedRun& w) { serve_sql::put(db_, w); }
  void put(const DequeueRun& w) { serve_sql::put(db_, w); }

  // ---- sluice resume

  // The run's owner is (pid, start), or a StoreError saying who it is.
  void expect_owner(const std::string& run_id, int64_t pid, const std::string& start) {
    Stmt s = db_.prepare("SELECT owner_pid, owner_start FROM runs WHERE id = ?1");
    s.bind(1, run_id);
    if (!s.step()) throw StoreError("no run '" + run_id + "'");
    const int64_t owner = s.is_null(0) ? 0 : s.int64(0);
    if (owner != pid || s.text(1) != start)
      throw StoreError("run '" + run_id + "' has another owner (pid " + std::to_string(owner) + ")");
  }

  void put(const ExpectOwner& w) { expect_owner(w.run_id, w.pid, w.start); }

  void put(const ResumeRun& w) {
    expect_owner(w.run_id, w.dead_pid, w.dead_start);
    Stmt s = db_.prepare(
        "UPDATE runs SET owner_pid = ?2, owner_start = ?3, status = 'running', status_at = ?4, "
        "started_at = coalesce(started_at, ?4), finished_at = NULL, error = NULL "
        "WHERE id = ?1 AND (status = 'running' OR status = 'failed')");
    s.bind(1, w.run_id).bind(2, w.pid).bind(3, opt(w.start)).bind(4, w.at).run();
    if (db_.changes() == 0) throw StoreError("run '" + w.run_id + "' is neither running nor failed");
    Stmt q = db_.prepare("UPDATE run_queue SET pid = ?2 WHERE run_id = ?1");
    q.bind(1, w.run_id).bind(2, w.pid).run();
  }

  void put(const ReopenStep& w) {
    const int64_t id = step_id(w.run_id, w.node);
    Stmt s = db_.prepare(
        "UPDATE steps SET status = 'waiting', status_at = ?2, finished_at = NULL, error = NULL WHERE id = ?1");
    s.bind(1, id).bind(2, w.at).run();
    add_transition(id, w.at, StepStatus::Waiting);
  }

  Db db_;
  // Ids of rows seen or written, kept across committed batches (see apply()).
  std::unordered_map<std::string, int64_t> step_ids_;      // steps.id by step_key(run, node)
  std::unordered_map<std::string, int64_t> artifact_ids_;  // artifacts.id by digest
  std::pair<std::string, std::string> last_step_;  // the last one looked up, when last_step_id_ != 0
  int64_t last_step_id_ = 0;
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const std::string& path) { return std::make_unique<SqliteStore>(path); }

}  // namespace sluice::registry
