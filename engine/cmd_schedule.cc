// `sluice schedule next FILE` (when a workflow's [schedule] fires, like
// systemd-analyze calendar) and `sluice schedule list` (the schedules a
// server's home has fired: last fire, next fire, misses).
#include <charconv>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "dsl/fire_times.h"
#include "engine/cli.h"
#include "engine/exit_status.h"
#include "engine/serve_clock.h"
#include "engine/workflow_args.h"
#include "registry/sqlite_store.h"

namespace sluice::engine {

namespace {

namespace reg = sluice::registry;
using nlohmann::json;

const char* gap_text(dsl::DstGap g) { return g == dsl::DstGap::Shift ? "shift" : "skip"; }
const char* repeat_text(dsl::DstRepeat r) {
  return r == dsl::DstRepeat::First ? "first" : r == dsl::DstRepeat::Last ? "last" : "both";
}

bool make_times(const std::string& cron, const std::string& zone, dsl::DstGap gap, dsl::DstRepeat repeat,
                dsl::FireTimes& out, std::string& error) {
  dsl::CronExpr expr;
  size_t offset = 0;
  if (!dsl::CronExpr::parse(cron, expr, error, offset)) return false;
  return dsl::FireTimes::make(expr, zone, gap, repeat, out, error);
}

int next(const Args& args) {
  const Command& cmd = schedule_command();
  if (args.positional.size() != 2) return usage_error(cmd, "schedule next needs a workflow FILE");
  dsl::WorkflowPtr wf = load_or_report(args.positional[1]);
  if (!wf) return kExitBadInput;
  if (!wf->schedule) {
    std::fprintf(stderr, "sluice schedule: error: %s: workflow '%s' has no [schedule]\n", args.positional[1].c_str(),
                 wf->name.c_str());
    return kExitBadInput;
  }
  const dsl::Schedule& s = *wf->schedule;
  int64_t from = reg::now_ms();
  if (!args.value("from").empty()) {
    auto t = parse_time(args.value("from"));
    if (!t) return usage_error(cmd, "--from needs a time such as 2026-03-29T00:00:00Z, found '" + args.value("from") + "'");
    from = *t;
  }
  int count = 5;
  if (!args.value("count").empty()) {
    const std::string& text = args.value("count");
    auto r = std::from_chars(text.data(), text.data() + text.size(), count);
    if (r.ec != std::errc() || r.ptr != text.data() + text.size() || count < 1 || count > 10000)
      return usage_error(cmd, "-n needs a number from 1 to 10000, found '" + text + "'");
  }
  dsl::FireTimes times;
  std::string error;
  if (!make_times(s.cron, s.timezone, s.on_dst_gap, s.on_dst_repeat, times, error)) {
    std::fprintf(stderr, "sluice schedule: error: %s\n", error.c_str());
    return kExitBadInput;
  }
  // Fires strictly after `from` (whole seconds: a fire at exactly --from is not next).
  int64_t at = from >= 0 ? from / 1000 : -((-from + 999) / 1000);
  json fires = json::array();
  std::string text = "workflow '" + wf->name + "': cron \"" + s.cron + "\" in " + s.timezone + " (on_dst_gap = " +
                     gap_text(s.on_dst_gap) + ", on_dst_repeat = " + repeat_text(s.on_dst_repeat) + ")\n";
  for (int i = 0; i < count; ++i) {
    std::optional<dsl::Fire> f = times.next_after(at);
    if (!f) break;
    fires.push_back({{"local", f->local_iso}, {"utc", f->utc_iso}});
    text += "  " + f->local_iso + "  " + f->utc_iso + "\n";
    at = f->utc;
  }
  if (args.flag("json")) {
    std::printf("%s\n", json({{"workflow", wf->name}, {"cron", s.cron}, {"timezone", s.timezone}, {"fires", fires}})
                            .dump(2)
                            .c_str());
  } else {
    std::fputs(text.c_str(), stdout);
  }
  return kExitSuccess;
}

int list(const Args& args) {
  if (args.positional.size() != 1) return usage_error(schedule_command(), "schedule list takes no argument");
  const std::string home = state_home(args);
  if (!std::filesystem::exists(home + "/sluice.db")) {
    std::fprintf(stderr, "sluice schedule: error: no store in %s (start 'sluice serve' there, or pass --home)\n",
                 home.c_str());
    return kExitBadInput;
  }
  auto store = reg::open_sqlite_store(home + "/sluice.db");
  const int64_t now = reg::now_ms();
  json list = json::array();
  std::string text;
  char line[512];
  std::snprintf(line, sizeof line, "%-20s  %-16s  %-16s  %-20s  %-20s  %5s  %6s  %s\n", "WORKFLOW", "CRON", "TIMEZONE",
                "LAST FIRE", "NEXT FIRE", "FIRES", "MISSED", "DEADLINE MISSES");
  text += line;
  for (const reg::ScheduleRow& row : store->schedules()) {
    dsl::FireTimes times;
    std::string error;
    std::optional<dsl::Fire> next_fire;
    if (make_times(row.cron, row.timezone, row.on_dst_gap == "skip" ? dsl::DstGap::Skip : dsl::DstGap::Shift,
                   row.on_dst_repeat == "last"   ? dsl::DstRepeat::Last
                   : row.on_dst_repeat == "both" ? dsl::DstRepeat::Both
                                                 : dsl::DstRepeat::First,
                   times, error))
      next_fire = times.next_after(std::max(now, row.watermark) / 1000);
    const std::string last = row.last_fire ? format_utc(*row.last_fire) : "-";
    const std::string nxt = next_fire ? next_fire->utc_iso : "-";
    list.push_back({{"workflow", row.workflow},
                    {"cron", row.cron},
                    {"timezone", row.timezone},
                    {"last_fire", row.last_fire ? json(last) : json()},
                    {"last_run", row.last_run.empty() ? json() : json(row.last_run)},
                    {"next_fire", next_fire ? json(nxt) : json()},
                    {"fires", row.fires},
                    {"missed", row.missed},
                    {"deadline_misses", row.deadline_misses}});
    std::snprintf(line, sizeof line, "%-20s  %-16s  %-16s  %-20s  %-20s  %5lld  %6lld  %lld\n", row.workflow.c_str(),
                  row.cron.c_str(), row.timezone.c_str(), last.c_str(), nxt.c_str(), static_cast<long long>(row.fires),
                  static_cast<long long>(row.missed), static_cast<long long>(row.deadline_misses));
    text += line;
  }
  if (args.flag("json")) std::printf("%s\n", json({{"schedules", list}}).dump(2).c_str());
  else std::fputs(text.c_str(), stdout);
  return kExitSuccess;
}

int run_schedule(const Args& args) {
  const std::string& action = args.positional[0];
  if (action == "next") return next(args);
  if (action == "list") return list(args);
  return usage_error(schedule_command(), "unknown action '" + action + "': use next or list");
}

}  // namespace

const Command& schedule_command() {
  static const Command cmd{
      "schedule",
      "when a workflow's schedule fires; what a server's schedules did",
      "sluice schedule next [--from TIME] [-n N] [--json] FILE\n"
      "       sluice schedule list [--home DIR] [--json]",
      "'next' prints the next N fire times of FILE's [schedule] after TIME (default:\n"
      "now), in the schedule's zone and in UTC (ISO 8601), daylight-saving rules\n"
      "applied. 'list' shows each schedule a server with this state folder has run:\n"
      "its last fire, its next fire, how many fires it recorded and missed.",
      {{"from", 0, "TIME", "start after this time, e.g. 2026-03-29T00:00:00Z (next)"},
       {"count", 'n', "N", "how many fire times (next; default 5)"},
       {"json", 0, "", "machine-readable output"},
       {"home", 0, "DIR", "the server's state folder (list; default: $SLUICE_HOME or ./.sluice)"}},
      1,
      2,
      run_schedule};
  return cmd;
}

}  // namespace sluice::engine
