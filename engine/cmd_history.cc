// `sluice runs` and `sluice show RUN`: the run history in the store.
#include <cstdio>
#include <ctime>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "engine/cli.h"
#include "engine/cli_format.h"
#include "engine/exit_status.h"
#include "engine/state_store.h"
#include "engine/status_printer.h"
#include "registry/sqlite_store.h"

namespace sluice::engine {

namespace {

namespace reg = sluice::registry;

std::string span(std::optional<int64_t> from, std::optional<int64_t> to) {
  if (!from || !to) return "-";
  return format_elapsed(std::chrono::milliseconds(*to - *from));
}

nlohmann::json run_json(const reg::RunRow& r) {
  return {{"id", r.id},
          {"workflow", r.workflow_name},
          {"workflow_digest", r.workflow_digest},
          {"status", reg::to_string(r.status)},
          {"trigger", reg::to_string(r.trigger)},
          {"params", nlohmann::json::parse(r.params_json.empty() ? "{}" : r.params_json)},
          {"created_at", iso_time(r.created_at)},
          {"started_at", iso_time(r.started_at)},
          {"finished_at", iso_time(r.finished_at)},
          {"sluice_version", r.sluice_version},
          {"git_commit", r.git_commit},
          {"parent_run", r.parent_run},
          {"error", r.error},
          // What `sluice resume` continues it with (engine/recorded_options.h).
          {"no_cache", r.no_cache},
          {"options", nlohmann::json::parse(r.options_json.empty() ? "{}" : r.options_json, nullptr, false)}};
}

int run_runs(const Args& args) {
  std::unique_ptr<reg::Store> store = open_history_store("runs", state_home(args));
  if (!store) return kExitBadInput;
  reg::RunFilter filter;
  if (!args.positional.empty()) filter.workflow = args.positional[0];
  if (!args.value("status").empty()) {
    filter.status = reg::parse_run_status(args.value("status"));
    if (!filter.status)
      return usage_error(runs_command(), "unknown status '" + args.value("status") +
                                             "': use queued, running, succeeded, failed or cancelled");
  }
  filter.limit = 20;
  if (!args.value("limit").empty()) filter.limit = std::max(1, std::atoi(args.value("limit").c_str()));
  reg::RunPage page = store->list_runs(filter);
  if (args.flag("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const reg::RunRow& r : page.runs) list.push_back(run_json(r));
    std::printf("%s\n", nlohmann::json({{"runs", list}, {"next_cursor", page.next_cursor}}).dump(2).c_str());
    return kExitSuccess;
  }
  std::printf("%-28s  %-20s  %-10s  %-20s  %9s\n", "RUN", "WORKFLOW", "STATUS", "STARTED", "DURATION");
  for (const reg::RunRow& r : page.runs)
    std::printf("%-28s  %-20s  %-10s  %-20s  %9s\n", r.id.c_str(), r.workflow_name.c_str(), reg::to_string(r.status),
                iso_time(r.started_at).c_str(), span(r.started_at, r.finished_at).c_str());
  return kExitSuccess;
}

int run_show(const Args& args) {
  std::unique_ptr<reg::Store> store = open_history_store("show", state_home(args));
  if (!store) return kExitBadInput;
  const std::string& id = args.positional[0];
  std::optional<reg::RunRow> run = store->run(id);
  if (!run) {
    std::fprintf(stderr, "sluice show: error: no run '%s'\n", id.c_str());
    return kExitBadInput;
  }
  std::vector<reg::StepRow> steps = store->steps(id);
  if (args.flag("json")) {
    nlohmann::json j = run_json(*run);
    nlohmann::json list = nlohmann::json::array();
    for (const reg::StepRow& s : steps) {
      nlohmann::json sj = {{"node", s.node},       {"step", s.step},         {"status", reg::to_string(s.status)},
                           {"attempts", s.attempts}, {"error", s.error},     {"skip_reason", s.skip_reason},
                           {"started_at", iso_time(s.started_at)}, {"finished_at", iso_time(s.finished_at)},
                           {"cache_key", s.cache_key}, {"cache", s.cache_note}};
      nlohmann::json values = nlohmann::json::object(), outputs = nlohmann::json::object();
      for (const reg::ValueRow& v : store->values(id, s.node)) values[v.key] = v.value;
      for (const reg::OutputRow& o : store->outputs(id, s.node)) outputs[o.name] = {{"digest", o.digest}, {"path", o.path}};
      nlohmann::json metrics = nlohmann::json::array();
      for (const reg::MetricRow& m : store->metrics(id, s.node)) metrics.push_back({{"name", m.name}, {"value", m.value}});
      nlohmann::json attempts = nlohmann::json::array();
      for (const reg::AttemptRow& a : store->attempts(id, s.node))
        attempts.push_back({{"number", a.number}, {"status", reg::to_string(a.status)}, {"log_path", a.log_path},
                            {"log_digest", a.log_digest}, {"error", a.error},
                            {"exit_code", a.exit_code ? nlohmann::json(*a.exit_code) : nlohmann::json(nullptr)}});
      sj["values"] = values;
      sj["outputs"] = outputs;
      sj["metrics"] = metrics;
      sj["attempts"] = attempts;
      list.push_back(std::move(sj));
    }
    j["steps"] = list;
    std::printf("%s\n", j.dump(2).c_str());
    return kExitSuccess;
  }
  std::printf("run %s of workflow '%s': %s\n", run->id.c_str(), run->workflow_name.c_str(), reg::to_string(run->status));
  std::printf("  started %s, took %s, trigger %s, params %s\n", iso_time(run->started_at).c_str(),
              span(run->started_at, run->finished_at).c_str(), reg::to_string(run->trigger), run->params_json.c_str());
  if (!run->git_commit.empty()) std::printf("  git commit %s\n", run->git_commit.c_str());
  std::printf("\n%-30s  %-10s  %8s  %9s\n", "STEP", "STATUS", "ATTEMPTS", "DURATION");
  for (const reg::StepRow& s : steps) {
    std::printf("%-30s  %-10s  %8d  %9s\n", s.node.c_str(), reg::to_string(s.status), s.attempts,
                span(s.started_at, s.finished_at).c_str());
    for (const reg::ValueRow& v : store->values(id, s.node)) std::printf("    value  %s = %s\n", v.key.c_str(), v.value.c_str());
    for (const reg::MetricRow& m : store->metrics(id, s.node)) std::printf("    metric %s = %g\n", m.name.c_str(), m.value);
    for (const reg::OutputRow& o : store->outputs(id, s.node))
      std::printf("    output %s = %s (%s)\n", o.name.c_str(), o.path.c_str(), o.digest.c_str());
    if (!s.error.empty()) std::printf("    error  %s\n", s.error.c_str());
    if (s.attempts > 1)  // retried, or resumed after its engine died: each attempt and how it ended
      for (const reg::AttemptRow& a : store->attempts(id, s.node))
        std::printf("    attempt %d %s%s\n", a.number, reg::to_string(a.status), a.error.empty() ? "" : (": " + a.error).c_str());
    if (s.status == reg::StepStatus::Cached) {
      // cache_note: "hit RUN NODE" or "reused RUN NODE" (registry/store.h)
      size_t a = s.cache_note.find(' '), b = a == std::string::npos ? a : s.cache_note.find(' ', a + 1);
      if (b != std::string::npos)
        std::printf("    from   step '%s' of run %s (%s)\n", s.cache_note.substr(b + 1).c_str(),
                    s.cache_note.substr(a + 1, b - a - 1).c_str(), s.cache_note.rfind("hit", 0) == 0 ? "cache hit" : "reused by retry");
    }
  }
  return kExitSuccess;
}

}  // namespace

const Command& runs_command() {
  static const Command cmd{"runs",
                           "list recorded runs, newest first",
                           "sluice runs [WORKFLOW] [--status STATUS] [--limit N] [--json] [--home DIR]",
                           "",
                           {{"status", 0, "STATUS", "only runs in this status"},
                            {"limit", 'n', "N", "at most N runs (default 20)"},
                            {"json", 0, "", "print JSON"},
                            kHomeOption},
                           0,
                           1,
                           run_runs};
  return cmd;
}

const Command& show_command() {
  static const Command cmd{"show",
                           "show one run: its steps, attempts, values, metrics and outputs with digests",
                           "sluice show RUN [--json] [--home DIR]",
                           "",
                           {{"json", 0, "", "print JSON"}, kHomeOption},
                           1,
                           1,
                           run_show};
  return cmd;
}

}  // namespace sluice::engine
