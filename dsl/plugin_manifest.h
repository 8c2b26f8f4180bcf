#pragma once
// plugin.toml: what a plugin declares about itself — name, version, kind and,
// for each action, its parameters. The engine validates a step's `with`
// against it (at `sluice validate` and before a run) and applies defaults.
// See docs/plugins.md, "plugin.toml".
//
//   name = "textstats"              # the folder's name: [a-z0-9][a-z0-9_-]* (as workflow names), or
//                                   # several joined by dots; the `<plugin>` of uses = "<plugin>.<action>"
//   version = "1.2.0"               # starts with a digit: digits, letters, '.', '-', '+'
//   kind = "lua"                    # lua | native
//   description = "..."
//   library = "libtextstats.so"     # native only, required: relative to the plugin folder (or absolute)
//   isolate = true                  # native only: run actions in a worker process (default true)
//
//   [actions.count]                 # action names: [A-Za-z_][A-Za-z0-9_]*; at least one action
//   description = "Counts words in a text file"
//   [actions.count.params.path]
//   type = "string"                 # required: string | integer | float | boolean | array | table | any
//   required = true                 # default false; a required param has no default
//   description = "The file to read"
//   [actions.count.params.top]
//   type = "integer"
//   default = 10                    # must have the param's type (an integer is a valid float)
// Unknown keys are errors (with a did-you-mean), as in workflow files.
#include <optional>
#include <string>
#include <vector>

#include "dsl/diagnostic.h"
#include "dsl/spec.h"
#include "dsl/value.h"

namespace sluice::dsl {

enum class PluginKind { Lua, Native, Builtin };
const char* to_string(PluginKind k);  // "lua", "native", "builtin"

// The type of an action parameter as plugin.toml names it.
enum class ParamKind { String, Integer, Float, Boolean, Array, Table, Any };
const char* to_string(ParamKind k);

struct ActionParam {
  std::string name;
  ParamKind type = ParamKind::String;
  bool required = false;
  std::optional<Value> default_value;  // never set when required
  std::string description;
};

struct PluginAction {
  std::string name;
  std::string description;
  std::vector<ActionParam> params;  // sorted by name
  const ActionParam* find(std::string_view param) const;
};

struct PluginManifest {
  std::string path;  // the plugin.toml read ("<builtin>" for built-ins)
  std::string dir;   // its folder, absolute ("" for built-ins)
  std::string name;
  std::string version;
  std::string description;
  PluginKind kind = PluginKind::Lua;
  std::string library;  // native: absolute path of the shared library
  bool isolate = true;  // native: run in a worker process
  std::vector<PluginAction> actions;  // sorted by name
  const PluginAction* find(std::string_view action) const;
};

// Building manifests in code (the built-in plugins): a parameter, and an
// action whose params are sorted by name as the reader sorts them.
ActionParam make_action_param(std::string name, ParamKind type, bool required, std::string description,
                              std::optional<Value> default_value = std::nullopt);
PluginAction make_plugin_action(std::string name, std::string description, std::vector<ActionParam> params);

// Parses a plugin.toml (`text`, read from `path`, whose folder is `dir`).
// Problems are added to `diags` as `path:line:col: error: message`; returns
// nullopt when there was any. `diags` gets `path` and, on errors, the text.
std::optional<PluginManifest> parse_plugin_manifest(const std::string& path, const std::string& dir,
                                                    const std::string& text, Diagnostics& diags);
// Reads and parses `<dir>/plugin.toml`; `dir` must be absolute. Messages name
// the file as `display_path` ("" = `<dir>/plugin.toml`), which becomes
// PluginManifest::path. Also checks that `name` is the folder's name (the
// search path finds a plugin by its folder).
std::optional<PluginManifest> load_plugin_manifest(const std::string& dir, Diagnostics& diags,
                                                   const std::string& display_path = "");

// Checks one step's `with` against its action: unknown params (with a
// did-you-mean), missing required ones, and values of the wrong type (a
// string holding a template is accepted for any type; it is checked after
// resolution at run time). Errors point at the workflow file's line:col.
// An action `step.action` the plugin does not have is reported too, at the
// `uses` value (with a did-you-mean).
void check_with(const Step& step, const PluginManifest& plugin, Diagnostics& diags);

// The arguments an action is called with, from the step's `with` after its
// templates are resolved (`with`: name -> value): each checked against its
// declared type, a string converted when the param is not a string (integer,
// float, boolean from their text; array, table from JSON, which is how a
// template renders them), plus the defaults of the params not given. False
// with `error` naming the param on a mismatch, an unknown or a missing
// required param: "param 'top' of 'textstats.count' must be an integer, found 'ten'".
bool resolve_action_args(const PluginManifest& plugin, const PluginAction& action, const ValueTable& with,
                         ValueTable& args, std::string& error);

}  // namespace sluice::dsl
