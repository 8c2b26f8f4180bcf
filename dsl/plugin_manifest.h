#pragma once
// plugin.toml: what a plugin declares about itself — name, version, kind and,
// for each action, its parameters. The engine validates a step's `with`
// against it (at `sluice validate` and before a run) and applies defaults.
// See docs/plugins.md, "plugin.toml".
//
//   name = "textstats"              # [a-z][a-z0-9_]*, the `<plugin>` of uses = "<plugin>.<action>"
//   version = "1.2.0"
//   kind = "lua"                    # lua | native
//   description = "..."
//   library = "libtextstats.so"     # native only: relative to the plugin folder
//   isolate = true                  # native only: run actions in a worker process (default true)
//
//   [actions.count]
//   description = "Counts words in a text file"
//   [actions.count.params.path]
//   type = "string"                 # string | integer | float | boolean | array | table | any
//   required = true
//   description = "The file to read"
//   [actions.count.params.top]
//   type = "integer"
//   default = 10
#include <optional>
#include <string>
#include <vector>

#include "dsl/diagnostic.h"
#include "dsl/spec.h"
#include "dsl/value.h"

namespace sluice::dsl {

enum class PluginKind { Lua, Native, Builtin };

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

// Parses a plugin.toml (`text`, read from `path`, whose folder is `dir`).
// Problems are added to `diags` as `path:line:col: error: message`; returns
// nullopt when there was any.
std::optional<PluginManifest> parse_plugin_manifest(const std::string& path, const std::string& dir,
                                                    const std::string& text, Diagnostics& diags);
// Reads and parses `<dir>/plugin.toml`.
std::optional<PluginManifest> load_plugin_manifest(const std::string& dir, Diagnostics& diags);

// Checks one step's `with` against its action: unknown params (with a
// did-you-mean), missing required ones, and values of the wrong type (a
// string holding a template is accepted for any type; it is checked after
// resolution at run time). Errors point at the workflow file's line:col.
void check_with(const Step& step, const PluginManifest& plugin, Diagnostics& diags);

}  // namespace sluice::dsl
