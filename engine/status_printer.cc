#include "engine/status_printer.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

namespace sluice::engine {

namespace {

// "log PATH", or "no output" for an attempt that wrote nothing: its log file
// is created at the first byte (docs/running.md, "Logs").
std::string log_note(const std::string& path, const char* separator = " ") {
  if (::access(path.c_str(), F_OK) != 0) return "no output";
  return std::string("log") + separator + path;
}

}  // namespace

std::string format_elapsed(Clock::duration d) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(d).count();
  char buf[32];
  if (ms < 1000) std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  else if (ms < 60'000) std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  else std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000), static_cast<long long>(ms / 1000 % 60));
  return buf;
}

StatusPrinter::StatusPrinter(const dsl::Workflow& wf, std::FILE* out, bool smart_terminal)
    : wf_(wf), out_(out), smart_(smart_terminal) {}

void StatusPrinter::line(const std::string& text) {
  if (status_shown_) std::fputs("\r\033[K", out_);
  status_shown_ = false;
  std::fputs(text.c_str(), out_);
  std::fputc('\n', out_);
  // Flushed on a pipe too: a CI log or `tail -f` sees each line when it
  // happens, and what was printed is what the store already holds.
  std::fflush(out_);
}

void StatusPrinter::status(const std::string& text) {
  if (!smart_) return;
  std::fputs("\r", out_);
  std::fputs(text.c_str(), out_);
  std::fputs("\033[K", out_);
  std::fflush(out_);
  status_shown_ = true;
}

namespace {

std::string progress(const Event& e) {
  return "[" + std::to_string(e.done) + "/" + std::to_string(e.total) + "]";
}

std::string tail(const Event& e) {
  std::string t;
  if (e.running) t += std::to_string(e.running) + " running";
  if (e.failed) t += std::string(t.empty() ? "" : ", ") + std::to_string(e.failed) + " failed";
  return t.empty() ? t : " - " + t;
}

}  // namespace

void StatusPrinter::on_event(const Event& e) {
  const std::string name = e.kind == Event::Kind::RunStarted || e.kind == Event::Kind::RunFinished ? "" : wf_.dag.node(e.node).name;
  switch (e.kind) {
    case Event::Kind::RunStarted:
      line("run " + e.message + ": " + std::to_string(e.total) + " steps of workflow '" + wf_.name + "'");
      break;
    case Event::Kind::StepStarted:
      status(progress(e) + " " + name + tail(e));
      break;
    case Event::Kind::StepOutput:
      line("[" + name + "] " + e.message);
      break;
    case Event::Kind::StepRetrying:
      line("retrying " + name + " in " + format_elapsed(e.delay) + ": attempt " + std::to_string(e.attempt) + " failed (" +
           e.message + "), " + log_note(e.log_path));
      break;
    case Event::Kind::StepFinished:
      if (e.state == NodeState::Failed) {
        line(progress(e) + " FAILED " + name + ": " + e.message);
      } else if (smart_) {
        status(progress(e) + " " + name + tail(e));
      } else {
        line(progress(e) + " " + to_string(e.state) + " " + name + " (" + format_elapsed(e.elapsed) + ")");
      }
      break;
    case Event::Kind::StepSkipped:
    case Event::Kind::StepCancelled:
    case Event::Kind::StepCached:
      if (smart_) status(progress(e) + " " + name + tail(e));
      else line(progress(e) + " " + to_string(e.state) + " " + name);
      break;
    case Event::Kind::RunFinished:
      if (status_shown_) {
        std::fputs("\r\033[K", out_);
        status_shown_ = false;
      }
      std::fflush(out_);
      break;
  }
}

namespace {

std::string last_lines(const std::string& path, size_t n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string l;
  while (std::getline(in, l)) {
    lines.push_back(l);
    if (lines.size() > n) lines.erase(lines.begin());
  }
  std::string out;
  for (const std::string& s : lines) out += "  | " + s + "\n";
  return out;
}

}  // namespace

std::string format_summary(const dsl::Workflow& wf, const RunRecord& run) {
  static constexpr NodeState order[] = {NodeState::Succeeded, NodeState::Cached, NodeState::Skipped, NodeState::Cancelled,
                                        NodeState::Failed};
  std::map<NodeState, size_t> counts;
  size_t total = 0;
  for (const NodeRecord& n : run.nodes) {
    if (n.state == NodeState::Excluded) continue;
    ++counts[n.state];
    ++total;
  }
  std::string out = std::to_string(total) + " steps:";
  bool first = true;
  for (NodeState s : order) {
    if (!counts[s]) continue;
    out += std::string(first ? " " : ", ") + std::to_string(counts[s]) + " " + to_string(s);
    first = false;
  }
  out += " (" + format_elapsed(run.elapsed) + ")\n";

  const bool all = total <= 50;
  std::ostringstream table;
  size_t width = 4;
  for (uint32_t i = 0; i < run.nodes.size(); ++i) width = std::max(width, wf.dag.node(i).name.size());
  char row[512];
  std::snprintf(row, sizeof row, "\n%-*s  %-10s  %8s  %9s\n", static_cast<int>(width), "STEP", "STATUS", "ATTEMPTS", "DURATION");
  bool any = false;
  for (uint32_t i = 0; i < run.nodes.size(); ++i) {
    const NodeRecord& n = run.nodes[i];
    if (n.state == NodeState::Excluded) continue;
    if (!all && (n.state == NodeState::Succeeded || n.state == NodeState::Cached)) continue;
    if (!any) table << row;
    any = true;
    Clock::duration d{};
    for (const AttemptRecord& a : n.attempts) d += std::chrono::duration_cast<Clock::duration>(a.finished - a.started);
    std::string status = to_string(n.state);
    // A step restored by `sluice resume` ran before the engine died: its
    // attempts are in the store; an interrupted one counts those before.
    const std::string attempts = n.restored ? "-" : std::to_string(n.attempts.size() + static_cast<size_t>(n.earlier_attempts));
    std::snprintf(row, sizeof row, "%-*s  %-10s  %8s  %9s\n", static_cast<int>(width), wf.dag.node(i).name.c_str(), status.c_str(),
                  attempts.c_str(), n.restored ? "restored" : n.attempts.empty() ? "-" : format_elapsed(d).c_str());
    table << row;
  }
  out += table.str();
  for (uint32_t i = 0; i < run.nodes.size(); ++i) {
    const NodeRecord& n = run.nodes[i];
    if (n.state != NodeState::Failed) continue;
    out += "\nFAILED " + wf.dag.node(i).name + ": " + n.error + "\n";
    if (!n.attempts.empty() && !n.attempts.back().log_path.empty()) {
      const std::string& log = n.attempts.back().log_path;
      out += "  " + log_note(log, ": ") + "\n";
      out += last_lines(log, 10);
    }
  }
  return out;
}

}  // namespace sluice::engine
