#pragma once
// The metadata store: what happened in every run (runs, steps, attempts,
// status changes, values, metrics, artifacts, lineage, cache keys, events).
// The engine writes batches of small plain records; every batch is one
// transaction, so a crash loses whole batches, never half of one. Reads return
// plain structs. No database types appear here: SQLite is one implementation
// (sqlite_store.h), PostgreSQL can be another. Times are integer milliseconds
// since the Unix epoch. A Store is used by one thread at a time.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace sluice::registry {

// A failure of the store itself (I/O, a full disk, a corrupt or too new
// database, a write that breaks an invariant such as a step that was never
// created). These are internal errors of the engine, not user mistakes.
class StoreError : public std::runtime_error {
 public:
  explicit StoreError(const std::string& message, int code = 0, std::string sql = {})
      : std::runtime_error(message), code_(code), sql_(std::move(sql)) {}
  int code() const { return code_; }               // SQLite's extended result code, or 0
  const std::string& sql() const { return sql_; }  // the statement that failed, if any

 private:
  int code_;
  std::string sql_;
};

enum class Trigger { Cli, Api, Schedule, Webhook, Retry, Rerun, Resume, Child };
enum class RunStatus { Queued, Running, Succeeded, Failed, Cancelled };
enum class StepStatus { Waiting, Running, Retrying, Succeeded, Cached, Failed, Skipped, Cancelled };
enum class AttemptStatus { Running, Succeeded, Failed, Cancelled };
enum class ArtifactKind { File, Tree };
enum class TokenScope { Read, Trigger, Admin };  // sluice serve; each includes the ones before it
enum class FireOutcome { Queued, Skipped };      // a schedule's fire: a run was queued / overlap = skip

// The lower-case names stored in the database ("schedule", "cached", ...).
const char* to_string(Trigger t);
const char* to_string(RunStatus s);
const char* to_string(StepStatus s);
const char* to_string(AttemptStatus s);
const char* to_string(ArtifactKind k);
std::optional<Trigger> parse_trigger(std::string_view s);
std::optional<RunStatus> parse_run_status(std::string_view s);
std::optional<StepStatus> parse_step_status(std::string_view s);
std::optional<AttemptStatus> parse_attempt_status(std::string_view s);
std::optional<ArtifactKind> parse_artifact_kind(std::string_view s);
const char* to_string(TokenScope s);    // "read", "trigger", "admin"
const char* to_string(FireOutcome o);   // "queued", "skipped"
std::optional<TokenScope> parse_token_scope(std::string_view s);
std::optional<FireOutcome> parse_fire_outcome(std::string_view s);
bool is_final(RunStatus s);   // succeeded, failed, cancelled
bool is_final(StepStatus s);  // succeeded, cached, failed, skipped, cancelled

int64_t now_ms();  // the system clock, ms since the epoch

// ---- Writes ---------------------------------------------------------------
// One struct per kind. Empty strings are stored as NULL ("not known"). Every
// write is idempotent: re-applying a batch that may already have committed
// (after a crash) changes nothing. A step is named by (run_id, node) and must
// have been created by a SetStepStatus first (earlier in the same batch is
// fine); a run by a CreateRun; a digest by a PutArtifact. Every member has a
// default, so designated initializers name only what they set.

// Records a workflow file; the first sighting of (name, digest) wins.
struct PutWorkflow {
  std::string name{};
  std::string digest{};  // sha256 of the file's bytes
  std::string source{};  // the file's text
  std::string path{};
  int64_t at = 0;
};

// Creates a run of a workflow recorded by PutWorkflow. A no-op if it exists.
struct CreateRun {
  std::string id{};  // time-sortable, e.g. "20261127-040253-3fa9c1"
  std::string workflow_name{};
  std::string workflow_digest{};
  std::string params_json = "{}";
  Trigger trigger = Trigger::Cli;
  RunStatus status = RunStatus::Queued;
  int64_t at = 0;  // created_at
  std::string sluice_version{};
  std::string git_commit{};
  std::string parent_run{};  // retry/rerun/resume/child: the run it came from
  // The process running the run, so a later sluice can tell a run whose
  // engine died (kill -9, power cut) from one still going: its pid and an id
  // of that process's life (boot id and start time) that a reused pid lacks.
  int64_t owner_pid = 0;     // 0 = no owner process (e.g. queued by the API)
  std::string owner_start{};
  bool no_cache = false;     // started with --no-cache
  // The run's options beyond params (engine/recorded_options.h), as a JSON
  // object; "" = "{}", the defaults. Creating a run that exists changes
  // nothing, except that a queued run's options are set by the process that
  // claimed it (its CreateRun with status running).
  std::string options_json{};
};

// A status change of a run. Running sets started_at (once), a final status
// sets finished_at. A final status is not left for a non-final one (that
// write is ignored), so a late or re-applied batch cannot reopen a finished
// run; another final status replaces it (last commit wins).
struct SetRunStatus {
  std::string run_id{};
  RunStatus status = RunStatus::Running;
  int64_t at = 0;
  std::string error{};  // why it failed or was cancelled
};

// Creates the step on its first write (`step` and `matrix_json` are kept
// from it), then records each status change and appends it to the step's
// transitions. Running sets started_at (once), a final status finished_at.
// Same rule as SetRunStatus: an ignored write leaves no transition either.
// A non-empty `cache_key` replaces the recorded one.
struct SetStepStatus {
  std::string run_id{};
  std::string node{};         // instance name, e.g. "train[lr=0.1]"
  std::string step{};         // the workflow's step, e.g. "train"; "" = node
  std::string matrix_json{};  // the instance's matrix values; "" = "{}"
  StepStatus status = StepStatus::Waiting;
  int64_t at = 0;
  std::string skip_reason{};  // Skipped: why
  std::string error{};        // Failed: why
  std::string cache_key{};
  // How the cache decided for the step (for `sluice why`); a non-empty one
  // replaces the recorded one: "hit RUN NODE", "miss", "off step" (cache =
  // false), "off run" (--no-cache), "off no-outputs", "reused RUN NODE".
  std::string cache_note{};
};

// Attempt `number` (1, 2, ...) of a step began. Raises the step's attempt count.
struct StartAttempt {
  std::string run_id{};
  std::string node{};
  int number = 1;
  int64_t at = 0;
  std::string log_path{};
  // The attempt's process group (its leader's pid), when it runs as one,
  // and process_start_id() of the leader (engine/recovery.h), against pid
  // reuse: what `sluice resume` ends when this engine dies. 0 / "" = none.
  int64_t pgid = 0;
  std::string pgid_start{};
};

// Attempt `number` ended; the attempt must have been started.
struct FinishAttempt {
  std::string run_id{};
  std::string node{};
  int number = 1;
  AttemptStatus status = AttemptStatus::Succeeded;
  int64_t at = 0;
  std::optional<int> exit_code{};  // absent when killed by a signal or never exec'd
  std::optional<int> signal{};
  std::string log_path{};    // "" keeps the one given to StartAttempt
  std::string log_digest{};  // the log's digest in the artifact store
  std::string error{};
};

// A value (key=value) a step produced; the last write of a key wins.
struct SetValue {
  std::string run_id{};
  std::string node{};
  std::string key{};
  std::string value{};
};

// A metric a step reported. `seq` is the metric's ordinal within the step
// (1, 2, ...), which makes re-applying idempotent; 0 appends with the next
// free ordinal (not idempotent). NaN is stored as NULL and read back as NaN.
struct AddMetric {
  std::string run_id{};
  std::string node{};
  std::string name{};
  double value = 0;
  std::optional<int64_t> step{};  // e.g. a training round
  int64_t at = 0;
  int64_t seq = 0;
};

// An artifact in the content-addressed store. A no-op if it is recorded,
// except that `data` is added to a row without it.
struct PutArtifact {
  std::string digest{};
  ArtifactKind kind = ArtifactKind::File;
  int64_t size = 0;  // bytes (a tree: the sum of its files)
  int64_t at = 0;
  // A small file's bytes, when its object was written without a sync of its
  // own (ArtifactStore::Batch, SmallFiles::KeptByCaller): this write makes
  // them durable, and a lost object is restored from them.
  std::optional<std::string> data{};
};

// Lineage: the step produced artifact `digest` as its output `name` at `path`
// (relative to its work dir).
struct AddOutput {
  std::string run_id{};
  std::string node{};
  std::string name{};
  std::string digest{};
  std::string path{};
};

// Lineage: the step consumed `digest` as its input `name`, produced by
// (from_run, from_node, from_output) when it came from a step (a cached
// output's producer may be an earlier run); empty when it came from outside.
struct AddInput {
  std::string run_id{};
  std::string node{};
  std::string name{};
  std::string digest{};
  std::string from_run{};
  std::string from_node{};
  std::string from_output{};
};

// The step's successful result may be reused for `cache_key`; a later
// producer of the same key replaces an earlier one.
struct PutCacheEntry {
  std::string cache_key{};
  std::string run_id{};
  std::string node{};
  int64_t at = 0;
};

// One part of a step's cache key ("definition", "input:data",
// "value:pick.auc", "plugin:storage", ...) and the digest it contributed.
struct AddKeyPart {
  std::string run_id{};
  std::string node{};
  std::string part{};
  std::string digest{};
};

// A line of the run's event log. `seq` is the event's ordinal within the run
// (1, 2, ...; idempotent); 0 appends with the next free ordinal.
struct AddEvent {
  std::string run_id{};
  int64_t seq = 0;
  int64_t at = 0;
  std::string kind{};  // e.g. "step_started"
  std::string node{};  // "" for run-level events
  std::string message{};
};

// ---- sluice serve: writes ---------------------------------------------------
// What the HTTP server keeps beside the run history: API tokens (hashed),
// Idempotency-Key responses, webhook deliveries, schedules and their fires,
// and the queue of runs it starts. They go through apply() like the rest, so
// a schedule's fire commits in the same transaction as the run it creates.

// An API token; only the SHA-256 of its secret is kept. A no-op if `id` exists.
struct PutToken {
  std::string id{};    // public, e.g. "tok_3fa9c1d2": what `token list` and `revoke` show
  std::string hash{};  // sha256 hex of the secret token
  TokenScope scope = TokenScope::Read;
  std::string workflow{};  // "" = every workflow
  std::string description{};
  int64_t at = 0;
  std::optional<int64_t> expires_at{};
};

// Revokes a token; the first revocation's time is kept.
struct RevokeToken {
  std::string id{};
  int64_t at = 0;
};

// The response given to a request with an Idempotency-Key. A no-op if the
// (token, key) pair is recorded.
struct PutIdempotencyKey {
  std::string token_id{};
  std::string key{};
  std::string request_hash{};  // what the request asked for (method, path, body)
  int status = 202;
  std::string response{};      // the JSON body returned
  int64_t at = 0;
};

// Forgets Idempotency-Keys recorded before `before`.
struct ExpireIdempotencyKeys {
  int64_t before = 0;
};

// A webhook delivery handled (X-GitHub-Delivery) and what it answered.
// A no-op if the delivery is recorded.
struct PutDelivery {
  std::string id{};
  std::string event{};     // "push", "release", ...
  std::string response{};  // the JSON body returned
  int64_t at = 0;
};

// A schedule as the server loaded it from its workflow: created with its
// watermark at `watermark` (it fires after that, not for the past); later
// writes update the definition and never move the watermark.
struct PutSchedule {
  std::string workflow{};
  std::string cron{}, timezone{}, on_dst_gap{}, on_dst_repeat{};
  int64_t watermark = 0;  // ms since the epoch
  int64_t at = 0;
};

// One fire of a schedule, keyed by (workflow, nominal time): recorded once,
// it raises the watermark to `nominal`. Re-applying it with the same run is a
// no-op; a fire already recorded with another run is an error (another server
// fired it first), so the batch holding the second run fails whole.
struct FireSchedule {
  std::string workflow{};
  int64_t nominal = 0;       // the scheduled time, ms since the epoch
  std::string run_id{};      // "" when skipped
  FireOutcome outcome = FireOutcome::Queued;
  int64_t missed = 0;        // earlier fire times passed over by catchup just before this one
  int64_t at = 0;            // when it fired
};

// A fire's run was still unfinished past the schedule's deadline; the first
// time seen is kept.
struct MarkDeadlineMissed {
  std::string workflow{};
  int64_t nominal = 0;
  int64_t at = 0;
};

// Moves a schedule's watermark forward past fire times that will not run
// (catchup), adding `missed` to its count once. A no-op when the watermark
// is already at or past `watermark`.
struct SkipFires {
  std::string workflow{};
  int64_t watermark = 0;
  int64_t missed = 0;
  int64_t at = 0;
};

// Puts a run (created queued) on the server's queue. A no-op if it is there.
struct QueueRun {
  std::string run_id{};
  std::string after_run{};  // start only once this run is final ("" = no wait)
  int64_t at = 0;
};

// The `sluice run` process that will execute a queued run claims it, and
// becomes the run's owner (CreateRun's owner_pid, owner_start). Claiming
// twice with the same process is a no-op; a run gone from the queue
// (cancelled) or claimed by another process is an error, so a run never runs twice.
struct ClaimQueuedRun {
  std::string run_id{};
  int64_t pid = 0;
  std::string start{};  // an id of the process's life (engine/recovery.h), against pid reuse
  int64_t at = 0;
};

// Takes a run off the queue (it finished, or was cancelled before it started).
struct DequeueRun {
  std::string run_id{};
};

// ---- sluice resume: writes --------------------------------------------------
// A run whose engine died is taken over by the process that resumes it
// (docs/store.md, "Crash recovery"). The owner is compared and set in the
// batch's transaction, so of two processes that try, one wins.

// The batch applies only while run `run_id`'s recorded owner is still
// (pid, start): an error otherwise (another process took the run over),
// which fails the whole batch.
struct ExpectOwner {
  std::string run_id{};
  int64_t pid = 0;
  std::string start{};
};

// Process (pid, start) takes over run `run_id` from its dead owner
// (dead_pid, dead_start), compared and set: an error when the run's owner is
// no longer the dead one, or the run is not running or failed. The run goes
// back to running (finished_at and error cleared, started_at kept); a queue
// row of the run (`sluice serve`) names the new process.
struct ResumeRun {
  std::string run_id{};
  int64_t dead_pid = 0;
  std::string dead_start{};
  int64_t pid = 0;
  std::string start{};
  int64_t at = 0;
};

// Step `node` of a resumed run, interrupted by its engine's death, goes back
// to waiting (whatever its status, even a final one), with a transition;
// its finished_at and error are cleared. Its attempts stay as recorded.
struct ReopenStep {
  std::string run_id{};
  std::string node{};
  int64_t at = 0;
};

using Write = std::variant<PutWorkflow, CreateRun, SetRunStatus, SetStepStatus, StartAttempt,
                           FinishAttempt, SetValue, AddMetric, PutArtifact, AddOutput, AddInput,
                           PutCacheEntry, AddKeyPart, AddEvent,
                           // sluice serve
                           PutToken, RevokeToken, PutIdempotencyKey, ExpireIdempotencyKeys, PutDelivery,
                           PutSchedule, FireSchedule, MarkDeadlineMissed, SkipFires, QueueRun, ClaimQueuedRun,
                           DequeueRun,
                           // sluice resume
                           ExpectOwner, ResumeRun, ReopenStep>;

// ---- Reads ----------------------------------------------------------------
// Absent times are std::nullopt; absent text is "".

struct WorkflowRow {
  int64_t id = 0;
  std::string name{}, digest{}, source{}, path{};
  int64_t first_seen = 0;
};

struct RunRow {
  std::string id{};
  int64_t workflow_id = 0;
  std::string workflow_name{}, workflow_digest{};
  std::string params_json{};
  Trigger trigger = Trigger::Cli;
  RunStatus status = RunStatus::Queued;
  int64_t created_at = 0;
  std::optional<int64_t> started_at{}, finished_at{};
  std::string sluice_version{}, git_commit{}, parent_run{}, error{};
  int64_t owner_pid = 0;
  std::string owner_start{};
  bool no_cache = false;
  std::string options_json{};  // "{}" when none were recorded
};

struct StepRow {
  std::string run_id{}, node{}, step{}, matrix_json{};
  StepStatus status = StepStatus::Waiting;
  int attempts = 0;
  std::string cache_key{}, skip_reason{}, error{};
  std::optional<int64_t> started_at{}, finished_at{};  // first Running; reaching a final status
  std::string cache_note{};
};

struct TransitionRow {
  int64_t at = 0;
  StepStatus status = StepStatus::Waiting;
};

struct AttemptRow {
  int number = 0;
  AttemptStatus status = AttemptStatus::Running;
  int64_t started_at = 0;
  std::optional<int64_t> finished_at{};
  std::optional<int> exit_code{}, signal{};
  std::string log_path{}, log_digest{}, error{};
  int64_t pgid = 0;          // 0 = not recorded
  std::string pgid_start{};
};

struct ValueRow {
  std::string key{}, value{};
};

struct MetricRow {
  int64_t seq = 0;
  std::string name{};
  double value = 0;
  std::optional<int64_t> step{};
  int64_t at = 0;
};

struct OutputRow {
  std::string name{}, digest{}, path{};
};

struct InputRow {
  std::string name{}, digest{}, from_run{}, from_node{}, from_output{};
};

struct ArtifactRow {
  std::string digest{};
  ArtifactKind kind = ArtifactKind::File;
  int64_t size = 0;
  int64_t created_at = 0;
};

// One lineage edge of an artifact: the step that produced it (name, path of
// the output) or consumed it (name of the input; path is "").
struct LineageRow {
  std::string run_id{}, node{}, name{}, path{};
};

struct CacheRow {
  std::string cache_key{}, run_id{}, node{};
  int64_t created_at = 0;
};

struct CachedResult {
  CacheRow entry{};
  std::vector<OutputRow> outputs{};  // by name
  std::vector<ValueRow> values{};    // by key
};

struct KeyPartRow {
  std::string part{}, digest{};
};

struct EventRow {
  int64_t id = 0;  // global and increasing: a cursor over every run's events
  std::string run_id{};
  int64_t seq = 0;
  int64_t at = 0;
  std::string kind{}, node{}, message{};
};

// ---- sluice serve: reads ----------------------------------------------------

struct TokenRow {
  std::string id{};
  TokenScope scope = TokenScope::Read;
  std::string workflow{}, description{};
  int64_t created_at = 0;
  std::optional<int64_t> expires_at{}, revoked_at{};
};

struct IdempotencyRow {
  std::string request_hash{};
  int status = 0;
  std::string response{};
  int64_t created_at = 0;
};

struct DeliveryRow {
  std::string id{}, event{}, response{};
  int64_t received_at = 0;
};

struct ScheduleRow {
  std::string workflow{}, cron{}, timezone{}, on_dst_gap{}, on_dst_repeat{};
  int64_t watermark = 0;
  std::optional<int64_t> last_fire{};  // nominal time of the newest fire
  std::string last_run{};              // the run the newest queued fire created
  int64_t fires = 0, missed = 0;       // fires recorded; fire times missed in all
  int64_t deadline_misses = 0;         // fires whose run missed the deadline
  int64_t updated_at = 0;
};

struct FireRow {
  std::string workflow{};
  int64_t nominal = 0;
  std::string run_id{};
  FireOutcome outcome = FireOutcome::Queued;
  int64_t missed = 0;
  int64_t fired_at = 0;
  std::optional<int64_t> deadline_missed_at{};
};

struct QueueRow {
  std::string run_id{}, after_run{};
  int64_t queued_at = 0;
  // Set once a process claimed it: the claiming (or resuming) process; its
  // identity is the run's owner (RunRow::owner_pid, owner_start).
  std::optional<int64_t> pid{}, claimed_at{};
};

struct RunCount {
  std::string workflow{};
  RunStatus status = RunStatus::Queued;
  int64_t count = 0;
};

// A step that reached succeeded or failed, for the duration histogram;
// `transition_id` increases, so it is a cursor.
struct FinishedStep {
  int64_t transition_id = 0;
  std::string workflow{}, step{};
  StepStatus status = StepStatus::Succeeded;
  int64_t started_at = 0, finished_at = 0;
};

// list_runs: newest first. `cursor` is the last id of the previous page
// (keyset pagination: the next page holds ids below it).
struct RunFilter {
  std::string workflow{};             // "" = every workflow
  std::optional<RunStatus> status{};  // nullopt = any
  int limit = 50;                     // at most this many (at least 1)
  std::string cursor{};               // "" = from the newest
};

struct RunPage {
  std::vector<RunRow> runs{};
  std::string next_cursor{};  // "" when this is the last page
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies the whole batch in one write transaction, or nothing of it (the
  // StoreError says which write failed). Waits for other writers. Once it
  // returns, the batch survives a crash or power cut.
  virtual void apply(const std::vector<Write>& batch) = 0;

  virtual std::optional<WorkflowRow> workflow(int64_t id) = 0;
  virtual std::optional<RunRow> run(const std::string& id) = 0;
  virtual RunPage list_runs(const RunFilter& filter) = 0;
  // Every run in `status`, oldest first (e.g. queued and running runs to resume).
  virtual std::vector<RunRow> runs_in_status(RunStatus status) = 0;

  // A run's steps in the order they were created; the rest ordered by number,
  // key, seq, name or part.
  virtual std::vector<StepRow> steps(const std::string& run_id) = 0;
  virtual std::optional<StepRow> step(const std::string& run_id, const std::string& node) = 0;
  virtual std::vector<TransitionRow> transitions(const std::string& run_id, const std::string& node) = 0;
  virtual std::vector<AttemptRow> attempts(const std::string& run_id, const std::string& node) = 0;
  virtual std::vector<ValueRow> values(const std::string& run_id, const std::string& node) = 0;
  virtual std::vector<MetricRow> metrics(const std::string& run_id, const std::string& node) = 0;
  virtual std::vector<OutputRow> outputs(const std::string& run_id, const std::string& node) = 0;
  virtual std::vector<InputRow> inputs(const std::string& run_id, const std::string& node) = 0;

  virtual std::optional<ArtifactRow> artifact(const std::string& digest) = 0;
  // Lineage: the steps that produced / consumed an artifact, oldest run first.
  virtual std::vector<LineageRow> producers(const std::string& digest) = 0;
  virtual std::vector<LineageRow> consumers(const std::string& digest) = 0;

  virtual std::optional<CacheRow> find_cache(const std::string& cache_key) = 0;
  // The cache entry of `cache_key` with its step's outputs and values, in one
  // query: what a cache hit restores (the executor asks once per step).
  virtual std::optional<CachedResult> cached_result(const std::string& cache_key) = 0;
  // The cache entries under the keys the steps of run `run_id` recorded,
  // each with its outputs and values, by key: what a re-run of that run's
  // workflow looks up, read in three queries instead of one per step.
  virtual std::vector<CachedResult> cached_results_of_run(const std::string& run_id) = 0;
  // The newest run of `workflow` whose id sorts before `before_run`; "" if none.
  virtual std::string previous_run(const std::string& workflow, const std::string& before_run) = 0;
  // The newest run of a workflow recorded from the file at `path` (absolute,
  // as in PutWorkflow::path), as {run id, workflow name}; nullopt if none.
  virtual std::optional<std::pair<std::string, std::string>> latest_run_of_file(const std::string& path) = 0;
  virtual std::vector<KeyPartRow> key_parts(const std::string& run_id, const std::string& node) = 0;
  // The newest run of `workflow` (older than `before_run`, if given) in which
  // `node` succeeded or was cached: what `sluice why` compares key parts with.
  virtual std::optional<StepRow> last_successful(const std::string& workflow, const std::string& node,
                                                 const std::string& before_run = {}) = 0;

  // The run's events in order; `after_seq` skips those already seen.
  virtual std::vector<EventRow> events(const std::string& run_id, int64_t after_seq = 0) = 0;
  // The run's newest event, and how many of its events are of `kind`.
  virtual std::optional<EventRow> last_event(const std::string& run_id) = 0;
  virtual int64_t count_events(const std::string& run_id, const std::string& kind) = 0;

  // Every recorded artifact, newest first.
  virtual std::vector<ArtifactRow> list_artifacts() = 0;
  // Forgets the cache entries produced by runs of `workflow` ("" = every
  // workflow), only those of step `step` when given (every instance of a
  // matrix step); one transaction. Returns how many were removed. Outputs,
  // lineage and key parts stay: only later cache lookups change.
  virtual int64_t clear_cache(const std::string& workflow, const std::string& step) = 0;
  // ---- sluice serve ----
  virtual std::optional<TokenRow> token_by_hash(const std::string& hash) = 0;
  virtual std::optional<TokenRow> token(const std::string& id) = 0;
  virtual std::vector<TokenRow> tokens() = 0;  // oldest first
  virtual std::optional<IdempotencyRow> idempotency_key(const std::string& token_id, const std::string& key) = 0;
  virtual std::optional<DeliveryRow> delivery(const std::string& id) = 0;
  virtual std::optional<ScheduleRow> schedule(const std::string& workflow) = 0;
  virtual std::vector<ScheduleRow> schedules() = 0;  // by workflow
  // The newest `limit` fires of a schedule, newest first.
  virtual std::vector<FireRow> fires(const std::string& workflow, int limit) = 0;
  virtual std::vector<QueueRow> run_queue() = 0;  // oldest first
  // The oldest `limit` runs no process has claimed yet, and how many there are.
  virtual std::vector<QueueRow> unclaimed_runs(int limit) = 0;
  virtual int64_t count_unclaimed() = 0;
  virtual std::optional<QueueRow> queued_run(const std::string& run_id) = 0;
  // Runs per (workflow, status).
  virtual std::vector<RunCount> count_runs() = 0;
  // Steps that reached succeeded or failed after transition `after`, oldest
  // first, at most `limit`; those that never started are left out.
  virtual std::vector<FinishedStep> finished_steps(int64_t after, int limit) = 0;
  // The instances of `step` in the newest run of `workflow` in which it succeeded.
  virtual std::vector<StepRow> last_succeeded_instances(const std::string& workflow, const std::string& step) = 0;
};

}  // namespace sluice::registry
