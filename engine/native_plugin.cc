#include "engine/native_plugin.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "dsl/units.h"
#include "engine/native_library.h"
#include "engine/worker_process.h"

namespace sluice::engine {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr const char* kMalformed = "the plugin worker sent a malformed message (did the plugin write to fd 3?)";

// Loading a library (its static constructors) in a worker gets this long.
constexpr std::chrono::seconds kDescribeTimeout{30};

void log_message(ActionContext& ctx, int level, const std::string& message) {
  const char* prefix = level == SLUICE_LOG_ERROR ? "error: " : level == SLUICE_LOG_WARN ? "warning: " : "";
  size_t start = 0;
  for (;;) {
    size_t nl = message.find('\n', start);
    ctx.log(prefix + message.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
}

// When the attempt must end: the context's time left, else the step's timeout.
Clock::time_point deadline_of(const ActionCall& call, const ActionContext& ctx) {
  const auto now = Clock::now();
  if (auto left = ctx.time_left()) return now + *left;
  if (call.timeout.count() > 0) return now + call.timeout;
  return Clock::time_point::max();
}

bool past_deadline(const ActionContext& ctx, Clock::time_point deadline) {
  if (Clock::now() >= deadline) return true;
  auto left = ctx.time_left();
  return left && left->count() <= 0;
}

// The failure of an attempt stopped by its timeout or a cancellation.
ActionResult stopped(const ActionCall& call, bool timed_out) {
  ActionResult r;
  if (timed_out) {
    r.timed_out = true;
    r.error = call.timeout.count() > 0 ? "timed out after " + dsl::format_duration(call.timeout) : "timed out";
  } else {
    r.cancelled = true;
    r.error = "cancelled";
  }
  return r;
}

const dsl::PluginAction* find_action(const dsl::PluginManifest& m, const std::string& name) {
  for (const auto& a : m.actions)
    if (a.name == name) return &a;
  return nullptr;
}

// The values and the verdict of an invoke() that returned.
ActionResult finish_invoke(int status, const std::optional<std::string>& values_json,
                           const std::optional<std::string>& error, std::map<std::string, std::string> values) {
  ActionResult r;
  r.values = std::move(values);
  std::string bad_values;
  if (!merge_plugin_values(values_json, r.values, bad_values)) {
    r.error = bad_values;
    return r;
  }
  r.ok = status == SLUICE_OK;
  if (!r.ok) r.error = describe_plugin_failure(status, error);
  return r;
}

// In-process: the callbacks reach the context directly.
class StepHost final : public PluginHost {
 public:
  StepHost(const ActionCall& call, ActionContext& ctx, Clock::time_point deadline)
      : call_(call), ctx_(ctx), deadline_(deadline) {}

  void log(int level, const std::string& message) override { log_message(ctx_, level, message); }
  void metric(const std::string& name, double value, std::optional<int64_t> step) override {
    ctx_.metric(name, value, step);
  }
  void set_value(const std::string& key, const std::string& value) override { values[key] = value; }
  const char* workdir() override { return call_.workdir.c_str(); }
  const char* input_path(const std::string& name) override { return find(call_.inputs, name); }
  const char* output_path(const std::string& name) override { return find(call_.outputs, name); }
  bool is_cancelled() override { return ctx_.cancelled() || Clock::now() >= deadline_; }

  std::map<std::string, std::string> values;

 private:
  static const char* find(const std::map<std::string, std::string>& m, const std::string& name) {
    auto it = m.find(name);
    return it == m.end() ? nullptr : it->second.c_str();
  }
  const ActionCall& call_;
  ActionContext& ctx_;
  Clock::time_point deadline_;
};

class InProcessHandler final : public ActionHandler {
 public:
  InProcessHandler(dsl::PluginManifest manifest, std::unique_ptr<NativeLibrary> lib)
      : manifest_(std::move(manifest)), lib_(std::move(lib)) {}

  ActionResult invoke(const ActionCall& call, ActionContext& ctx) override {
    if (!find_action(manifest_, call.action)) {
      ActionResult r;
      r.error = "plugin '" + manifest_.name + "' has no action '" + call.action + "'";
      return r;
    }
    const auto deadline = deadline_of(call, ctx);
    StepHost host(call, ctx, deadline);
    InvokeOutcome out = invoke_plugin(lib_->plugin(), call.action, call.args.dump(), host);
    if (out.status == SLUICE_CANCELLED || ctx.cancelled() || Clock::now() >= deadline)
      return stopped(call, past_deadline(ctx, deadline));
    return finish_invoke(out.status, out.values_json, out.error, std::move(host.values));
  }

 private:
  dsl::PluginManifest manifest_;
  std::unique_ptr<NativeLibrary> lib_;
};

std::string mebibytes(uint64_t bytes) { return std::to_string((bytes + (1u << 19)) >> 20) + "M"; }

class IsolatedHandler final : public ActionHandler {
 public:
  explicit IsolatedHandler(dsl::PluginManifest manifest) : manifest_(std::move(manifest)) {}

  ActionResult invoke(const ActionCall& call, ActionContext& ctx) override {
    ActionResult r;
    if (!find_action(manifest_, call.action)) {
      r.error = "plugin '" + manifest_.name + "' has no action '" + call.action + "'";
      return r;
    }
    json request = {{"t", "invoke"},
                    {"library", manifest_.library},
                    {"action", call.action},
                    {"args", call.args.dump()},
                    {"workdir", call.workdir},
                    {"inputs", call.inputs},
                    {"outputs", call.outputs},
                    {"memory", call.memory},
                    {"parent", ::getpid()}};
    std::map<std::string, std::string> values;
    WorkerHooks hooks;
    hooks.on_callback = [&](const json& m) {
      try {
        const std::string t = m.value("t", "");
        if (t == "log") {
          log_message(ctx, m.value("level", 0), m.value("message", ""));
        } else if (t == "metric") {
          std::optional<int64_t> step;
          if (m.contains("step") && m["step"].is_number_integer()) step = m["step"].get<int64_t>();
          const auto& v = m.value("value", json());
          ctx.metric(m.value("name", ""), v.is_number() ? v.get<double>() : std::nan(""), step);
        } else if (t == "value") {
          values[m.value("key", "")] = m.value("value", "");
        }
      } catch (const json::exception&) {
        ctx.log("warning: the plugin worker sent a malformed callback message");
      }
    };
    hooks.on_output = [&](std::string_view line) { ctx.log(line); };
    hooks.cancelled = [&] { return ctx.cancelled(); };
    WorkerLimits limits;
    limits.deadline = deadline_of(call, ctx);

    WorkerOutcome out = run_worker(request, hooks, limits);
    switch (out.end) {
      case WorkerEnd::TimedOut: return stopped(call, true);
      case WorkerEnd::Cancelled: return stopped(call, past_deadline(ctx, limits.deadline));
      case WorkerEnd::Crashed:
        r.error = "plugin crashed: " + signal_name(out.signal);
        if (call.memory > 0 && out.peak_rss >= call.memory / 10 * 9)
          r.error += " (peak memory " + mebibytes(out.peak_rss) + " of its " + dsl::format_size(call.memory) + " limit)";
        return r;
      case WorkerEnd::Exited:
        r.error = "plugin exited with status " + std::to_string(out.exit_code) + " before its action returned";
        return r;
      case WorkerEnd::Broken: r.error = kMalformed; return r;
      case WorkerEnd::SpawnFailed: r.error = out.error; return r;
      case WorkerEnd::Answered: break;
    }
    try {
      const json& reply = *out.reply;
      const std::string t = reply.value("t", "");
      if (t == "error") {
        r.error = reply.value("error", "");
        return r;
      }
      if (t != "result") {
        r.error = "the plugin worker sent an unexpected reply '" + t + "'";
        return r;
      }
      std::optional<std::string> values_json, error;
      if (reply.contains("values")) values_json = reply["values"].get<std::string>();
      if (reply.contains("error")) error = reply["error"].get<std::string>();
      const int status = reply.value("status", static_cast<int>(SLUICE_FAILED));
      if (status == SLUICE_CANCELLED) return stopped(call, past_deadline(ctx, limits.deadline));
      return finish_invoke(status, values_json, error, std::move(values));
    } catch (const json::exception&) {
      r.error = kMalformed;
      return r;
    }
  }

 private:
  dsl::PluginManifest manifest_;
};

// Loads the library in a worker and returns what it says about itself, so a
// library that crashes while loading cannot take the engine with it.
std::optional<PluginIdentity> describe_in_worker(const std::string& lib, std::string& error) {
  WorkerLimits limits;
  limits.deadline = Clock::now() + kDescribeTimeout;
  WorkerOutcome out = run_worker({{"t", "describe"}, {"library", lib}, {"parent", ::getpid()}}, WorkerHooks{}, limits);
  switch (out.end) {
    case WorkerEnd::Answered: break;
    case WorkerEnd::Crashed: error = lib + ": crashed while loading: " + signal_name(out.signal); return std::nullopt;
    case WorkerEnd::TimedOut:
      error = lib + ": still loading after " + dsl::format_duration(kDescribeTimeout);
      return std::nullopt;
    case WorkerEnd::SpawnFailed: error = out.error; return std::nullopt;
    default:
      error = lib + ": the plugin worker ended without describing it (exit status " + std::to_string(out.exit_code) + ")";
      return std::nullopt;
  }
  try {
    const json& reply = *out.reply;
    if (reply.value("t", "") == "error") {
      error = reply.value("error", "");
      return std::nullopt;
    }
    PluginIdentity id;
    id.abi_major = reply.value("abi_major", 0u);
    id.abi_minor = reply.value("abi_minor", 0u);
    id.name = reply.value("name", "");
    id.version = reply.value("version", "");
    id.actions = reply.value("actions", std::vector<std::string>{});
    return id;
  } catch (const json::exception&) {
    error = lib + ": " + kMalformed;
    return std::nullopt;
  }
}

}  // namespace

std::shared_ptr<ActionHandler> make_native_plugin_handler(const dsl::PluginManifest& manifest, std::string& error) {
  if (manifest.kind != dsl::PluginKind::Native) {
    error = manifest.path + ": plugin '" + manifest.name + "' is not a native plugin";
    return nullptr;
  }
  if (manifest.library.empty()) {
    error = manifest.path + ": a native plugin needs library = \"<file>\"";
    return nullptr;
  }
  if (manifest.isolate) {
    auto id = describe_in_worker(manifest.library, error);
    if (!id) return nullptr;
    error = check_identity(*id, manifest, manifest.library);
    if (!error.empty()) return nullptr;
    return std::make_shared<IsolatedHandler>(manifest);
  }
  auto lib = NativeLibrary::open(manifest.library, error);
  if (!lib) return nullptr;
  error = check_identity(lib->identity(), manifest, manifest.library);
  if (!error.empty()) return nullptr;
  return std::make_shared<InProcessHandler>(manifest, std::move(lib));
}

}  // namespace sluice::engine
