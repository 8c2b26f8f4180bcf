// `sluice logs RUN [STEP] [--attempt N] [-f]`: every attempt's log, from the
// artifact store once stored, from the attempt's log file while it runs.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/cli.h"
#include "engine/cli_format.h"
#include "engine/exit_status.h"
#include "engine/state_store.h"
#include "registry/artifact_store.h"

namespace sluice::engine {

namespace {

namespace reg = sluice::registry;

// The bytes of `path` from `offset` on; "" when it cannot be read.
std::string read_from(const std::string& path, size_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct LogSource {
  reg::ArtifactStore* cas = nullptr;
  // An attempt's log: the stored copy, else the file (a running attempt, or
  // one whose engine died before storing it), else "" when no digest was
  // recorded (the file is created at the first byte: no file, no output).
  // nullopt when a recorded log is neither stored nor on disk.
  std::optional<std::string> read(const reg::AttemptRow& a) const {
    if (cas && !a.log_digest.empty()) {
      if (auto d = reg::Digest::parse(a.log_digest)) {
        if (auto bytes = cas->read(*d)) return std::move(*bytes);
      }
    }
    if (!a.log_path.empty() && ::access(a.log_path.c_str(), R_OK) == 0) return read_from(a.log_path, 0);
    if (a.log_digest.empty()) return std::string();
    return std::nullopt;
  }
};

bool matches(const reg::StepRow& s, const std::string& name) { return name.empty() || s.node == name || s.step == name; }

void header(const std::string& node, const reg::AttemptRow& a) {
  std::printf("==> %s attempt %d (%s) <==\n", node.c_str(), a.number, reg::to_string(a.status));
}

int follow(reg::Store& store, const LogSource& logs, const std::string& run_id, const std::string& name, int attempt) {
  struct Stream {
    size_t offset = 0;
    bool done = false;
  };
  std::map<std::pair<std::string, int>, Stream> streams;
  std::pair<std::string, int> current{"", 0};
  bool seen = false;
  for (;;) {
    std::optional<reg::RunRow> run = store.run(run_id);
    const bool run_final = run && reg::is_final(run->status);
    bool pending = false;
    for (const reg::StepRow& s : store.steps(run_id)) {
      if (!matches(s, name)) continue;
      seen = true;
      if (!reg::is_final(s.status)) pending = true;
      for (const reg::AttemptRow& a : store.attempts(run_id, s.node)) {
        if (attempt > 0 && a.number != attempt) continue;
        auto key = std::make_pair(s.node, a.number);
        Stream& st = streams[key];
        if (st.done) continue;
        const bool finished = a.status != reg::AttemptStatus::Running;
        std::string bytes;
        if (::access(a.log_path.c_str(), R_OK) == 0) {
          bytes = read_from(a.log_path, st.offset);
        } else if (finished) {
          std::optional<std::string> all = logs.read(a);
          if (all && all->size() > st.offset) bytes = all->substr(st.offset);
        }
        if (!bytes.empty()) {
          if (current != key) {
            if (current.second) std::printf("\n");
            header(s.node, a);
            current = key;
          }
          std::fwrite(bytes.data(), 1, bytes.size(), stdout);
          st.offset += bytes.size();
        }
        if (finished) st.done = true;
        else pending = true;
      }
    }
    std::fflush(stdout);
    if (run_final || (!name.empty() && seen && !pending)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!seen) {
    std::fprintf(stderr, "sluice logs: error: run %s has no step '%s'\n", run_id.c_str(), name.c_str());
    return kExitBadInput;
  }
  return kExitSuccess;
}

int run_logs(const Args& args) {
  const std::string home = state_home(args);
  auto store = open_history_store("logs", home);
  if (!store) return kExitBadInput;
  const std::string& id = args.positional[0];
  const std::string name = args.positional.size() > 1 ? args.positional[1] : std::string();
  int attempt = 0;
  if (!args.value("attempt").empty()) {
    attempt = std::atoi(args.value("attempt").c_str());
    if (attempt <= 0) return usage_error(logs_command(), "--attempt needs a positive number, found '" + args.value("attempt") + "'");
  }
  if (!store->run(id)) {
    std::fprintf(stderr, "sluice logs: error: no run '%s'\n", id.c_str());
    return kExitBadInput;
  }
  auto opened = reg::ArtifactStore::open(home);
  std::optional<reg::ArtifactStore> cas;
  if (opened) cas.emplace(std::move(*opened));
  LogSource logs{cas ? &*cas : nullptr};
  if (args.flag("follow")) {
    if (args.flag("json")) return usage_error(logs_command(), "--follow and --json cannot be combined");
    return follow(*store, logs, id, name, attempt);
  }
  bool seen = false;
  nlohmann::json list = nlohmann::json::array();
  bool first = true;
  for (const reg::StepRow& s : store->steps(id)) {
    if (!matches(s, name)) continue;
    seen = true;
    for (const reg::AttemptRow& a : store->attempts(id, s.node)) {
      if (attempt > 0 && a.number != attempt) continue;
      std::optional<std::string> text = logs.read(a);
      if (args.flag("json")) {
        list.push_back({{"node", s.node},
                        {"attempt", a.number},
                        {"status", reg::to_string(a.status)},
                        {"log_digest", a.log_digest},
                        {"log_path", a.log_path},
                        {"log", text ? nlohmann::json(*text) : nlohmann::json(nullptr)}});
        continue;
      }
      if (!first) std::printf("\n");
      first = false;
      header(s.node, a);
      if (!text) std::printf("(no log: neither stored nor on disk)\n");
      else std::fwrite(text->data(), 1, text->size(), stdout);
    }
  }
  if (!seen && !name.empty()) {
    std::fprintf(stderr, "sluice logs: error: run %s has no step '%s'\n", id.c_str(), name.c_str());
    return kExitBadInput;
  }
  if (args.flag("json")) std::printf("%s\n", nlohmann::json({{"run", id}, {"logs", list}}).dump(2).c_str());
  return kExitSuccess;
}

}  // namespace

const Command& logs_command() {
  static const Command cmd{"logs",
                           "print the logs of a run's steps, every attempt; -f follows a running run",
                           "sluice logs RUN [STEP] [--attempt N] [-f] [--json] [--home DIR]",
                           "Each attempt's log comes from the artifact store once the attempt ended (so\n"
                           "logs outlive work dirs), else from its log file. STEP is a step or one\n"
                           "instance of a matrix step. With -f, new output is printed as it is written\n"
                           "until the step (or, without STEP, the run) is finished.",
                           {{"attempt", 0, "N", "only attempt N"},
                            {"follow", 'f', "", "keep printing new output until the step or run finishes"},
                            kJsonOption,
                            kHomeOption},
                           1,
                           2,
                           run_logs};
  return cmd;
}

}  // namespace sluice::engine
