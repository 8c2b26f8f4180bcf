#pragma once
// Records a run in the metadata store (.sluice/sluice.db) and its logs and
// outputs in the artifact store (.sluice/cas). A sink between the executor
// and the terminal: events are turned into store writes and applied in
// batches on a writer thread (group commit: the files of a batch made
// durable together, then one transaction), and reach `downstream` only after
// the batch holding them has committed — so whatever the user was told
// survives a crash or a power cut.
#include <chrono>
#include <memory>
#include <string>

#include "dsl/params.h"
#include "dsl/spec.h"
#include "engine/events.h"
#include "registry/store.h"

namespace sluice::engine {

struct RecordedRun {
  std::string run_id;
  std::string home;     // the state folder; the store is home/sluice.db
  std::string trigger = "cli";
  std::string params_json = "{}";
  std::string parent_run;  // retry/rerun: the run it came from
  bool no_cache = false;   // --no-cache
  // How long the writer keeps a batch open after its first event, for more
  // to join it; a batch also closes at 512 events, at flush() and when the
  // recorder is destroyed. Tests stretch it.
  std::chrono::milliseconds group_window{30};
  // `sluice resume`: the run is recorded already and was taken over by this
  // process (engine/resume.h): RunStarted records nothing, and the run's
  // events continue after those recorded.
  bool resumed = false;
  // The run's options beyond params (engine/recorded_options.h).
  std::string options_json = "{}";
};

class RunRecorder : public EventSink {
 public:
  // Opens (and migrates) the store; throws registry::StoreError on failure.
  RunRecorder(const dsl::Workflow& wf, EventSink& downstream, RecordedRun run);
  ~RunRecorder() override;  // flushes what is queued and joins the writer

  // Executor thread. Copies what it needs from the event (and its record).
  void on_event(const Event& e) override;
  // Blocks until every event so far is committed and delivered downstream.
  void flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// JSON object of a run's params, for the store and the API.
std::string params_json(const dsl::ParamValues& params);

}  // namespace sluice::engine
