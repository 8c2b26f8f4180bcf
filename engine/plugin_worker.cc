#include "engine/plugin_worker.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>

#include "engine/exit_status.h"
#include "engine/native_library.h"
#include "engine/plugin_protocol.h"

namespace sluice::engine {

namespace {

using nlohmann::json;

// Callbacks become frames to the engine; paths are answered from the request.
class WorkerHost final : public PluginHost {
 public:
  explicit WorkerHost(const json& request) {
    workdir_ = request.value("workdir", "");
    inputs_ = request.value("inputs", std::map<std::string, std::string>{});
    outputs_ = request.value("outputs", std::map<std::string, std::string>{});
  }

  void log(int level, const std::string& message) override {
    send({{"t", "log"}, {"level", level}, {"message", message}});
  }
  void metric(const std::string& name, double value, std::optional<int64_t> step) override {
    json m = {{"t", "metric"}, {"name", name}, {"value", value}};
    if (step) m["step"] = *step;
    send(m);
  }
  void set_value(const std::string& key, const std::string& value) override {
    send({{"t", "value"}, {"key", key}, {"value", value}});
  }
  const char* workdir() override { return workdir_.c_str(); }
  const char* input_path(const std::string& name) override { return find(inputs_, name); }
  const char* output_path(const std::string& name) override { return find(outputs_, name); }

  // A "cancel" frame, or the engine hanging up, cancels the action.
  bool is_cancelled() override {
    while (!cancelled_) {
      json m;
      if (reader_.next(m)) {
        cancelled_ = m.value("t", "") == "cancel";
        continue;
      }
      pollfd p{wire::kWorkerFd, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      if (reader_.fill(wire::kWorkerFd) != wire::FrameReader::Fill::Data) cancelled_ = true;
    }
    return cancelled_;
  }

 private:
  static const char* find(const std::map<std::string, std::string>& m, const std::string& name) {
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second.c_str();
  }
  void send(const json& m) {
    if (!wire::send(wire::kWorkerFd, m)) cancelled_ = true;  // the engine is gone
  }

  std::string workdir_;
  std::map<std::string, std::string> inputs_, outputs_;
  wire::FrameReader reader_;
  bool cancelled_ = false;
};

[[noreturn]] void finish(const json& reply) {
  std::fflush(nullptr);  // what the plugin printed reaches the log first
  wire::send(wire::kWorkerFd, reply);
  ::_exit(kExitSuccess);  // no static destructors: plugin code may have left any state behind
}

}  // namespace

int plugin_worker_main() {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the engine dying takes its workers along
  wire::FrameReader reader;
  json request;
  struct stat st;
  const bool is_socket = ::fstat(wire::kWorkerFd, &st) == 0 && S_ISSOCK(st.st_mode);
  if (!is_socket || !wire::receive(wire::kWorkerFd, reader, request)) {
    std::fprintf(stderr, "sluice %s: no request on fd %d (this command is for the engine only)\n",
                 wire::kWorkerCommand, wire::kWorkerFd);
    return kExitBadInput;
  }
  if (request.contains("parent") && ::getppid() != request["parent"].get<pid_t>()) return kExitInternal;

  const std::string op = request.value("t", "");
  const uint64_t memory = request.value("memory", uint64_t{0});
  if (memory > 0) {
    // Private writable memory (heap, mmap, stacks): what runaway allocation
    // grows. RLIMIT_AS would also count reserved-but-unused address space.
    rlimit lim{memory, memory};
    ::setrlimit(RLIMIT_DATA, &lim);
  }

  std::string error;
  auto lib = NativeLibrary::open(request.value("library", ""), error);
  if (!lib) finish({{"t", "error"}, {"error", error}});

  if (op == "describe") {
    PluginIdentity id = lib->identity();
    finish({{"t", "identity"},
            {"abi_major", id.abi_major},
            {"abi_minor", id.abi_minor},
            {"name", id.name},
            {"version", id.version},
            {"actions", id.actions}});
  }
  if (op != "invoke") finish({{"t", "error"}, {"error", "unknown request '" + op + "'"}});

  WorkerHost host(request);
  InvokeOutcome out = invoke_plugin(lib->plugin(), request.value("action", ""), request.value("args", "{}"), host);
  json reply = {{"t", "result"}, {"status", out.status}};
  if (out.values_json) reply["values"] = *out.values_json;
  if (out.error) reply["error"] = *out.error;
  finish(reply);
}

}  // namespace sluice::engine
