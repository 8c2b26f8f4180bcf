#include "engine/model_card.h"

#include "engine/cli_format.h"

#include <charconv>
#include <cmath>
#include <ctime>

#include <nlohmann/json.hpp>

namespace sluice::engine {

namespace reg = sluice::registry;

std::string utc_time(int64_t ms) { return iso_time(ms); }

std::string format_metric(double d) {
  if (std::isnan(d)) return "nan";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(d);
}

namespace {

bool is_fairness(const std::string& name) { return name.rfind("fairness", 0) == 0; }

// Text for a markdown table cell: '|' escaped, line breaks as spaces.
std::string cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

std::string code(const std::string& s) { return s.empty() ? "-" : "`" + s + "`"; }

std::string json_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

std::string render_model_card(const reg::ModelVersion& v, const std::vector<reg::AliasEvent>& history,
                              const std::vector<reg::Decision>& decisions) {
  std::string md;
  auto line = [&md](const std::string& s = {}) { md += s + "\n"; };

  line("# " + v.model + " version " + std::to_string(v.version));
  line();
  if (!v.description.empty()) {
    line(v.description);
    line();
  }
  std::string aliases;
  for (const std::string& a : v.aliases) aliases += (aliases.empty() ? "" : ", ") + a;
  line("| | |");
  line("|---|---|");
  line("| Model | " + cell(v.model) + " |");
  line("| Version | " + std::to_string(v.version) + " |");
  line("| Aliases | " + (aliases.empty() ? std::string("none") : aliases) + " |");
  line("| Format | " + (v.format.empty() ? std::string("not given") : cell(v.format)) + " |");
  line("| Artifact | " + code(v.digest) + " (" + (v.kind == reg::ArtifactKind::Tree ? "folder " : "file ") +
       cell(v.filename) + ", " + std::to_string(v.size) + " bytes) |");
  line("| Registered | " + utc_time(v.created_at) + " by " + cell(v.actor) + " |");
  line("| Status | " + (v.archived() ? "archived " + utc_time(*v.archived_at) + " by " + cell(v.archived_by)
                                     : std::string("active")) +
       " |");
  line();

  line("## Metrics");
  line();
  std::vector<const reg::MetricValue*> plain, fair;
  for (const reg::MetricValue& m : v.metrics) (is_fairness(m.name) ? fair : plain).push_back(&m);
  if (plain.empty()) {
    line("No metrics recorded.");
  } else {
    line("| Metric | Value |");
    line("|---|---|");
    for (const reg::MetricValue* m : plain) line("| " + cell(m->name) + " | " + format_metric(m->value) + " |");
  }
  line();

  line("## Parameters");
  line();
  nlohmann::json params = nlohmann::json::parse(v.params_json.empty() ? "{}" : v.params_json, nullptr, false);
  if (!params.is_object() || params.empty()) {
    line("No parameters recorded.");
  } else {
    line("| Parameter | Value |");
    line("|---|---|");
    for (auto it = params.begin(); it != params.end(); ++it)
      line("| " + cell(it.key()) + " | " + cell(json_text(it.value())) + " |");
  }
  line();

  line("## Data lineage");
  line();
  const reg::ModelLineage& l = v.lineage;
  if (l.run_id.empty()) {
    line("- Not produced by a recorded step.");
  } else {
    std::string step = code(l.node);
    if (!l.step.empty() && l.step != l.node) step += " (step " + code(l.step) + ")";
    line("- Produced by " + step + " in run " + code(l.run_id) +
         (l.workflow_name.empty() ? std::string() : " of workflow " + code(l.workflow_name)));
    line("- Workflow digest: " + code(l.workflow_digest));
    line("- Code version: " + (l.git_commit.empty() ? std::string("not in a git repository")
                                                    : "git commit " + code(l.git_commit)));
  }
  if (!l.registered_run.empty())
    line("- Registered by " + code(l.registered_node) + " in run " + code(l.registered_run));
  line();
  if (l.inputs.empty()) {
    line("No input artifacts recorded.");
  } else {
    line("| Input | Digest |");
    line("|---|---|");
    for (const reg::ModelLineage::Input& in : l.inputs) line("| " + cell(in.name) + " | " + code(in.digest) + " |");
  }
  line();

  line("## Fairness");
  line();
  std::vector<const std::pair<std::string, std::string>*> fair_tags, other_tags;
  for (const auto& t : v.tags) (is_fairness(t.first) ? fair_tags : other_tags).push_back(&t);
  if (fair.empty() && fair_tags.empty()) {
    line("No fairness results recorded.");
  } else {
    line("| Result | Value |");
    line("|---|---|");
    for (const reg::MetricValue* m : fair) line("| " + cell(m->name) + " | " + format_metric(m->value) + " |");
    for (const auto* t : fair_tags) line("| " + cell(t->first) + " | " + cell(t->second) + " |");
  }
  line();

  line("## Tags");
  line();
  if (other_tags.empty()) {
    line("No tags.");
  } else {
    line("| Tag | Value |");
    line("|---|---|");
    for (const auto* t : other_tags) line("| " + cell(t->first) + " | " + cell(t->second) + " |");
  }
  line();

  line("## Alias history");
  line();
  if (history.empty()) {
    line("No alias of " + v.model + " has been set.");
  } else {
    line("| Alias | Version | From | Until | By | Action | Reason |");
    line("|---|---|---|---|---|---|---|");
    for (const reg::AliasEvent& e : history) {
      std::string version = std::to_string(e.version);
      if (e.version == v.version) version = "**" + version + "**";
      line("| " + cell(e.alias) + " | " + version + " | " + utc_time(e.since) + " | " +
           (e.until ? utc_time(*e.until) : std::string("now")) + " | " + cell(e.actor) + " | " + e.action + " | " +
           (e.reason.empty() ? std::string("-") : cell(e.reason)) + " |");
    }
  }
  line();

  line("## Promotion decisions");
  line();
  std::vector<const reg::Decision*> mine;
  for (const reg::Decision& d : decisions)
    if (d.candidate == v.version) mine.push_back(&d);
  if (mine.empty()) {
    line("No gated promotion of this version has been decided.");
  } else {
    line("| At | Alias | Champion | Gate | Promoted | Reason |");
    line("|---|---|---|---|---|---|");
    for (const reg::Decision* d : mine)
      line("| " + utc_time(d->at) + " | " + cell(d->alias) + " | " +
           (d->champion ? std::to_string(d->champion) : std::string("none")) + " | " +
           (d->gate.empty() ? std::string("-") : code(cell(d->gate))) + " | " + (d->promoted ? "yes" : "no") + " | " +
           cell(d->reason) + " |");
  }
  return md;
}

}  // namespace sluice::engine
