#include "engine/run_recorder.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "engine/executor.h"
#include "engine/recovery.h"
#include "engine/state_store.h"
#include "engine/test_hooks.h"
#include "engine/plan.h"
#include "engine/git_commit.h"
#include "registry/artifact_store.h"
#include "registry/sha256.h"
#include "registry/sqlite_store.h"
#include "sluice/version.h"

namespace sluice::engine {

namespace fs = std::filesystem;
namespace reg = sluice::registry;

std::string params_json(const dsl::ParamValues& params) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : params) j[k] = nlohmann::json::parse(v.to_json());
  return j.dump();
}

namespace {

int64_t ms_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

reg::StepStatus step_status(NodeState s) {
  switch (s) {
    case NodeState::Running: return reg::StepStatus::Running;
    case NodeState::Backoff: return reg::StepStatus::Retrying;
    case NodeState::Succeeded: return reg::StepStatus::Succeeded;
    case NodeState::Cached: return reg::StepStatus::Cached;
    case NodeState::Failed: return reg::StepStatus::Failed;
    case NodeState::Skipped: return reg::StepStatus::Skipped;
    case NodeState::Cancelled: return reg::StepStatus::Cancelled;
    default: return reg::StepStatus::Waiting;
  }
}

// What the writer thread needs of one event, copied on the executor thread.
struct Item {
  Event event;  // with record == nullptr
  int64_t at = 0;  // when it happened (the writer may commit it later)
  std::string node;
  std::optional<AttemptRecord> attempt;
  std::map<std::string, std::string> values;
  std::vector<std::pair<std::string, double>> metrics;
  std::map<std::string, std::string> outputs;  // name -> absolute path
  std::map<std::string, std::string> inputs;   // name -> absolute path
  std::string workdir;
  // The step cache's side (engine/step_cache.h).
  std::map<std::string, std::string> output_digests;
  std::map<std::string, InputSource> input_sources;
  std::string cache_key, cache_note;
  std::vector<KeyPart> key_parts;
};

// `path` relative to the step's work dir `dir`: the common case, a path
// inside it, is cut as a string; anything else goes through std::filesystem.
std::string relative_to(const std::string& path, const std::string& dir) {
  if (!dir.empty() && dir.back() != '/' && path.back() != '/' && path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
      path[dir.size()] == '/' && path.find("/.", dir.size()) == std::string::npos && path.find("//", dir.size()) == std::string::npos)
    return path.substr(dir.size() + 1);
  return fs::path(path).lexically_relative(dir).string();
}

const char* event_kind(Event::Kind k) {
  switch (k) {
    case Event::Kind::RunStarted: return "run_started";
    case Event::Kind::StepStarted: return "step_started";
    case Event::Kind::StepFinished: return "step_finished";
    case Event::Kind::StepRetrying: return "step_retrying";
    case Event::Kind::StepSkipped: return "step_skipped";
    case Event::Kind::StepCancelled: return "step_cancelled";
    case Event::Kind::StepCached: return "step_cached";
    case Event::Kind::StepOutput: return "step_output";
    case Event::Kind::RunFinished: return "run_finished";
  }
  return "event";
}

}  // namespace

// A batch is committed RecordedRun::group_window after its first event
// arrived, or as soon as kGroupMax events are queued: one transaction and one
// fsync sweep per batch instead of per event, for at most group_window of
// extra delay before the terminal hears of an event (bench/README.md,
// "executor overhead").
constexpr size_t kGroupMax = 512;

struct RunRecorder::Impl {
  Impl(const dsl::Workflow& w, EventSink& d, RecordedRun r)
      : wf(w), downstream(d), run(std::move(r)), store(open_state_store(run.home)) {
    auto opened = reg::ArtifactStore::open(run.home);
    if (!opened) throw reg::StoreError(run.home + "/cas: " + opened.error());
    cas = std::make_unique<reg::ArtifactStore>(std::move(*opened));
    cas_batch.emplace(*cas, reg::SmallFiles::KeptByCaller);  // their bytes go with the batch's transaction
    matrix_json.resize(wf.dag.size());
    if (run.resumed)
      if (auto last = store->last_event(run.run_id)) event_seq = last->seq;
    writer = std::thread([this] { write_loop(); });
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      closing = true;
    }
    wake.notify_all();
    writer.join();
  }

  // Executor thread. Wakes the writer only when it has something to do: the
  // first event of a batch, or a full batch.
  void push(Item item) {
    bool wake_writer = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (queue.empty()) first_queued = Clock::now();
      queue.push_back(std::move(item));
      ++queued;
      wake_writer = queue.size() == 1 || queue.size() == kGroupMax;
    }
    if (wake_writer) wake.notify_one();
  }

  void flush() {
    std::unique_lock<std::mutex> lock(mu);
    uint64_t target = queued;
    ++flushing;
    wake.notify_one();
    done_cv.wait(lock, [&] { return delivered >= target; });
    --flushing;
  }

  // Group commit, on purpose: after the first event of a batch arrives, the
  // writer waits up to group_window for more (or until kGroupMax are queued,
  // or someone flushes or closes), then stores the batch's files in the CAS,
  // makes them durable together, and commits all its writes in one
  // transaction. Only then does the batch reach `downstream`.
  void write_loop() {
    for (;;) {
      std::deque<Item> batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait(lock, [&] { return closing || !queue.empty(); });
        if (queue.empty() && closing) return;
        wake.wait_until(lock, first_queued + run.group_window,
                        [&] { return closing || flushing > 0 || queue.size() >= kGroupMax; });
        batch.swap(queue);
      }
      std::vector<reg::Write>& writes = writes_buf;  // its capacity is kept from batch to batch
      writes.clear();
      for (Item& item : batch) translate(item, writes);
      // The objects named by `writes` are present and durable before the
      // transaction that records them commits.
      bool recorded = false;
      if (auto stored = cas_batch->commit(); !stored) {
        warn("storing logs and outputs in " + cas->root() + ": " + stored.error());
      } else {
        try {
          store->apply(writes);
          recorded = true;
        } catch (const reg::StoreError& e) {
          warn(e.what());
        }
      }
      if (!recorded) {
        for (const std::string& d : artifacts_in_batch) artifacts_recorded.erase(d);
      }
      artifacts_in_batch.clear();
      for (Item& item : batch) downstream.on_event(item.event);
      {
        std::lock_guard<std::mutex> lock(mu);
        delivered += batch.size();
      }
      done_cv.notify_all();
    }
  }

  // The run goes on; the terminal still hears about it. A broken store is
  // reported once.
  void warn(const std::string& what) {
    if (!failed) std::fprintf(stderr, "sluice: warning: recording the run failed: %s\n", what.c_str());
    failed = true;
  }

  // Stores a file or folder in the artifact store (a file through this
  // batch: present once cas_batch commits), recording it; "" when it
  // cannot be stored. Files are the common case: a path is tried as a file
  // first, and looked at again only when that fails. `file_only`: a folder
  // is not stored either (a log: no file, no digest).
  std::string put(const std::string& path, std::vector<reg::Write>& writes, bool file_only = false) {
    if (path.empty()) return {};
    std::string digest;
    uint64_t size = 0;
    bool dir = false;
    std::optional<std::string> data;
    if (auto stored = cas_batch->put_file(path)) {
      digest = stored->digest.str();
      size = stored->size;
      data = std::move(stored->bytes);
    } else {
      struct stat st {};
      if (file_only || ::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return {};
      auto d = cas->put_tree(path);
      if (!d) return {};
      auto s = cas->size(*d);
      digest = d->str();
      size = s ? *s : 0;
      dir = true;
    }
    // Once per digest and run (the empty log of every silent step is one).
    if (artifacts_recorded.insert(digest).second) {
      artifacts_in_batch.push_back(digest);
      writes.push_back(reg::PutArtifact{digest, dir ? reg::ArtifactKind::Tree : reg::ArtifactKind::File,
                                        static_cast<int64_t>(size), reg::now_ms(), std::move(data)});
    }
    return digest;
  }

  // Stores output `name` of a finished step from inside its work dir (a
  // symlink leading out is refused), or takes the digest the executor
  // already knows; records the artifact. "" when it cannot be stored.
  std::string put_output(const Item& item, const std::string& name, const std::string& path,
                         std::vector<reg::Write>& writes) {
    std::error_code ec;
    const bool dir = fs::is_directory(path, ec);
    std::string rel = relative_to(path, item.workdir);
    reg::Result<reg::Digest> digest = reg::Error{"unknown"};
    std::optional<int64_t> size;
    std::optional<std::string> data;
    if (auto known = item.output_digests.find(name); known != item.output_digests.end()) {
      digest = reg::Digest::parse(known->second);
    } else if (dir) {
      digest = cas->put_tree_at(item.workdir, rel);
    } else if (auto stored = cas_batch->put_file_at(item.workdir, rel)) {
      // Through the batch, like the logs: durable before the batch's writes.
      digest = stored->digest;
      size = static_cast<int64_t>(stored->size);
      data = std::move(stored->bytes);
    }
    if (!digest) return {};
    if (!size)
      if (auto s = cas->size(*digest)) size = static_cast<int64_t>(*s);
    writes.push_back(reg::PutArtifact{digest->str(), dir ? reg::ArtifactKind::Tree : reg::ArtifactKind::File,
                                      size.value_or(0), reg::now_ms(), std::move(data)});
    return digest->str();
  }

  void finish_attempt(const Item& item, reg::AttemptStatus status, std::vector<reg::Write>& writes) {
    if (!item.attempt) return;
    const AttemptRecord& a = *item.attempt;
    reg::FinishAttempt f;
    f.run_id = run.run_id;
    f.node = item.node;
    f.number = a.number;
    f.status = status;
    f.at = ms_since_epoch(a.finished);
    if (a.outcome == ProcessResult::Outcome::Exited && a.exit_code >= 0) f.exit_code = a.exit_code;
    if (a.signal) f.signal = a.signal;
    f.log_path = a.log_path;
    // The log is stored before the step is marked done. It is created at the
    // first byte of output: a silent attempt has none and records no digest.
    f.log_digest = put(a.log_path, writes, /*file_only=*/true);
    f.error = a.error;
    writes.push_back(f);
  }

  void step(const Item& item, reg::StepStatus status, std::vector<reg::Write>& writes, const std::string& error = {},
            const std::string& skip = {}) {
    reg::SetStepStatus s;
    s.run_id = run.run_id;
    s.node = item.node;
    const dsl::DagNode& dn = wf.dag.node(item.event.node);
    s.step = wf.steps[dn.step].name;
    if (!dn.matrix.empty()) {  // "" stands for "{}"
      std::string& matrix = matrix_json[item.event.node];
      if (matrix.empty()) {
        nlohmann::json m = nlohmann::json::object();
        for (const auto& [k, v] : dn.matrix) m[k] = nlohmann::json::parse(v.to_json());
        matrix = m.dump();
      }
      s.matrix_json = matrix;
    }
    s.status = status;
    s.at = item.at;
    s.error = error;
    s.skip_reason = skip;
    if (is_final(item.event.state)) {
      s.cache_key = item.cache_key;
      s.cache_note = item.cache_note;
    }
    writes.push_back(s);
  }

  // The step cache's records of a final step: its key parts, and a cache
  // entry when it succeeded with a key (a cached step's parts are its
  // source's, which `sluice why` follows).
  void cache_writes(const Item& item, bool succeeded, std::vector<reg::Write>& writes) {
    for (const KeyPart& p : item.key_parts) writes.push_back(reg::AddKeyPart{run.run_id, item.node, p.part, p.digest});
    if (succeeded && !item.cache_key.empty())
      writes.push_back(reg::PutCacheEntry{item.cache_key, run.run_id, item.node, item.at});
  }

  // Lineage of a step's inputs whose sources the executor knows; false when
  // it knows none (the inputs are then looked up by path).
  bool input_writes(const Item& item, std::vector<reg::Write>& writes) {
    if (item.input_sources.empty()) return false;
    for (const auto& [name, src] : item.input_sources) {
      if (src.from_node.empty()) {  // from outside the workflow: record the artifact first
        auto d = reg::Digest::parse(src.digest);
        if (!d) continue;
        auto size = cas->size(*d);
        writes.push_back(reg::PutArtifact{src.digest, d->kind == reg::Kind::Tree ? reg::ArtifactKind::Tree : reg::ArtifactKind::File,
                                          size ? static_cast<int64_t>(*size) : 0, reg::now_ms()});
      }
      reg::AddInput in{run.run_id, item.node, name, src.digest, {}, {}, {}};
      if (!src.from_node.empty()) {
        in.from_run = run.run_id;
        in.from_node = src.from_node;
        in.from_output = src.from_output;
      }
      writes.push_back(in);
    }
    return true;
  }

  void translate(const Item& item, std::vector<reg::Write>& writes) {
    const Event& e = item.event;
    switch (e.kind) {
      case Event::Kind::RunStarted: {
        if (run.resumed) return;  // the take-over recorded the run_resumed event
        writes.push_back(reg::PutWorkflow{wf.name, reg::sha256_hex(wf.source), wf.source, fs::absolute(wf.path).string(),
                                          reg::now_ms()});
        reg::CreateRun c;
        c.id = run.run_id;
        c.workflow_name = wf.name;
        c.workflow_digest = reg::sha256_hex(wf.source);
        c.params_json = run.params_json;
        c.trigger = reg::parse_trigger(run.trigger).value_or(reg::Trigger::Cli);
        c.status = reg::RunStatus::Running;
        c.at = reg::now_ms();
        c.sluice_version = SLUICE_VERSION;
        c.git_commit = git_commit(fs::absolute(wf.path).parent_path().string());
        c.parent_run = run.parent_run;
        c.no_cache = run.no_cache;
        c.options_json = run.options_json;
        c.owner_pid = ::getpid();
        c.owner_start = process_start_id(::getpid());
        writes.push_back(c);
        writes.push_back(reg::SetRunStatus{run.run_id, reg::RunStatus::Running, reg::now_ms(), {}});
        break;
      }
      case Event::Kind::StepStarted:
        step(item, reg::StepStatus::Running, writes);
        if (item.attempt) {
          // The process group's leader is identified here, on the writer
          // thread, shortly after the spawn (a zombie not yet reaped by the
          // executor still holds its pid); gone already: nothing to end.
          const int pgid = e.pgid;
          writes.push_back(reg::StartAttempt{.run_id = run.run_id, .node = item.node, .number = item.attempt->number,
                                             .at = ms_since_epoch(item.attempt->started),
                                             .log_path = item.attempt->log_path, .pgid = pgid,
                                             .pgid_start = pgid > 0 ? process_start_id(pgid, true) : std::string()});
        }
        break;
      case Event::Kind::StepRetrying:
        finish_attempt(item, reg::AttemptStatus::Failed, writes);
        step(item, reg::StepStatus::Retrying, writes, e.message);
        break;
      case Event::Kind::StepFinished: {
        const bool ok = e.state == NodeState::Succeeded;
        finish_attempt(item, ok ? reg::AttemptStatus::Succeeded : reg::AttemptStatus::Failed, writes);
        if (ok) {
          for (const auto& [k, v] : item.values) writes.push_back(reg::SetValue{run.run_id, item.node, k, v});
          int64_t seq = 0;
          for (const auto& [name, value] : item.metrics)
            writes.push_back(reg::AddMetric{run.run_id, item.node, name, value, std::nullopt, reg::now_ms(), ++seq});
          if (!input_writes(item, writes)) {  // sources unknown: find the producers by path
            for (const auto& [name, path] : item.inputs) {
              auto it = produced.find(path);
              std::string digest = it != produced.end() ? it->second.digest : put(path, writes);
              if (digest.empty()) continue;
              reg::AddInput in{run.run_id, item.node, name, digest, {}, {}, {}};
              if (it != produced.end()) {
                in.from_run = run.run_id;
                in.from_node = it->second.node;
                in.from_output = it->second.output;
              }
              writes.push_back(in);
            }
          }
          for (const auto& [name, path] : item.outputs) {
            std::string digest = put_output(item, name, path, writes);
            if (digest.empty()) continue;
            writes.push_back(reg::AddOutput{run.run_id, item.node, name, digest,
                                            relative_to(path, item.workdir)});
            produced[path] = Produced{digest, item.node, name};
          }
        }
        step(item, step_status(e.state), writes, ok ? std::string() : e.message);
        cache_writes(item, ok, writes);
        break;
      }
      case Event::Kind::StepSkipped:
        step(item, reg::StepStatus::Skipped, writes, {}, to_string(e.skip));
        break;
      case Event::Kind::StepCancelled:
        finish_attempt(item, reg::AttemptStatus::Cancelled, writes);
        step(item, reg::StepStatus::Cancelled, writes, "cancelled");
        break;
      case Event::Kind::StepCached: {
        // Restored from the cache (or reused by `sluice retry`): the outputs
        // and values are recorded as this run's, so lineage stays whole.
        step(item, reg::StepStatus::Cached, writes);
        for (const auto& [k, v] : item.values) writes.push_back(reg::SetValue{run.run_id, item.node, k, v});
        input_writes(item, writes);
        for (const auto& [name, path] : item.outputs) {
          auto d = item.output_digests.find(name);
          if (d == item.output_digests.end()) continue;
          writes.push_back(reg::AddOutput{run.run_id, item.node, name, d->second,
                                          relative_to(path, item.workdir)});
          produced[path] = Produced{d->second, item.node, name};
        }
        if (item.cache_note.rfind("reused ", 0) == 0) cache_writes(item, false, writes);
        break;
      }
      case Event::Kind::StepOutput:
        return;  // lines live in the log file, which is stored
      case Event::Kind::RunFinished: {
        reg::RunStatus status = e.message == "interrupted" ? reg::RunStatus::Cancelled
                                : e.failed                 ? reg::RunStatus::Failed
                                                           : reg::RunStatus::Succeeded;
        writes.push_back(reg::SetRunStatus{run.run_id, status, reg::now_ms(), e.message});
        break;
      }
    }
    writes.push_back(reg::AddEvent{run.run_id, ++event_seq, reg::now_ms(), event_kind(e.kind), item.node, e.message});
  }

  struct Produced {
    std::string digest, node, output;
  };

  const dsl::Workflow& wf;
  EventSink& downstream;
  RecordedRun run;
  std::unique_ptr<reg::Store> store;
  std::unique_ptr<reg::ArtifactStore> cas;
  std::optional<reg::ArtifactStore::Batch> cas_batch;  // the writer thread's puts since its last commit
  std::map<std::string, Produced> produced;  // output path -> its digest and producer (writer thread)
  std::vector<std::string> matrix_json;       // per DAG node, made on first use (writer thread)
  std::vector<reg::Write> writes_buf;         // the writes of the batch being committed (writer thread)
  // Digests with a PutArtifact in a committed batch of this run, or in the
  // batch being built (listed in artifacts_in_batch until it commits).
  std::unordered_set<std::string> artifacts_recorded;
  std::vector<std::string> artifacts_in_batch;
  int64_t event_seq = 0;

  std::mutex mu;
  std::condition_variable wake, done_cv;
  std::deque<Item> queue;
  Clock::time_point first_queued;  // when the oldest event in `queue` arrived
  uint64_t queued = 0, delivered = 0;
  int flushing = 0;  // threads waiting in flush()
  bool closing = false;
  bool failed = false;
  std::thread writer;
};

RunRecorder::RunRecorder(const dsl::Workflow& wf, EventSink& downstream, RecordedRun run)
    : impl_(std::make_unique<Impl>(wf, downstream, std::move(run))) {}

RunRecorder::~RunRecorder() = default;

void RunRecorder::on_event(const Event& e) {
  // Crash tests (engine/test_hooks.h): die with everything before the end
  // of the run committed.
  if (e.kind == Event::Kind::RunFinished && test_kill_point_set("before-run-finished")) {
    flush();
    test_kill_point("before-run-finished");
  }
  Item item;
  item.event = e;
  item.event.record = nullptr;
  item.at = reg::now_ms();
  if (e.kind != Event::Kind::RunStarted && e.kind != Event::Kind::RunFinished) {
    item.node = impl_->wf.dag.node(e.node).name;
    if (e.record) {
      const NodeRecord& r = *e.record;
      if (!r.attempts.empty()) item.attempt = r.attempts.back();
      if (e.kind == Event::Kind::StepFinished || e.kind == Event::Kind::StepCached) {
        item.values = r.values;
        item.metrics = r.metrics;
        item.outputs = r.outputs;
        item.inputs = r.inputs;
        item.workdir = r.workdir;
        item.output_digests = r.output_digests;
        item.input_sources = r.input_sources;
        item.cache_key = r.cache_key;
        item.cache_note = r.cache_note;
        // A cached step's key parts are recorded only when it was reused by
        // `sluice retry` (cache_writes); a hit's are its source's.
        if (e.kind == Event::Kind::StepFinished || r.cache_note.rfind("reused ", 0) == 0) item.key_parts = r.key_parts;
      }
    }
  }
  impl_->push(std::move(item));
  // The run's row is committed before any step starts, so whatever a step
  // does (a child run naming this run as its parent, `sluice cancel`) finds it.
  if (e.kind == Event::Kind::RunStarted) {
    flush();
    test_kill_point("after-run-started");
  }
}

void RunRecorder::flush() { impl_->flush(); }

}  // namespace sluice::engine
