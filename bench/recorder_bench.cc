// Records a run of N trivial steps through RunRecorder — the events the
// executor emits for `echo i > out.txt` steps, without the processes — and
// reports the CPU time the recording costs per step: the executor thread's
// copies in on_event plus the writer thread's CAS puts and SQLite writes.
//
//   recorder_bench [--steps 10000] [--home DIR] [--keep]
//
// Each step has a work dir holding an empty attempt-1.log and an out.txt
// with its index, made before the clock starts. Events: RunStarted, then per
// step StepStarted and StepFinished (succeeded, one output), then
// RunFinished; the events are fed as fast as on_event takes them, so this
// is the recorder's cost with nothing else competing (bench/README.md,
// "executor overhead").
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "dsl/parser.h"
#include "engine/executor.h"
#include "engine/run_recorder.h"

using namespace sluice;
using namespace sluice::engine;
using WallClock = std::chrono::steady_clock;

namespace {

double cpu_seconds() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct CountingSink : EventSink {
  size_t events = 0;
  void on_event(const Event&) override { ++events; }
};

int usage() {
  std::fprintf(stderr, "usage: recorder_bench [--steps N] [--home DIR] [--keep]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 10000;
  std::string home;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else if (a == "--home" && i + 1 < argc) home = argv[++i];
    else if (a == "--keep") keep = true;
    else return usage();
  }
  if (steps <= 0) return usage();
  namespace fs = std::filesystem;
  if (home.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "sluice-recorder-bench-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return std::perror("mkdtemp"), 1;
    home = tmpl;
  }
  home = fs::absolute(home).string();

  std::string text = "name = \"recorder_bench\"\n";
  for (int i = 0; i < steps; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "s%06d", i);
    text += "[steps." + std::string(name) + "]\nrun = \"echo " + std::to_string(i) +
            " > out.txt\"\noutputs = { out = \"out.txt\" }\n";
  }
  dsl::Diagnostics diags;
  dsl::WorkflowPtr wf = dsl::parse_workflow(text, home + "/workflow.toml", diags);
  if (!wf) return std::fprintf(stderr, "recorder_bench: the generated workflow does not parse\n"), 1;

  const std::string run_id = new_run_id();
  std::vector<NodeRecord> records(wf->dag.size());
  for (uint32_t n = 0; n < wf->dag.size(); ++n) {
    NodeRecord& r = records[n];
    r.workdir = home + "/runs/" + run_id + "/" + wf->dag.node(n).name;
    fs::create_directories(r.workdir);
    AttemptRecord a;
    a.number = 1;
    a.log_path = r.workdir + "/attempt-1.log";
    a.started = a.finished = std::chrono::system_clock::now();
    a.exit_code = 0;
    r.attempts.push_back(a);
    std::ofstream(a.log_path).flush();
    r.outputs["out"] = r.workdir + "/out.txt";
    std::ofstream(r.outputs["out"]) << n << "\n";
  }

  CountingSink sink;
  const double cpu0 = cpu_seconds();
  const auto t0 = WallClock::now();
  {
    RunRecorder recorder(*wf, sink, RecordedRun{run_id, home + "/state", "cli", "{}", {}, false});
    Event e;
    e.kind = Event::Kind::RunStarted;
    e.total = wf->dag.size();
    e.message = run_id;
    recorder.on_event(e);
    for (uint32_t n = 0; n < wf->dag.size(); ++n) {
      Event s;
      s.kind = Event::Kind::StepStarted;
      s.node = n;
      s.attempt = 1;
      s.state = NodeState::Running;
      s.record = &records[n];
      recorder.on_event(s);
      Event f = s;
      f.kind = Event::Kind::StepFinished;
      f.state = NodeState::Succeeded;
      recorder.on_event(f);
    }
    Event fin;
    fin.kind = Event::Kind::RunFinished;
    recorder.on_event(fin);
    recorder.flush();
  }
  const double wall = std::chrono::duration<double>(WallClock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  std::printf("%d steps, %zu events: wall %.3f s, CPU %.3f s = %.1f us per step\n", steps, sink.events, wall, cpu,
              cpu * 1e6 / steps);
  if (!keep) fs::remove_all(home);
  else std::printf("kept %s\n", home.c_str());
  return 0;
}
