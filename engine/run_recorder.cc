#include "engine/run_recorder.h"

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/executor.h"
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
};

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

std::unique_ptr<reg::Store> open_store(const std::string& home) {
  std::error_code ec;
  fs::create_directories(home, ec);
  if (ec) throw reg::StoreError("cannot create " + home + ": " + ec.message());
  return reg::open_sqlite_store(home + "/sluice.db");
}

struct RunRecorder::Impl {
  Impl(const dsl::Workflow& w, EventSink& d, RecordedRun r)
      : wf(w), downstream(d), run(std::move(r)), store(open_store(run.home)) {
    auto opened = reg::ArtifactStore::open(run.home);
    if (!opened) throw reg::StoreError(run.home + "/cas: " + opened.error());
    cas = std::make_unique<reg::ArtifactStore>(std::move(*opened));
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

  void push(Item item) {
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(std::move(item));
      ++queued;
    }
    wake.notify_all();
  }

  void flush() {
    std::unique_lock<std::mutex> lock(mu);
    uint64_t target = queued;
    done_cv.wait(lock, [&] { return delivered >= target || failed; });
  }

  void write_loop() {
    for (;;) {
      std::deque<Item> batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait(lock, [&] { return closing || !queue.empty(); });
        if (queue.empty() && closing) return;
        batch.swap(queue);
      }
      std::vector<reg::Write> writes;
      for (Item& item : batch) translate(item, writes);
      try {
        store->apply(writes);
      } catch (const reg::StoreError& e) {
        // The run goes on; the terminal still hears about it. A broken
        // store is reported once.
        if (!failed) std::fprintf(stderr, "sluice: warning: recording the run failed: %s\n", e.what());
        failed = true;
      }
      for (Item& item : batch) downstream.on_event(item.event);
      {
        std::lock_guard<std::mutex> lock(mu);
        delivered += batch.size();
      }
      done_cv.notify_all();
    }
  }

  // Stores a file in the artifact store, recording it; "" when it cannot be.
  std::string put(const std::string& path, std::vector<reg::Write>& writes) {
    std::error_code ec;
    if (path.empty() || !fs::exists(path, ec)) return {};
    bool dir = fs::is_directory(path, ec);
    auto digest = dir ? cas->put_tree(path) : cas->put_file(path);
    if (!digest) return {};
    auto size = cas->size(*digest);
    writes.push_back(reg::PutArtifact{digest->str(), dir ? reg::ArtifactKind::Tree : reg::ArtifactKind::File,
                                      size ? static_cast<int64_t>(*size) : 0, reg::now_ms()});
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
    f.log_digest = put(a.log_path, writes);  // the log is stored before the step is marked done
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
    nlohmann::json m = nlohmann::json::object();
    for (const auto& [k, v] : dn.matrix) m[k] = nlohmann::json::parse(v.to_json());
    s.matrix_json = m.dump();
    s.status = status;
    s.at = item.at;
    s.error = error;
    s.skip_reason = skip;
    writes.push_back(s);
  }

  void translate(const Item& item, std::vector<reg::Write>& writes) {
    const Event& e = item.event;
    switch (e.kind) {
      case Event::Kind::RunStarted: {
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
        writes.push_back(c);
        writes.push_back(reg::SetRunStatus{run.run_id, reg::RunStatus::Running, reg::now_ms(), {}});
        break;
      }
      case Event::Kind::StepStarted:
        step(item, reg::StepStatus::Running, writes);
        if (item.attempt)
          writes.push_back(reg::StartAttempt{run.run_id, item.node, item.attempt->number, ms_since_epoch(item.attempt->started),
                                             item.attempt->log_path});
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
          for (const auto& [name, path] : item.outputs) {
            std::string digest = put(path, writes);
            if (digest.empty()) continue;
            writes.push_back(reg::AddOutput{run.run_id, item.node, name, digest,
                                            fs::path(path).lexically_relative(item.workdir).string()});
            produced[path] = Produced{digest, item.node, name};
          }
        }
        step(item, step_status(e.state), writes, ok ? std::string() : e.message);
        break;
      }
      case Event::Kind::StepSkipped:
        step(item, reg::StepStatus::Skipped, writes, {}, to_string(e.skip));
        break;
      case Event::Kind::StepCancelled:
        finish_attempt(item, reg::AttemptStatus::Cancelled, writes);
        step(item, reg::StepStatus::Cancelled, writes, "cancelled");
        break;
      case Event::Kind::StepCached:
        step(item, reg::StepStatus::Cached, writes);
        break;
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
  std::map<std::string, Produced> produced;  // output path -> its digest and producer (writer thread)
  int64_t event_seq = 0;

  std::mutex mu;
  std::condition_variable wake, done_cv;
  std::deque<Item> queue;
  uint64_t queued = 0, delivered = 0;
  bool closing = false;
  bool failed = false;
  std::thread writer;
};

RunRecorder::RunRecorder(const dsl::Workflow& wf, EventSink& downstream, RecordedRun run)
    : impl_(std::make_unique<Impl>(wf, downstream, std::move(run))) {}

RunRecorder::~RunRecorder() = default;

void RunRecorder::on_event(const Event& e) {
  Item item;
  item.event = e;
  item.event.record = nullptr;
  item.at = reg::now_ms();
  if (e.kind != Event::Kind::RunStarted && e.kind != Event::Kind::RunFinished) {
    item.node = impl_->wf.dag.node(e.node).name;
    if (e.record) {
      const NodeRecord& r = *e.record;
      if (!r.attempts.empty()) item.attempt = r.attempts.back();
      if (e.kind == Event::Kind::StepFinished) {
        item.values = r.values;
        item.metrics = r.metrics;
        item.outputs = r.outputs;
        item.inputs = r.inputs;
        item.workdir = r.workdir;
      }
    }
  }
  impl_->push(std::move(item));
}

void RunRecorder::flush() { impl_->flush(); }

}  // namespace sluice::engine
