#pragma once
// The parsed, immutable workflow: what a TOML workflow file says, with
// defaults applied, templates parsed and every reference checked. Built by
// dsl::load_workflow (parser.h); never modified afterwards.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dsl/cron.h"
#include "dsl/dag.h"
#include "dsl/diagnostic.h"
#include "dsl/template.h"
#include "dsl/units.h"
#include "dsl/value.h"

namespace sluice::dsl {

struct Param {
  std::string name;
  ValueType type = ValueType::String;  // for arrays, `element` is the element type
  ValueType element = ValueType::String;
  Value default_value;
  SourcePos pos;
};

struct Resources {
  double cpus = 1.0;      // slots taken from the machine's cores
  uint64_t memory = 0;    // bytes; 0 = not declared
  int64_t gpus = 0;
};

enum class Catchup { None, Latest, All };
enum class Overlap { Skip, Queue, Cancel };

struct Schedule {
  std::string cron;               // as written; parsed by dsl/cron.h
  std::string timezone = "UTC";   // IANA name
  Catchup catchup = Catchup::Latest;
  Duration catchup_window = Duration(24 * 3'600'000);
  Overlap overlap = Overlap::Skip;
  DstGap on_dst_gap = DstGap::Shift;
  DstRepeat on_dst_repeat = DstRepeat::First;
  std::optional<Duration> deadline;
  SourcePos pos;
};

// [triggers]: repository events that start a run (the webhook receiver of
// `sluice serve`). See dsl/triggers.h for matching.
enum class TriggerEvent { Push, Release };

// A piece of a trigger param's string: literal text, or `${event.NAME}`.
struct EventPart {
  bool is_field = false;
  std::string text;  // the literal, or the field's NAME
};

struct TriggerParam {
  std::string name;
  Value value;                   // as written
  std::vector<EventPart> parts;  // a string value split at its ${event.NAME}s, `$$` read as `$`
  bool has_event_fields = false;
  SourcePos pos;        // the key
  SourcePos value_pos;  // the value
};

struct EventTrigger {
  TriggerEvent event = TriggerEvent::Push;
  std::string repository;             // "owner/name"; "" = any repository
  std::vector<std::string> branches;  // glob patterns (push only)
  std::vector<std::string> tags;      // glob patterns
  std::vector<std::string> actions;   // release only; default {"published"}
  std::vector<TriggerParam> params;   // sorted by name
  SourcePos pos;                      // the trigger's table
};

enum class ActionKind { Run, Lua, LuaInline, Uses };

// A named template (inputs, env) or a named plain string (outputs).
struct NamedTemplate {
  std::string name;
  Template value;
  SourcePos pos;
};

// One argument of `with`: its value as written, and the templates found in
// its strings (so the engine can resolve them at dispatch).
struct WithArg {
  std::string name;
  Value value;
  SourcePos pos;
};

struct MatrixAxis {
  std::string key;
  std::vector<Value> values;  // scalars, in the order written
  SourcePos pos;
};

struct Step {
  std::string name;
  SourcePos pos;  // the step's table header (or key)
  std::string description;

  ActionKind kind = ActionKind::Run;
  Template command;       // Run: the shell command
  std::string script;     // Lua: the path as written (relative to the workflow file); LuaInline: the code
  SourcePos script_pos;
  std::string plugin;     // Uses: "storage" of "storage.fetch"
  std::string action;     // Uses: "fetch"
  std::vector<WithArg> with;            // sorted by name
  std::vector<Template> with_templates; // every template inside `with`, in order

  std::vector<NamedTemplate> inputs;    // sorted by name
  std::vector<NamedTemplate> outputs;   // sorted by name; paths relative to the work dir
  std::vector<NamedTemplate> env;       // sorted by name; the workflow's env comes first at run time
  std::vector<std::string> needs;       // explicit, as written
  std::vector<SourcePos> needs_pos;     // where each entry of `needs` stands
  std::string when;                     // a Lua expression; empty = always
  SourcePos when_pos;

  int64_t retries = 0;
  Duration retry_backoff = Duration(1000);
  std::optional<Duration> timeout;      // none = no limit (Lua steps get the Lua default at run time)
  bool cache = true;
  std::vector<MatrixAxis> matrix;       // sorted by key
  Resources resources;
  std::string executor = "local";
  bool continue_on_error = false;

  // Every step this one depends on: `needs` plus the steps its templates and
  // `when` refer to; unique, sorted by declaration index.
  std::vector<uint32_t> deps;

  bool is_matrix() const { return !matrix.empty(); }
};

struct Workflow {
  std::string path;         // as the user named it
  std::string source;       // the file's bytes
  std::string name;
  std::string description;
  std::vector<Param> params;          // sorted by name
  std::vector<NamedTemplate> env;     // sorted by name
  std::optional<Schedule> schedule;
  std::vector<EventTrigger> triggers;  // in the order written
  std::vector<Step> steps;            // in declaration order
  Dag dag;                            // matrix-expanded instances and their edges

  const Step* find_step(std::string_view name) const;
  const Param* find_param(std::string_view name) const;
  int64_t step_index(std::string_view name) const;  // -1 when absent
};

}  // namespace sluice::dsl
