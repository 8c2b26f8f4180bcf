// The reader: walks the TOML document and builds the workflow spec, reporting
// every structural and type error with its position. Reference checks and the
// DAG come afterwards (checker.cc).
#include "dsl/parser.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include <toml++/toml.h>

#include "dsl/checker.h"
#include "dsl/cron.h"
#include "dsl/lua_expr.h"
#include "dsl/names.h"
#include "dsl/paths.h"
#include "dsl/source_map.h"
#include "dsl/suggest.h"
#include "dsl/toml_read.h"
#include "dsl/triggers.h"

namespace sluice::dsl {

namespace {

const std::vector<std::string> kTopKeys = {"name",     "description", "params", "env",
                                           "defaults", "schedule",    "triggers", "steps"};
const std::vector<std::string> kStepKeys = {
    "run",     "lua",         "lua_inline",    "uses",  "with",  "inputs",   "outputs",
    "needs",   "env",         "when",          "retries", "retry_backoff", "timeout",
    "cache",   "matrix",      "resources",     "executor", "continue_on_error", "description"};
const std::vector<std::string> kDefaultKeys = {"retries", "retry_backoff", "timeout", "cache",
                                               "resources", "executor", "continue_on_error"};
const std::vector<std::string> kResourceKeys = {"cpus", "memory", "gpus"};
const std::vector<std::string> kScheduleKeys = {"cron",     "timezone",    "catchup",       "catchup_window",
                                                "overlap",  "on_dst_gap",  "on_dst_repeat", "deadline"};
const std::vector<std::string> kTriggerEvents = {"push", "release"};
const std::vector<std::string> kPushKeys = {"repository", "branches", "tags", "params"};
const std::vector<std::string> kReleaseKeys = {"repository", "actions", "tags", "params"};
const std::vector<std::string> kExecutors = {"local"};
const std::vector<std::string> kActionKeys = {"run", "lua", "lua_inline", "uses"};

// Settings a step inherits from [defaults] unless it says otherwise.
struct StepDefaults {
  int64_t retries = 0;
  Duration retry_backoff = Duration(1000);
  std::optional<Duration> timeout;
  bool cache = true;
  Resources resources;
  std::string executor = "local";
  bool continue_on_error = false;
};

class Reader : TomlReader {
 public:
  Reader(Workflow& wf, Diagnostics& diags) : TomlReader(diags), wf_(wf), map_(wf.source) {}

  void read(const toml::table& root) {
    for (auto&& [k, v] : root) {
      const std::string key(k.str());
      if (std::find(kTopKeys.begin(), kTopKeys.end(), key) == kTopKeys.end())
        diags_.error("unknown-key", pos(k), "unknown top-level key '" + key + "'" + did_you_mean(key, kTopKeys));
    }
    read_name(root);
    if (auto* n = root.get("description")) get_string(*n, "'description'", wf_.description);
    if (auto* n = root.get("params")) read_params(*n);
    if (auto* n = root.get("env")) read_env(*n, "[env]", wf_.env);
    StepDefaults defaults;
    if (auto* n = root.get("defaults")) read_defaults(*n, defaults);
    if (auto* n = root.get("schedule")) read_schedule(*n);
    if (auto* n = root.get("triggers")) read_triggers(*n);
    if (auto* n = root.get("steps")) {
      read_steps(*n, defaults);
    } else {
      diags_.error("no-steps", SourcePos{1, 1}, "workflow has no steps: add at least one [steps.NAME] table");
    }
  }

 private:
  PosMap string_positions(const toml::node& n) const {
    SourcePos start = pos(n);
    return [this, start](size_t off) { return map_.in_string(start, off); };
  }

  bool get_duration(const toml::node& n, const std::string& what, Duration& out) {
    if (!n.is_string()) {
      type_error(n, what, "a duration string such as \"90s\", \"30m\" or \"2h\"");
      return false;
    }
    const std::string text = n.as_string()->get();
    std::string error;
    if (!parse_duration(text, out, error)) {
      diags_.error("bad-duration", pos(n), what + ": " + error);
      return false;
    }
    return true;
  }

  void read_name(const toml::table& root) {
    const toml::node* n = root.get("name");
    if (!n) {
      diags_.error("missing-key", SourcePos{1, 1}, "missing required top-level key 'name'");
      return;
    }
    if (!get_string(*n, "'name'", wf_.name)) return;
    if (!is_valid_name(wf_.name))
      diags_.error("bad-name", pos(*n), "invalid workflow name '" + wf_.name + "': " + kNameRule);
  }

  void read_params(const toml::node& node) {
    const toml::table* t = get_table(node, "[params]");
    if (!t) return;
    for (auto&& [k, v] : *t) {
      Param p;
      p.name = std::string(k.str());
      p.pos = pos(k);
      // A param in error stays declared, so references to it add no second error.
      if (!is_identifier(p.name)) {
        diags_.error("bad-name", p.pos, "invalid param name '" + p.name + "': " + kIdentifierRule);
        wf_.params.push_back(std::move(p));
        continue;
      }
      const std::string what = "param '" + p.name + "'";
      if (v.is_table()) {
        diags_.error("type", pos(v), what + " must be a string, integer, float, boolean or array of these, found a table");
        wf_.params.push_back(std::move(p));
        continue;
      }
      if (!to_value(v, what, p.default_value)) {
        wf_.params.push_back(std::move(p));
        continue;
      }
      p.type = p.default_value.type();
      if (p.type == ValueType::Array) {
        const ValueArray& a = p.default_value.as_array();
        const toml::array& nodes = *v.as_array();
        for (size_t i = 0; i < a.size(); ++i) {
          if (a[i].type() == ValueType::Array || a[i].type() == ValueType::Table) {
            diags_.error("type", pos(nodes[i]), what + ": array elements must be strings, integers, floats or booleans, found " +
                                                    toml_type_phrase(nodes[i].type()));
            break;
          }
          if (i > 0 && a[i].type() != a[0].type()) {
            diags_.error("type", pos(nodes[i]), what + ": array elements must all have one type, found " +
                                                    type_name(a[0].type()) + " and " + type_name(a[i].type()));
            break;
          }
        }
        p.element = a.empty() ? ValueType::String : a[0].type();
      }
      wf_.params.push_back(std::move(p));
    }
  }

  void read_env(const toml::node& node, const std::string& where, std::vector<NamedTemplate>& out) {
    const toml::table* t = get_table(node, where);
    if (!t) return;
    for (auto&& [k, v] : *t) {
      NamedTemplate e;
      e.name = std::string(k.str());
      e.pos = pos(k);
      if (!is_env_name(e.name)) {
        diags_.error("bad-name", e.pos, "invalid environment variable name '" + e.name + "' in " + where +
                                            ": use letters, digits and '_', not starting with a digit");
        continue;
      }
      const std::string what = "'" + e.name + "' in " + where;
      if (v.is_string()) {
        e.value = parse_template(v.as_string()->get(), diags_, string_positions(v));
      } else if (v.is_integer() || v.is_floating_point() || v.is_boolean()) {
        Value val;
        to_value(v, what, val);
        e.value = parse_template(val.to_text(), diags_, [p = pos(v)](size_t) { return p; });
      } else {
        type_error(v, what, "a string");
        continue;
      }
      out.push_back(std::move(e));
    }
  }

  void read_resources(const toml::node& node, const std::string& where, Resources& r) {
    const toml::table* t = get_table(node, "'resources' in " + where);
    if (!t) return;
    check_keys(*t, kResourceKeys, "resources of " + where);
    if (auto* n = t->get("cpus")) {
      double cpus = 0;
      if (auto* i = n->as_integer()) cpus = static_cast<double>(i->get());
      else if (auto* f = n->as_floating_point()) cpus = f->get();
      else {
        type_error(*n, "'cpus' in resources of " + where, "a number");
        cpus = r.cpus;
      }
      if (!(cpus > 0) || !std::isfinite(cpus))
        diags_.error("bad-value", pos(*n), "'cpus' in resources of " + where + " must be greater than 0");
      else
        r.cpus = cpus;
    }
    if (auto* n = t->get("memory")) {
      if (auto* i = n->as_integer()) {
        if (i->get() <= 0) diags_.error("bad-value", pos(*n), "'memory' in resources of " + where + " must be greater than 0");
        else r.memory = static_cast<uint64_t>(i->get());
      } else if (auto* str = n->as_string()) {
        std::string error;
        uint64_t bytes = 0;
        if (!parse_size(str->get(), bytes, error))
          diags_.error("bad-size", pos(*n), "'memory' in resources of " + where + ": " + error);
        else if (bytes == 0)
          diags_.error("bad-value", pos(*n), "'memory' in resources of " + where + " must be greater than 0");
        else
          r.memory = bytes;
      } else {
        type_error(*n, "'memory' in resources of " + where, "a size such as \"4G\" or a number of bytes");
      }
    }
    if (auto* n = t->get("gpus")) {
      if (auto* i = n->as_integer(); i && i->get() >= 0) r.gpus = i->get();
      else if (n->is_integer()) diags_.error("bad-value", pos(*n), "'gpus' in resources of " + where + " must be 0 or more");
      else type_error(*n, "'gpus' in resources of " + where, "an integer");
    }
  }

  void read_retries(const toml::node& n, const std::string& where, int64_t& out) {
    auto* i = n.as_integer();
    if (!i) {
      type_error(n, "'retries' in " + where, "an integer");
      return;
    }
    if (i->get() < 0 || i->get() > 100) {
      diags_.error("bad-value", pos(n), "'retries' in " + where + " must be between 0 and 100, found " +
                                            std::to_string(i->get()));
      return;
    }
    out = i->get();
  }

  void read_executor(const toml::node& n, const std::string& where, std::string& out) {
    std::string e;
    if (!get_string(n, "'executor' in " + where, e)) return;
    if (std::find(kExecutors.begin(), kExecutors.end(), e) == kExecutors.end()) {
      diags_.error("bad-value", pos(n), "unknown executor '" + e + "' in " + where + ": known executors are local" +
                                            did_you_mean(e, kExecutors));
      return;
    }
    out = e;
  }

  // The settings shared by [defaults] and steps.
  void read_common(const toml::table& t, const std::string& where, StepDefaults& d) {
    if (auto* n = t.get("retries")) read_retries(*n, where, d.retries);
    if (auto* n = t.get("retry_backoff")) get_duration(*n, "'retry_backoff' in " + where, d.retry_backoff);
    if (auto* n = t.get("timeout")) {
      Duration to{};
      if (get_duration(*n, "'timeout' in " + where, to)) {
        if (to.count() == 0) diags_.error("bad-value", pos(*n), "'timeout' in " + where + " must be greater than 0");
        else d.timeout = to;
      }
    }
    if (auto* n = t.get("cache")) get_bool(*n, "'cache' in " + where, d.cache);
    if (auto* n = t.get("resources")) read_resources(*n, where, d.resources);
    if (auto* n = t.get("executor")) read_executor(*n, where, d.executor);
    if (auto* n = t.get("continue_on_error")) get_bool(*n, "'continue_on_error' in " + where, d.continue_on_error);
  }

  void read_defaults(const toml::node& node, StepDefaults& d) {
    const toml::table* t = get_table(node, "[defaults]");
    if (!t) return;
    check_keys(*t, kDefaultKeys, "[defaults]");
    read_common(*t, "[defaults]", d);
  }

  template <class E>
  void read_enum(const toml::table& t, const char* key, const std::vector<std::pair<std::string, E>>& options, E& out) {
    const toml::node* n = t.get(key);
    if (!n) return;
    std::string text;
    const std::string what = std::string("'") + key + "' in [schedule]";
    if (!get_string(*n, what, text)) return;
    std::vector<std::string> names;
    for (const auto& [name, value] : options) {
      if (name == text) {
        out = value;
        return;
      }
      names.push_back(name);
    }
    std::string list;
    for (size_t i = 0; i < names.size(); ++i) list += (i ? ", " : "") + names[i];
    diags_.error("bad-value", pos(*n), what + " must be one of " + list + "; found '" + text + "'" + did_you_mean(text, names));
  }

  void read_schedule(const toml::node& node) {
    const toml::table* t = get_table(node, "[schedule]");
    if (!t) return;
    check_keys(*t, kScheduleKeys, "[schedule]");
    Schedule s;
    s.pos = pos(node);
    const toml::node* cron = t->get("cron");
    if (!cron) {
      diags_.error("missing-key", s.pos, "[schedule] needs a 'cron' expression, e.g. cron = \"0 3 * * *\"");
    } else if (get_string(*cron, "'cron' in [schedule]", s.cron)) {
      CronExpr expr;
      std::string error;
      size_t offset = 0;
      if (!CronExpr::parse(s.cron, expr, error, offset))
        diags_.error("bad-cron", map_.in_string(pos(*cron), offset), "'cron' in [schedule]: " + error);
    }
    if (auto* n = t->get("timezone")) {
      if (get_string(*n, "'timezone' in [schedule]", s.timezone) && !is_known_timezone(s.timezone))
        diags_.error("bad-timezone", pos(*n), "unknown time zone '" + s.timezone + "': use an IANA name such as 'Europe/Berlin'" +
                                                  did_you_mean(s.timezone, timezone_names()));
    }
    read_enum<Catchup>(*t, "catchup", {{"none", Catchup::None}, {"latest", Catchup::Latest}, {"all", Catchup::All}}, s.catchup);
    if (auto* n = t->get("catchup_window")) get_duration(*n, "'catchup_window' in [schedule]", s.catchup_window);
    read_enum<Overlap>(*t, "overlap", {{"skip", Overlap::Skip}, {"queue", Overlap::Queue}, {"cancel", Overlap::Cancel}}, s.overlap);
    read_enum<DstGap>(*t, "on_dst_gap", {{"shift", DstGap::Shift}, {"skip", DstGap::Skip}}, s.on_dst_gap);
    read_enum<DstRepeat>(*t, "on_dst_repeat", {{"first", DstRepeat::First}, {"last", DstRepeat::Last}, {"both", DstRepeat::Both}},
                         s.on_dst_repeat);
    if (auto* n = t->get("deadline")) {
      Duration d{};
      if (get_duration(*n, "'deadline' in [schedule]", d)) s.deadline = d;
    }
    wf_.schedule = std::move(s);
  }

  // [triggers]: `push` and `release`, each a table or an array of tables.
  void read_triggers(const toml::node& node) {
    const toml::table* t = get_table(node, "[triggers]");
    if (!t) return;
    for (auto&& [k, v] : *t) {
      const std::string name(k.str());
      if (std::find(kTriggerEvents.begin(), kTriggerEvents.end(), name) == kTriggerEvents.end()) {
        diags_.error("unknown-key", pos(k), "unknown event '" + name + "' in [triggers]: use push or release" +
                                                did_you_mean(name, kTriggerEvents));
        continue;
      }
      const TriggerEvent event = name == "push" ? TriggerEvent::Push : TriggerEvent::Release;
      const std::string where = "[[triggers." + name + "]]";
      if (const toml::table* one = v.as_table()) {
        read_trigger(event, *one, where);
      } else if (const toml::array* many = v.as_array()) {
        for (const toml::node& e : *many) {
          if (const toml::table* et = e.as_table()) read_trigger(event, *et, where);
          else type_error(e, "an entry of '" + name + "' in [triggers]", "a table");
        }
      } else {
        type_error(v, "'" + name + "' in [triggers]", "a table or an array of tables");
      }
    }
  }

  void read_trigger(TriggerEvent event, const toml::table& t, const std::string& where) {
    EventTrigger tr;
    tr.event = event;
    tr.pos = pos(t);
    const std::vector<std::string>& allowed = event == TriggerEvent::Push ? kPushKeys : kReleaseKeys;
    for (auto&& [k, v] : t) {
      const std::string key(k.str());
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      if (key == "branches" && event == TriggerEvent::Release)
        diags_.error("unknown-key", pos(k), "'branches' is not a filter of " + where + ": a release has a tag, filter it with 'tags'");
      else if (key == "actions" && event == TriggerEvent::Push)
        diags_.error("unknown-key", pos(k), "'actions' is not a filter of " + where + ": pushes have no action");
      else
        diags_.error("unknown-key", pos(k), "unknown key '" + key + "' in " + where + did_you_mean(key, allowed));
    }
    if (auto* n = t.get("repository")) {
      if (get_string(*n, "'repository' in " + where, tr.repository) && !is_repository_name(tr.repository))
        diags_.error("bad-value", pos(*n), "invalid repository '" + tr.repository + "' in " + where +
                                               ": use 'owner/name' as GitHub shows it");
    }
    if (event == TriggerEvent::Push)
      if (auto* n = t.get("branches")) read_patterns(*n, "'branches' in " + where, tr.branches);
    if (auto* n = t.get("tags")) read_patterns(*n, "'tags' in " + where, tr.tags);
    if (event == TriggerEvent::Release) {
      if (auto* n = t.get("actions")) {
        read_patterns(*n, "'actions' in " + where, tr.actions);
        const toml::array* a = n->as_array();
        for (size_t i = 0; a && i < tr.actions.size() && i < a->size(); ++i) {
          const std::vector<std::string>& known = release_actions();
          if (std::find(known.begin(), known.end(), tr.actions[i]) != known.end()) continue;
          std::string list;
          for (size_t j = 0; j < known.size(); ++j) list += (j ? ", " : "") + known[j];
          diags_.error("bad-value", pos((*a)[i]), "unknown release action '" + tr.actions[i] + "' in " + where + ": use " +
                                                      list + did_you_mean(tr.actions[i], known));
        }
      }
    }
    if (auto* n = t.get("params")) read_trigger_params(event, *n, where, tr.params);
    wf_.triggers.push_back(std::move(tr));
  }

  static bool is_repository_name(const std::string& s) {
    size_t slash = s.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == s.size() || s.find('/', slash + 1) != std::string::npos)
      return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/';
    });
  }

  // An array of non-empty strings (branch and tag patterns, actions).
  void read_patterns(const toml::node& n, const std::string& what, std::vector<std::string>& out) {
    const toml::array* a = n.as_array();
    if (!a) {
      type_error(n, what, "an array of strings");
      return;
    }
    if (a->empty()) diags_.error("bad-value", pos(n), what + " is empty: leave it out to take every one");
    for (const toml::node& e : *a) {
      std::string text;
      if (!get_string(e, "an entry of " + what, text)) continue;
      if (text.empty()) {
        diags_.error("bad-value", pos(e), "empty entry in " + what);
        continue;
      }
      out.push_back(std::move(text));
    }
  }

  // Trigger params: literal values, or strings with ${event.NAME}. Whether
  // each names a declared param of a fitting type is the checker's part.
  void read_trigger_params(TriggerEvent event, const toml::node& node, const std::string& where,
                           std::vector<TriggerParam>& out) {
    const toml::table* t = get_table(node, "'params' in " + where);
    if (!t) return;
    for (auto&& [k, v] : *t) {
      TriggerParam p;
      p.name = std::string(k.str());
      p.pos = pos(k);
      p.value_pos = pos(v);
      const std::string what = "param '" + p.name + "' of " + where;
      if (!to_value(v, what, p.value)) continue;
      if (p.value.is_string()) split_event_fields(event, p.value.as_string(), pos(v), what, p);
      out.push_back(std::move(p));
    }
  }

  void split_event_fields(TriggerEvent event, const std::string& text, SourcePos at, const std::string& what,
                          TriggerParam& p) {
    std::string literal;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '$' || i + 1 >= text.size() || (text[i + 1] != '$' && text[i + 1] != '{')) {
        literal += text[i];
        continue;
      }
      if (text[i + 1] == '$') {
        literal += '$';
        ++i;
        continue;
      }
      const size_t close = text.find('}', i);
      if (close == std::string::npos) {
        diags_.error("bad-template", map_.in_string(at, i),
                     "unterminated '${' in " + what + ": add '}' (write '$$' for a literal '$')");
        return;
      }
      const std::string inner = text.substr(i + 2, close - i - 2);
      const std::string ref = text.substr(i, close - i + 1);
      if (inner.rfind("event.", 0) != 0) {
        diags_.error("bad-reference", map_.in_string(at, i),
                     "'" + ref + "' cannot be used in " + what + ": trigger params may refer only to ${event.NAME}");
      } else {
        const std::string field = inner.substr(6);
        const std::vector<std::string>& known = event_fields(event);
        if (std::find(known.begin(), known.end(), field) == known.end()) {
          std::string list;
          for (size_t j = 0; j < known.size(); ++j) list += (j ? ", " : "") + known[j];
          diags_.error("bad-reference", map_.in_string(at, i),
                       "unknown event field '" + field + "' in " + what + ": " + to_string(event) + " events have " + list +
                           did_you_mean(field, known));
        }
        if (!literal.empty()) p.parts.push_back(EventPart{false, std::move(literal)});
        literal.clear();
        p.parts.push_back(EventPart{true, field});
        p.has_event_fields = true;
      }
      i = close;
    }
    if (!literal.empty()) p.parts.push_back(EventPart{false, std::move(literal)});
  }

  void read_steps(const toml::node& node, const StepDefaults& defaults) {
    const toml::table* t = get_table(node, "[steps]");
    if (!t) return;
    // TOML++ keeps keys sorted; declaration order is the order in the file.
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (auto&& [k, v] : *t) entries.emplace_back(&k, &v);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      const auto& pa = a.first->source().begin;
      const auto& pb = b.first->source().begin;
      return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    if (entries.empty()) diags_.error("no-steps", pos(node), "workflow has no steps: add at least one [steps.NAME] table");
    wf_.steps.reserve(entries.size());
    for (const auto& [k, v] : entries) read_step(*k, *v, defaults);
  }

  void read_step(const toml::key& k, const toml::node& node, const StepDefaults& defaults) {
    Step s;
    s.name = std::string(k.str());
    s.pos = pos(k);
    const std::string where = "step '" + s.name + "'";
    if (!is_valid_name(s.name)) diags_.error("bad-name", s.pos, "invalid step name '" + s.name + "': " + kNameRule);
    const toml::table* t = get_table(node, where);
    if (!t) {
      wf_.steps.push_back(std::move(s));  // keep the name so references to it stay valid
      return;
    }
    check_keys(*t, kStepKeys, where);

    // Exactly one action.
    std::vector<std::pair<std::string, const toml::node*>> actions;
    for (const std::string& a : kActionKeys)
      if (auto* n = t->get(a)) actions.emplace_back(a, n);
    std::sort(actions.begin(), actions.end(), [this](const auto& a, const auto& b) {
      SourcePos pa = pos(*a.second), pb = pos(*b.second);
      return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    if (actions.empty()) {
      diags_.error("no-action", s.pos, where + " has no action: give one of 'run', 'lua', 'lua_inline' or 'uses'");
    } else if (actions.size() > 1) {
      diags_.error("two-actions", key_pos(*t, actions[1].first),
                   where + " has both '" + actions[0].first + "' and '" + actions[1].first +
                       "': give exactly one of 'run', 'lua', 'lua_inline' or 'uses'");
    } else {
      read_action(s, actions[0].first, *actions[0].second, where);
    }

    if (auto* n = t->get("description")) get_string(*n, "'description' in " + where, s.description);
    if (auto* n = t->get("with")) {
      if (!actions.empty() && !t->contains("uses"))
        diags_.error("with-without-uses", key_pos(*t, "with"), "'with' in " + where + " is only for plugin actions ('uses')");
      read_with(s, *n, where);
    }
    if (auto* n = t->get("inputs")) read_named_paths(*n, "inputs", where, s.inputs, true);
    if (auto* n = t->get("outputs")) read_named_paths(*n, "outputs", where, s.outputs, false);
    if (auto* n = t->get("env")) read_env(*n, "env of " + where, s.env);
    if (auto* n = t->get("needs")) read_needs(s, *n, where);
    if (auto* n = t->get("when")) {
      if (get_string(*n, "'when' in " + where, s.when)) {
        s.when_pos = pos(*n);
        if (s.when.find_first_not_of(" \t\r\n") == std::string::npos) {
          diags_.error("bad-when", s.when_pos, "'when' in " + where + " is empty: leave it out to always run the step");
        } else {
          std::string err = lua_expression_error(s.when);
          if (!err.empty()) diags_.error("bad-when", s.when_pos, "invalid 'when' expression in " + where + ": " + err);
        }
      }
    }
    if (auto* n = t->get("matrix")) read_matrix(s, *n, where);

    StepDefaults d = defaults;
    read_common(*t, where, d);
    s.retries = d.retries;
    s.retry_backoff = d.retry_backoff;
    s.timeout = d.timeout;
    s.cache = d.cache;
    s.resources = d.resources;
    s.executor = d.executor;
    s.continue_on_error = d.continue_on_error;
    wf_.steps.push_back(std::move(s));
  }

  void read_action(Step& s, const std::string& kind, const toml::node& n, const std::string& where) {
    std::string text;
    if (!get_string(n, "'" + kind + "' in " + where, text)) return;
    s.script_pos = pos(n);
    if (kind == "run") {
      s.kind = ActionKind::Run;
      if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        diags_.error("bad-value", pos(n), "'run' in " + where + " is empty");
      s.command = parse_template(text, diags_, string_positions(n));
    } else if (kind == "lua") {
      s.kind = ActionKind::Lua;
      s.script = text;
      if (text.empty()) diags_.error("bad-value", pos(n), "'lua' in " + where + " must name a script file");
    } else if (kind == "lua_inline") {
      s.kind = ActionKind::LuaInline;
      s.script = text;
      if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        diags_.error("bad-value", pos(n), "'lua_inline' in " + where + " is empty");
    } else {
      s.kind = ActionKind::Uses;
      size_t dot = text.rfind('.');
      if (dot == std::string::npos || dot == 0 || dot + 1 == text.size() ||
          !is_plugin_name(text.substr(0, dot)) || !is_identifier(text.substr(dot + 1))) {
        diags_.error("bad-uses", pos(n), "'uses' in " + where + " must name a plugin action as '<plugin>.<action>', found '" +
                                             text + "'");
        return;
      }
      s.plugin = text.substr(0, dot);
      s.action = text.substr(dot + 1);
    }
  }

  // Collects the templates inside strings of a `with` value, recursively.
  void collect_templates(const toml::node& n, Step& s) {
    if (auto* str = n.as_string()) {
      if (str->get().find('$') != std::string::npos) {
        Template tpl = parse_template(str->get(), diags_, string_positions(n));
        if (tpl.has_refs()) s.with_templates.push_back(std::move(tpl));
      }
    } else if (auto* a = n.as_array()) {
      for (const toml::node& e : *a) collect_templates(e, s);
    } else if (auto* t = n.as_table()) {
      for (auto&& [k, e] : *t) collect_templates(e, s);
    }
  }

  void read_with(Step& s, const toml::node& node, const std::string& where) {
    const toml::table* t = get_table(node, "'with' in " + where);
    if (!t) return;
    for (auto&& [k, v] : *t) {
      WithArg arg;
      arg.name = std::string(k.str());
      arg.pos = pos(k);
      if (!to_value(v, "'" + arg.name + "' in 'with' of " + where, arg.value)) continue;
      collect_templates(v, s);
      s.with.push_back(std::move(arg));
    }
  }

  void read_named_paths(const toml::node& node, const char* field, const std::string& where,
                        std::vector<NamedTemplate>& out, bool templated) {
    const toml::table* t = node.as_table();
    if (!t) {
      type_error(node, std::string("'") + field + "' in " + where, "a table");
      return;
    }
    for (auto&& [k, v] : *t) {
      NamedTemplate e;
      e.name = std::string(k.str());
      e.pos = pos(k);
      // An entry in error stays declared, so references to it add no second error.
      if (!is_identifier(e.name)) {
        diags_.error("bad-name", e.pos, std::string("invalid ") + (templated ? "input" : "output") + " name '" + e.name +
                                            "' in " + where + ": " + kIdentifierRule);
        out.push_back(std::move(e));
        continue;
      }
      const std::string what = std::string(templated ? "input" : "output") + " '" + e.name + "' of " + where;
      std::string text;
      if (!get_string(v, what, text) || text.empty()) {
        if (v.is_string()) diags_.error("bad-path", pos(v), what + " is an empty path");
        out.push_back(std::move(e));
        continue;
      }
      if (templated) {
        e.value = parse_template(text, diags_, string_positions(v));
      } else {
        std::string why = unsafe_relative_path(text);
        if (!why.empty()) {
          diags_.error("bad-path", pos(v), what + " must be a relative path inside the step's work dir: " + why);
        } else if (size_t at = text.find("${"); at != std::string::npos) {
          // Outputs are plain paths: a template here would name a file "${...}".
          diags_.error("bad-path", map_.in_string(pos(v), at),
                       what + " is a plain path: templates are not expanded in 'outputs'");
        }
        e.value.text = text;
        e.value.parts.push_back(TemplatePart{false, text, {}});
      }
      out.push_back(std::move(e));
    }
  }

  void read_needs(Step& s, const toml::node& n, const std::string& where) {
    const toml::array* a = n.as_array();
    if (!a) {
      type_error(n, "'needs' in " + where, "an array of step names");
      return;
    }
    std::unordered_set<std::string> seen;
    for (const toml::node& e : *a) {
      const toml::value<std::string>* str = e.as_string();
      if (!str) {
        type_error(e, "an entry of 'needs' in " + where, "a string");
        continue;
      }
      const std::string& name = str->get();
      if (!seen.insert(name).second) {
        diags_.error("duplicate", pos(e), where + " lists '" + name + "' twice in 'needs'");
        continue;
      }
      s.needs.push_back(name);
      s.needs_pos.push_back(pos(e));
    }
  }

  void read_matrix(Step& s, const toml::node& node, const std::string& where) {
    const toml::table* t = get_table(node, "'matrix' in " + where);
    if (!t) return;
    if (t->empty()) diags_.error("bad-matrix", pos(node), "'matrix' in " + where + " is empty");
    for (auto&& [k, v] : *t) {
      MatrixAxis axis;
      axis.key = std::string(k.str());
      axis.pos = pos(k);
      const std::string what = "matrix '" + axis.key + "' of " + where;
      // An axis in error stays declared, so ${matrix.KEY} adds no second
      // error; one placeholder value keeps its instances well-formed (the
      // workflow is rejected anyway).
      auto keep = [&s, &axis] {
        if (axis.values.empty()) axis.values.push_back(Value());
        s.matrix.push_back(std::move(axis));
      };
      if (!is_identifier(axis.key)) {
        diags_.error("bad-name", axis.pos, "invalid matrix key '" + axis.key + "' in " + where + ": " + kIdentifierRule);
        keep();
        continue;
      }
      const toml::array* a = v.as_array();
      if (!a || a->empty()) {
        diags_.error("bad-matrix", pos(v), what + " must be a non-empty array of strings, numbers or booleans");
        keep();
        continue;
      }
      for (const toml::node& e : *a) {
        Value val;
        if (e.is_array() || e.is_table()) {
          diags_.error("bad-matrix", pos(e), what + " must hold strings, numbers or booleans, found " + toml_type_phrase(e.type()));
          break;
        }
        if (!to_value(e, what, val)) break;  // a date or time: to_value has said so
        if (std::find(axis.values.begin(), axis.values.end(), val) != axis.values.end()) {
          diags_.error("duplicate", pos(e), what + " lists " + val.to_json() + " twice");
          continue;
        }
        // Instances are named by the values' text: 1, 1.0 and "1" would all be step[k=1].
        auto same_text = std::find_if(axis.values.begin(), axis.values.end(),
                                      [&](const Value& o) { return o.to_text() == val.to_text(); });
        if (same_text != axis.values.end()) {
          diags_.error("duplicate", pos(e), what + " lists " + same_text->to_json() + " and " + val.to_json() +
                                                ", which name the same instance (" + axis.key + "=" + val.to_text() + ")");
          continue;
        }
        axis.values.push_back(std::move(val));
      }
      keep();
    }
  }

  Workflow& wf_;
  SourceMap map_;
};

}  // namespace

const std::vector<std::string>& step_keys() { return kStepKeys; }

WorkflowPtr parse_workflow(std::string source, const std::string& path, Diagnostics& diags) {
  diags.set_path(path);
  auto wf = std::make_shared<Workflow>();
  wf->path = path;
  wf->source = std::move(source);
  toml::table root;
  if (!parse_toml(wf->source, path, diags, root)) return nullptr;
  Reader(*wf, diags).read(root);
  check_workflow(*wf, diags);
  diags.sort();
  if (diags.has_errors()) {
    diags.set_source(std::move(wf->source));
    return nullptr;
  }
  return wf;
}

WorkflowPtr load_workflow(const std::string& path, Diagnostics& diags) {
  diags.set_path(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.error("io", SourcePos{}, "cannot read workflow file: " + std::string(std::strerror(errno)));
    return nullptr;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_workflow(ss.str(), path, diags);
}

}  // namespace sluice::dsl
