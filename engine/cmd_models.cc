// `sluice models ...`: the model registry from the command line.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "dsl/suggest.h"
#include "engine/cli.h"
#include "engine/exit_status.h"
#include "engine/model_card.h"
#include "engine/model_json.h"
#include "registry/model_refs.h"
#include "registry/model_registry.h"
#include "registry/registration.h"

namespace sluice::engine {

namespace {

namespace fs = std::filesystem;
namespace reg = sluice::registry;
using nlohmann::json;

// A user mistake in a subcommand: printed as "sluice models SUB: error: ..." (exit 2).
struct Failure {
  std::string message;
};

bool as_json(const Args& args) { return args.flag("json"); }

void print_json(const json& j) { std::printf("%s\n", j.dump(2).c_str()); }

std::unique_ptr<reg::ModelRegistry> open_registry(const Args& args, bool create = false) {
  std::string home = state_home(args);
  if (!create && !fs::exists(home + "/sluice.db"))
    throw Failure{"no model registry in " + home + " (register a model first, or pass --home)"};
  std::error_code ec;
  fs::create_directories(home, ec);
  return std::make_unique<reg::ModelRegistry>(home + "/sluice.db");
}

template <class T>
T need(reg::Result<T> r) {
  if (!r) throw Failure{r.error()};
  return std::move(*r);
}

// NAME@REF, REF required unless `ref_optional`.
std::pair<std::string, std::string> model_ref(const std::string& text, bool ref_optional) {
  std::string name, ref;
  if (!reg::split_model_ref(text, name, ref) || (!ref_optional && ref.empty()))
    throw Failure{"'" + text + "' is not " + (ref_optional ? "NAME or " : "") + "NAME@VERSION or NAME@ALIAS"};
  return {name, ref};
}

std::string short_digest(const std::string& d) { return d.size() > 19 ? d.substr(0, 19) + ".." : d; }

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

// A plain text table: columns padded to their widest cell.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      std::string c = r[i];
      if (i + 1 < r.size()) c.resize(width[i] + 2, ' ');
      line += c;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
}

std::string aliases_text(const std::vector<std::pair<std::string, int64_t>>& aliases) {
  std::vector<std::string> parts;
  for (const auto& [a, v] : aliases) parts.push_back(a + "=" + std::to_string(v));
  return parts.empty() ? "-" : join(parts);
}

// ---- subcommands ----

int cmd_list(const Args& args) {
  std::vector<reg::ModelSummary> models;
  if (fs::exists(state_home(args) + "/sluice.db")) models = open_registry(args)->list_models();
  if (as_json(args)) {
    json list = json::array();
    for (const auto& m : models) {
      json aliases = json::object();
      for (const auto& [a, v] : m.aliases) aliases[a] = v;
      list.push_back({{"name", m.name}, {"versions", m.versions}, {"latest", m.latest}, {"aliases", aliases},
                      {"created_at", utc_time(m.created_at)}, {"updated_at", utc_time(m.updated_at)}});
    }
    print_json({{"models", list}});
    return kExitSuccess;
  }
  std::vector<std::vector<std::string>> rows{{"MODEL", "VERSIONS", "LATEST", "ALIASES", "UPDATED"}};
  for (const auto& m : models)
    rows.push_back({m.name, std::to_string(m.versions), std::to_string(m.latest), aliases_text(m.aliases),
                    utc_time(m.updated_at)});
  print_table(rows);
  return kExitSuccess;
}

void print_versions(const std::vector<reg::ModelVersion>& versions) {
  std::vector<std::vector<std::string>> rows{{"VERSION", "DIGEST", "FORMAT", "CREATED", "ALIASES", "STATUS"}};
  for (const auto& v : versions)
    rows.push_back({std::to_string(v.version), short_digest(v.digest), v.format.empty() ? "-" : v.format,
                    utc_time(v.created_at), v.aliases.empty() ? "-" : join(v.aliases),
                    v.archived() ? "archived" : "active"});
  print_table(rows);
}

void print_version(const reg::ModelVersion& v) {
  std::printf("model %s version %lld%s\n", v.model.c_str(), static_cast<long long>(v.version),
              v.aliases.empty() ? "" : (" (" + join(v.aliases) + ")").c_str());
  std::printf("  artifact    %s (%s %s, %lld bytes)\n", v.digest.c_str(),
              v.kind == reg::ArtifactKind::Tree ? "folder" : "file", v.filename.c_str(), static_cast<long long>(v.size));
  if (!v.format.empty()) std::printf("  format      %s\n", v.format.c_str());
  if (!v.description.empty()) std::printf("  description %s\n", v.description.c_str());
  std::printf("  registered  %s by %s\n", utc_time(v.created_at).c_str(), v.actor.c_str());
  if (v.archived()) std::printf("  archived    %s by %s\n", utc_time(*v.archived_at).c_str(), v.archived_by.c_str());
  const reg::ModelLineage& l = v.lineage;
  if (!l.run_id.empty())
    std::printf("  produced by %s in run %s%s%s\n", l.node.c_str(), l.run_id.c_str(),
                l.workflow_name.empty() ? "" : (" of workflow " + l.workflow_name).c_str(),
                l.git_commit.empty() ? "" : (", git " + l.git_commit).c_str());
  for (const auto& in : l.inputs) std::printf("  input       %s = %s\n", in.name.c_str(), in.digest.c_str());
  for (const auto& m : v.metrics) std::printf("  metric      %s = %s\n", m.name.c_str(), format_metric(m.value).c_str());
  json params = json::parse(v.params_json.empty() ? "{}" : v.params_json, nullptr, false);
  if (params.is_object())
    for (auto it = params.begin(); it != params.end(); ++it)
      std::printf("  param       %s = %s\n", it.key().c_str(),
                  it.value().is_string() ? it.value().get<std::string>().c_str() : it.value().dump().c_str());
  for (const auto& [k, t] : v.tags) std::printf("  tag         %s = %s\n", k.c_str(), t.c_str());
}

int cmd_show(const Args& args) {
  auto [name, ref] = model_ref(args.positional.at(1), true);
  auto registry = open_registry(args);
  if (!ref.empty()) {
    reg::ModelVersion v = need(registry->resolve(name, ref));
    if (as_json(args)) print_json(version_json(v));
    else print_version(v);
    return kExitSuccess;
  }
  reg::ModelSummary m = need(registry->model(name));
  std::vector<reg::ModelVersion> versions = need(registry->versions(name));
  if (as_json(args)) {
    json aliases = json::object(), list = json::array();
    for (const auto& [a, v] : m.aliases) aliases[a] = v;
    for (const auto& v : versions) list.push_back(version_json(v));
    print_json({{"name", m.name}, {"created_at", utc_time(m.created_at)}, {"aliases", aliases}, {"versions", list}});
    return kExitSuccess;
  }
  std::printf("model %s: %lld version%s, aliases %s\n\n", m.name.c_str(), static_cast<long long>(m.versions),
              m.versions == 1 ? "" : "s", aliases_text(m.aliases).c_str());
  print_versions(versions);
  return kExitSuccess;
}

int cmd_versions(const Args& args) {
  auto registry = open_registry(args);
  std::vector<reg::ModelVersion> versions = need(registry->versions(args.positional.at(1)));
  if (as_json(args)) {
    json list = json::array();
    for (const auto& v : versions) list.push_back(version_json(v));
    print_json({{"model", args.positional[1]}, {"versions", list}});
    return kExitSuccess;
  }
  print_versions(versions);
  return kExitSuccess;
}

int cmd_history(const Args& args) {
  auto registry = open_registry(args);
  const std::string& name = args.positional.at(1);
  const std::string alias = args.value("alias");
  std::vector<reg::AliasEvent> events = need(registry->history(name, alias));
  std::vector<reg::Decision> decisions = need(registry->decisions(name));
  if (!alias.empty())
    std::erase_if(decisions, [&](const reg::Decision& d) { return d.alias != alias; });
  if (as_json(args)) {
    json list = json::array(), dlist = json::array();
    for (const auto& e : events) list.push_back(event_json(e));
    for (const auto& d : decisions) dlist.push_back(decision_json(d));
    print_json({{"model", name}, {"history", list}, {"decisions", dlist}});
    return kExitSuccess;
  }
  std::vector<std::vector<std::string>> rows{{"ALIAS", "VERSION", "FROM", "UNTIL", "BY", "ACTION", "REASON"}};
  for (const auto& e : events)
    rows.push_back({e.alias, std::to_string(e.version), utc_time(e.since), e.until ? utc_time(*e.until) : "now",
                    e.actor, e.action, e.reason.empty() ? "-" : e.reason});
  print_table(rows);
  if (!decisions.empty()) {
    std::printf("\ndecisions:\n");
    std::vector<std::vector<std::string>> drows{{"AT", "ALIAS", "CANDIDATE", "CHAMPION", "PROMOTED", "REASON"}};
    for (const auto& d : decisions)
      drows.push_back({utc_time(d.at), d.alias, std::to_string(d.candidate),
                       d.champion ? std::to_string(d.champion) : "-", d.promoted ? "yes" : "no", d.reason});
    print_table(drows);
  }
  return kExitSuccess;
}

// One row of a diff: a name, A's and B's text ("" = absent).
struct DiffRow {
  std::string name, a, b;
  std::optional<double> delta;
};

std::string mark(const DiffRow& r) {
  if (r.a == r.b) return "=";
  if (r.a.empty()) return "+";
  if (r.b.empty()) return "-";
  return "~";
}

int cmd_diff(const Args& args) {
  const std::string& name = args.positional.at(1);
  auto registry = open_registry(args);
  reg::ModelVersion a = need(registry->resolve(name, args.positional.at(2)));
  reg::ModelVersion b = need(registry->resolve(name, args.positional.at(3)));

  std::vector<DiffRow> metrics, params, lineage;
  std::set<std::string> names;
  for (const auto& m : a.metrics) names.insert(m.name);
  for (const auto& m : b.metrics) names.insert(m.name);
  for (const std::string& n : names) {
    auto va = a.metric(n), vb = b.metric(n);
    DiffRow r{n, va ? format_metric(*va) : "", vb ? format_metric(*vb) : "", std::nullopt};
    if (va && vb) r.delta = *vb - *va;
    metrics.push_back(r);
  }
  json pa = json::parse(a.params_json.empty() ? "{}" : a.params_json, nullptr, false);
  json pb = json::parse(b.params_json.empty() ? "{}" : b.params_json, nullptr, false);
  if (!pa.is_object()) pa = json::object();
  if (!pb.is_object()) pb = json::object();
  std::set<std::string> keys;
  for (auto it = pa.begin(); it != pa.end(); ++it) keys.insert(it.key());
  for (auto it = pb.begin(); it != pb.end(); ++it) keys.insert(it.key());
  auto text = [](const json& o, const std::string& k) -> std::string {
    if (!o.contains(k)) return "";
    return o[k].is_string() ? o[k].get<std::string>() : o[k].dump();
  };
  for (const std::string& k : keys) params.push_back({k, text(pa, k), text(pb, k), std::nullopt});
  auto add = [&](const std::string& field, const std::string& x, const std::string& y) {
    lineage.push_back({field, x, y, std::nullopt});
  };
  add("artifact", a.digest, b.digest);
  add("format", a.format, b.format);
  add("run", a.lineage.run_id, b.lineage.run_id);
  add("step", a.lineage.node, b.lineage.node);
  add("workflow", a.lineage.workflow_name, b.lineage.workflow_name);
  add("workflow_digest", a.lineage.workflow_digest, b.lineage.workflow_digest);
  add("git_commit", a.lineage.git_commit, b.lineage.git_commit);
  std::map<std::string, std::pair<std::string, std::string>> inputs;
  for (const auto& in : a.lineage.inputs) inputs[in.name].first = in.digest;
  for (const auto& in : b.lineage.inputs) inputs[in.name].second = in.digest;
  for (const auto& [n, d] : inputs) add("input:" + n, d.first, d.second);

  if (as_json(args)) {
    auto rows_json = [](const std::vector<DiffRow>& rows) {
      json out = json::array();
      for (const DiffRow& r : rows) {
        json j = {{"name", r.name},
                  {"a", r.a.empty() ? json(nullptr) : json(r.a)},
                  {"b", r.b.empty() ? json(nullptr) : json(r.b)},
                  {"changed", r.a != r.b}};
        if (r.delta) j["delta"] = metric_json(*r.delta);
        out.push_back(j);
      }
      return out;
    };
    print_json({{"model", name}, {"a", a.version}, {"b", b.version}, {"metrics", rows_json(metrics)},
                {"params", rows_json(params)}, {"lineage", rows_json(lineage)}});
    return kExitSuccess;
  }
  std::printf("model %s: version %lld (A) vs version %lld (B)\n", name.c_str(), static_cast<long long>(a.version),
              static_cast<long long>(b.version));
  auto section = [](const char* title, const std::vector<DiffRow>& rows, bool with_delta) {
    std::printf("\n%s\n", title);
    if (rows.empty()) {
      std::printf("  (none)\n");
      return;
    }
    std::vector<std::vector<std::string>> table;
    for (const DiffRow& r : rows) {
      std::vector<std::string> row{"  " + mark(r), r.name, r.a.empty() ? "-" : r.a, r.b.empty() ? "-" : r.b};
      if (with_delta) {
        // Six significant digits: 0.84 - 0.81 is 0.029999999999999916 in doubles.
        char buf[32] = "";
        if (r.delta) std::snprintf(buf, sizeof buf, "%+.6g", *r.delta);
        row.push_back(buf);
      }
      table.push_back(row);
    }
    print_table(table);
  };
  section("metrics (A, B, B - A):", metrics, true);
  section("params:", params, false);
  section("lineage:", lineage, false);
  return kExitSuccess;
}

int cmd_promote(const Args& args) {
  const std::string& name = args.positional.at(1);
  const std::string alias = args.value("alias");
  if (alias.empty()) throw Failure{"--alias ALIAS is required"};
  auto registry = open_registry(args);
  reg::ModelVersion v = need(registry->resolve(name, args.positional.at(2)));
  reg::PromoteRequest r;
  r.model = name;
  r.version = v.version;
  r.alias = alias;
  r.actor = reg::default_actor();
  r.reason = args.value("reason");
  reg::PromoteResult out = need(registry->promote(r));
  const bool moved = out.outcome == reg::PromoteResult::Outcome::Moved;
  if (as_json(args)) {
    print_json({{"model", name}, {"alias", alias}, {"version", v.version}, {"moved", moved},
                {"previous", out.previous ? json(out.previous) : json(nullptr)}});
    return kExitSuccess;
  }
  if (!moved)
    std::printf("%s: version %lld already holds alias '%s'; nothing changed\n", name.c_str(),
                static_cast<long long>(v.version), alias.c_str());
  else if (out.previous)
    std::printf("%s: alias '%s' moved from version %lld to version %lld\n", name.c_str(), alias.c_str(),
                static_cast<long long>(out.previous), static_cast<long long>(v.version));
  else
    std::printf("%s: alias '%s' set to version %lld\n", name.c_str(), alias.c_str(), static_cast<long long>(v.version));
  return kExitSuccess;
}

int cmd_rollback(const Args& args) {
  const std::string& name = args.positional.at(1);
  const std::string alias = args.value("alias");
  if (alias.empty()) throw Failure{"--alias ALIAS is required"};
  auto registry = open_registry(args);
  reg::RollbackResult out = need(registry->rollback(name, alias, reg::default_actor(), args.value("reason")));
  if (as_json(args)) {
    print_json({{"model", name}, {"alias", alias}, {"from", out.from}, {"to", out.to}});
    return kExitSuccess;
  }
  std::printf("%s: alias '%s' rolled back from version %lld to version %lld\n", name.c_str(), alias.c_str(),
              static_cast<long long>(out.from), static_cast<long long>(out.to));
  return kExitSuccess;
}

int cmd_archive(const Args& args) {
  const std::string& name = args.positional.at(1);
  auto registry = open_registry(args);
  reg::ModelVersion target = need(registry->resolve(name, args.positional.at(2)));
  reg::ModelVersion v = need(registry->archive(name, target.version, reg::default_actor()));
  if (as_json(args)) print_json(version_json(v));
  else std::printf("%s: version %lld archived\n", name.c_str(), static_cast<long long>(v.version));
  return kExitSuccess;
}

int cmd_download(const Args& args) {
  auto [name, ref] = model_ref(args.positional.at(1), false);
  const std::string out = args.value("output");
  if (out.empty()) throw Failure{"-o PATH is required"};
  auto registry = open_registry(args);
  reg::ModelVersion v = need(registry->resolve(name, ref));
  auto cas = reg::ArtifactStore::open(state_home(args));
  if (!cas) throw Failure{cas.error()};
  auto digest = need(reg::Digest::parse(v.digest));
  const std::string dest = fs::absolute(out).lexically_normal().string();
  if (fs::exists(fs::symlink_status(dest))) throw Failure{"'" + out + "' already exists"};
  if (auto made = cas->materialize(digest, dest); !made) throw Failure{made.error()};
  if (as_json(args)) {
    json j = version_json(v);
    j["path"] = dest;
    print_json(j);
    return kExitSuccess;
  }
  std::printf("%s version %lld (%s) -> %s\n", name.c_str(), static_cast<long long>(v.version), v.digest.c_str(),
              dest.c_str());
  return kExitSuccess;
}

int cmd_card(const Args& args) {
  auto [name, ref] = model_ref(args.positional.at(1), false);
  auto registry = open_registry(args);
  reg::ModelVersion v = need(registry->resolve(name, ref));
  std::string md = render_model_card(v, need(registry->history(name)), need(registry->decisions(name)));
  const std::string out = args.value("output");
  if (!out.empty()) {
    std::ofstream f(out, std::ios::binary);
    f << md;
    if (!f.flush()) throw Failure{"cannot write '" + out + "'"};
  }
  if (as_json(args)) {
    json j = version_json(v);
    j["card"] = md;
    print_json(j);
  } else if (out.empty()) {
    std::fputs(md.c_str(), stdout);
  } else {
    std::printf("model card of %s version %lld written to %s\n", name.c_str(), static_cast<long long>(v.version),
                out.c_str());
  }
  return kExitSuccess;
}

std::pair<std::string, std::string> key_value(const std::string& text, const char* option) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Failure{"--" + std::string(option) + " '" + text + "': expected NAME=VALUE"};
  return {text.substr(0, eq), text.substr(eq + 1)};
}

int cmd_register(const Args& args) {
  reg::Registration r;
  r.home = state_home(args);
  r.model = args.positional.at(1);
  r.artifact = fs::absolute(args.positional.at(2)).string();
  r.format = args.value("format");
  r.description = args.value("description");
  r.actor = reg::default_actor();
  if (!args.all("metric").empty()) {
    std::vector<reg::MetricValue> metrics;
    for (const std::string& m : args.all("metric")) {
      auto [k, v] = key_value(m, "metric");
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      if (v.empty() || end != v.c_str() + v.size()) throw Failure{"--metric '" + m + "': '" + v + "' is not a number"};
      metrics.push_back({k, d});
    }
    r.metrics = metrics;
  }
  for (const std::string& t : args.all("tag")) r.tags.push_back(key_value(t, "tag"));
  open_registry(args, true);  // creates the home and database when missing
  reg::ModelVersion v = need(reg::register_artifact(r));
  if (as_json(args)) print_json(version_json(v));
  else std::printf("registered %s version %lld (%s)\n", v.model.c_str(), static_cast<long long>(v.version), v.digest.c_str());
  return kExitSuccess;
}

struct Sub {
  const char* name;
  size_t min_args, max_args;  // after the subcommand
  const char* usage;
  int (*run)(const Args&);
};

const Sub kSubs[] = {
    {"list", 0, 0, "list", cmd_list},
    {"show", 1, 1, "show NAME[@VERSION|@ALIAS]", cmd_show},
    {"versions", 1, 1, "versions NAME", cmd_versions},
    {"history", 1, 1, "history NAME [--alias ALIAS]", cmd_history},
    {"diff", 3, 3, "diff NAME A B", cmd_diff},
    {"promote", 2, 2, "promote NAME VERSION --alias ALIAS [--reason TEXT]", cmd_promote},
    {"rollback", 1, 1, "rollback NAME --alias ALIAS [--reason TEXT]", cmd_rollback},
    {"archive", 2, 2, "archive NAME VERSION", cmd_archive},
    {"download", 1, 1, "download NAME@VERSION|NAME@ALIAS -o PATH", cmd_download},
    {"card", 1, 1, "card NAME@VERSION|NAME@ALIAS [-o FILE]", cmd_card},
    {"register", 2, 2, "register NAME PATH [--format F] [--description TEXT] [--metric K=V]... [--tag K=V]...",
     cmd_register},
};

int run_models(const Args& args) {
  const Command& cmd = models_command();
  const std::string& sub_name = args.positional.at(0);
  const Sub* sub = nullptr;
  std::vector<std::string> names;
  for (const Sub& s : kSubs) {
    names.push_back(s.name);
    if (sub_name == s.name) sub = &s;
  }
  if (!sub) return usage_error(cmd, "unknown models command '" + sub_name + "'" + dsl::did_you_mean(sub_name, names));
  const size_t n = args.positional.size() - 1;
  if (n < sub->min_args || n > sub->max_args)
    return usage_error(cmd, std::string(n < sub->min_args ? "missing argument" : "unexpected argument") +
                                ": sluice models " + sub->usage);
  try {
    return sub->run(args);
  } catch (const Failure& f) {
    std::fprintf(stderr, "sluice models %s: error: %s\n", sub->name, f.message.c_str());
    return kExitBadInput;
  }
}

std::string details() {
  std::string text = "commands:\n";
  for (const Sub& s : kSubs) text += std::string("  sluice models ") + s.usage + "\n";
  text +=
      "\nVERSION is a number, 'latest' (the newest unarchived version) or an alias.\n"
      "The actor recorded for promote, rollback, archive and register is $SLUICE_ACTOR, else the OS user.";
  return text;
}

}  // namespace

const Command& models_command() {
  static const Command cmd{"models",
                           "the model registry: versions, aliases and their history, model cards",
                           "sluice models COMMAND [ARGS] [--json] [--home DIR]",
                           details(),
                           {{"json", 0, "", "print JSON"},
                            {"alias", 0, "ALIAS", "the alias to move or roll back (promote, rollback, history)"},
                            {"reason", 0, "TEXT", "why, recorded in the alias history"},
                            {"output", 'o', "PATH", "where to write (download, card)"},
                            {"format", 0, "FORMAT", "the artifact's format (register)"},
                            {"description", 0, "TEXT", "a line for the model card (register)"},
                            {"metric", 0, "NAME=VALUE", "a metric (register; repeatable)", true},
                            {"tag", 0, "KEY=VALUE", "a tag (register; repeatable)", true},
                            {"home", 0, "DIR", "the state folder (default: $SLUICE_HOME or ./.sluice)"}},
                           1,
                           4,
                           run_models};
  return cmd;
}

}  // namespace sluice::engine
