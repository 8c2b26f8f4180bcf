#pragma once
// The model registry: named models with numbered versions (an artifact in the
// CAS, its format, metrics, params, tags and lineage), aliases ("production",
// "staging", anything) that point at one version each, an append-only history
// of every alias move, and the promotion decisions taken by gates. It lives in
// the metadata database (tables from the "model registry" migration), so
// several processes may use it at once: every change is one BEGIN IMMEDIATE
// transaction, and the database itself forbids two holders of one alias, an
// alias on an archived version, and edits of the history. See docs/registry.md.
//
// User mistakes (an unknown model, version or alias; an archived version) are
// returned as Result errors, one line, no trailing period. Failures of the
// database itself throw StoreError. A ModelRegistry is used by one thread at a
// time; other threads and processes open their own.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "registry/artifact_store.h"
#include "registry/store.h"

namespace sluice::registry {

// Model names: [a-z0-9][a-z0-9_-]* (like workflow names). Aliases:
// [a-z][a-z0-9_-]*, and not "latest": an alias never looks like a version.
bool is_model_name(std::string_view name);
bool is_alias_name(std::string_view alias);
// "" or why `name` / `alias` is not valid ("model name 'X' is invalid: ...").
std::string check_model_name(std::string_view name);
std::string check_alias_name(std::string_view alias);

// Who is acting: $SLUICE_ACTOR, else the OS user name, else "uid N".
std::string default_actor();

struct MetricValue {
  std::string name;
  double value = 0;  // may be NaN
};

// Where a version came from. `run_id`/`node` name the step that produced the
// artifact (empty when it was not produced by a recorded step); `inputs` are
// the artifacts that step read (the data version).
struct ModelLineage {
  std::string run_id, node, step;  // step: the workflow's step ("train" for node "train[lr=0.1]")
  std::string workflow_name, workflow_digest, git_commit;
  struct Input {
    std::string name, digest;
  };
  std::vector<Input> inputs;  // by name
  std::string registered_run, registered_node;  // the step that registered it, if one did
};

struct ModelVersion {
  std::string model;
  int64_t version = 0;
  std::string digest;  // "sha256:<hex>" or "sha256:<hex>.tree"
  ArtifactKind kind = ArtifactKind::File;
  int64_t size = 0;
  std::string filename;  // the file or folder name it was registered under
  std::string format, description;
  std::vector<MetricValue> metrics;                       // by name
  std::string params_json = "{}";                         // a JSON object
  std::vector<std::pair<std::string, std::string>> tags;  // by key
  ModelLineage lineage;
  std::string actor;  // who registered it
  int64_t created_at = 0;
  std::optional<int64_t> archived_at;
  std::string archived_by;
  std::vector<std::string> aliases;  // held now, by name
  bool archived() const { return archived_at.has_value(); }
  // The metric's value, or nullopt.
  std::optional<double> metric(std::string_view name) const;
};

struct ModelSummary {
  std::string name;
  int64_t created_at = 0;
  int64_t versions = 0;        // how many, archived included
  int64_t latest = 0;          // the highest version number (0: none)
  int64_t updated_at = 0;      // the last registration or alias move
  std::vector<std::pair<std::string, int64_t>> aliases;  // alias -> version, by alias
};

// One holding of an alias: `version` held it from `since` until `until`
// (nullopt: still holds it). `action` is how it got there ("promote",
// "rollback"); `previous_version` is the holder it replaced (0: none).
struct AliasEvent {
  int64_t id = 0;  // increases along the history
  std::string model, alias;
  int64_t version = 0;
  int64_t since = 0;
  std::optional<int64_t> until;
  std::string actor, reason, action;
  int64_t previous_version = 0;
  std::string run_id, node;  // the step that moved it, if one did
};

// A promotion decision: candidate vs champion (the alias's holder then) under
// `gate`, with the inputs the gate saw, and the outcome.
struct Decision {
  int64_t id = 0;
  std::string model, alias;
  int64_t candidate = 0;
  int64_t champion = 0;  // 0: the alias had no holder
  std::string gate;      // "" when none
  std::string inputs_json;
  bool promoted = false;
  std::string reason, actor, run_id, node;
  int64_t at = 0;
};

// A new version. The artifact must be in the CAS already (its row in
// `artifacts` is added if missing). Lineage digests must be recorded artifacts.
struct NewVersion {
  std::string model;  // created on first registration
  std::string digest;
  ArtifactKind kind = ArtifactKind::File;
  int64_t size = 0;
  std::string filename;
  std::string format, description;
  std::vector<MetricValue> metrics;
  std::string params_json = "{}";
  std::vector<std::pair<std::string, std::string>> tags;
  ModelLineage lineage;  // step and workflow_name are read back from the store, not written
  std::string actor;
  int64_t at = 0;  // 0 = now
};

// What a gate decided, recorded with the promotion it allowed (or alone).
struct DecisionInput {
  std::string gate;         // "" = none
  std::string inputs_json;  // what the gate saw
  std::string reason;
  int64_t at = 0;  // record_rejection: when (0 = now); promote uses PromoteRequest::at
};

struct PromoteRequest {
  std::string model;
  int64_t version = 0;
  std::string alias;
  std::string actor, reason;
  std::string run_id, node;  // the step promoting, if one is
  // Compare-and-set: move only if the alias's holder is still `expected`
  // (0 = no holder). A gate evaluated against a champion uses this, so a
  // concurrent move makes it evaluate again instead of deciding on stale data.
  std::optional<int64_t> expected;
  std::optional<DecisionInput> decision;  // recorded in the same transaction
  int64_t at = 0;  // 0 = now (taken under the write lock, so history times never go back)
};

struct PromoteResult {
  enum class Outcome {
    Moved,          // the alias now points at the version
    AlreadyHeld,    // it already did; nothing changed (a decision, if given, is recorded as not promoted)
    HolderChanged,  // `expected` no longer holds it; nothing changed
  };
  Outcome outcome = Outcome::Moved;
  int64_t previous = 0;  // the holder before (0: none)
};

struct RollbackResult {
  int64_t from = 0, to = 0;  // versions
};

class ModelRegistry {
 public:
  // Opens (creating and migrating) the metadata database at `db_path`.
  // Throws StoreError like open_sqlite_store.
  explicit ModelRegistry(const std::string& db_path);
  ~ModelRegistry();
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // Adds the next version of `v.model` (creating the model). Idempotent for a
  // step: a version of the model with the same digest registered by the same
  // (registered_run, registered_node) is returned instead of a new one, so a
  // retried step does not register twice.
  Result<ModelVersion> register_version(const NewVersion& v);

  // Moves `alias` to `version` atomically and appends to its history.
  // Errors: unknown model or version, an archived version, a bad alias name.
  Result<PromoteResult> promote(const PromoteRequest& r);

  // Records a decision that did not promote (a gate that did not hold).
  // `champion` is the holder the gate saw (0: none).
  Result<Decision> record_rejection(const std::string& model, int64_t candidate, const std::string& alias,
                                    int64_t champion, const DecisionInput& d, const std::string& actor,
                                    const std::string& run_id = {}, const std::string& node = {});

  // Moves `alias` back to the holder it had before the current one's
  // promotion; repeated rollbacks walk further back. Errors: no holder, no
  // earlier holder, or the earlier holder is archived.
  Result<RollbackResult> rollback(const std::string& model, const std::string& alias, const std::string& actor,
                                  const std::string& reason = {});

  // Archives a version (idempotent). Error: it holds an alias.
  Result<ModelVersion> archive(const std::string& model, int64_t version, const std::string& actor);

  // ---- reads ----
  // Calls `read`, during which every read of this registry sees one state
  // of the database (one read transaction): a page that shows a model's
  // versions, history and decisions shows them as of one moment.
  void read_snapshot(const std::function<void()>& read);
  std::vector<ModelSummary> list_models();
  Result<ModelSummary> model(const std::string& name);
  Result<std::vector<ModelVersion>> versions(const std::string& model);  // oldest first
  Result<ModelVersion> version(const std::string& model, int64_t version);
  // `ref` is a version number, "latest" (the highest unarchived version) or an
  // alias. Errors say which of model / version / alias is missing.
  Result<ModelVersion> resolve(const std::string& model, const std::string& ref);
  // The alias's current holder (nullopt: none). Error: unknown model.
  Result<std::optional<int64_t>> holder(const std::string& model, const std::string& alias);
  // Every alias move of the model (or of one alias), oldest first.
  Result<std::vector<AliasEvent>> history(const std::string& model, const std::string& alias = {});
  Result<std::vector<Decision>> decisions(const std::string& model);  // oldest first
  // Every artifact any version is, archived versions included: what a
  // garbage collector must keep (with, for a tree, the files it lists).
  // Sorted, distinct. Lineage inputs are not included.
  std::vector<std::string> referenced_digests();
  // The versions whose artifact is `digest` (for `sluice lineage DIGEST`).
  std::vector<ModelVersion> versions_with_artifact(const std::string& digest);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Splits "NAME@REF" into its parts; `ref` is "" without '@'. False for an
// empty name or an empty REF after '@'.
bool split_model_ref(const std::string& text, std::string& name, std::string& ref);

}  // namespace sluice::registry
