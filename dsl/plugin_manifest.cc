// plugin.toml: the reader (every error with its position, as for workflow
// files), the check of a step's `with` against an action, and the arguments
// an action is finally called with.
#include "dsl/plugin_manifest.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dsl/names.h"
#include "dsl/suggest.h"
#include "dsl/toml_read.h"

namespace sluice::dsl {

namespace {

const std::vector<std::string> kTopKeys = {"name", "version", "kind", "description", "library", "isolate", "actions"};
const std::vector<std::string> kActionKeys = {"description", "params"};
const std::vector<std::string> kParamKeys = {"type", "required", "default", "description"};
const std::vector<std::string> kKinds = {"lua", "native"};
const std::vector<std::string> kParamKinds = {"string", "integer", "float", "boolean", "array", "table", "any"};

// "a string", "an integer", ... as a param of this kind expects.
const char* kind_phrase(ParamKind k) {
  switch (k) {
    case ParamKind::String: return "a string";
    case ParamKind::Integer: return "an integer";
    case ParamKind::Float: return "a number";
    case ParamKind::Boolean: return "a boolean";
    case ParamKind::Array: return "an array";
    case ParamKind::Table: return "a table";
    case ParamKind::Any: return "any value";
  }
  return "a value";
}

const char* value_phrase(ValueType t) {
  switch (t) {
    case ValueType::String: return "a string";
    case ValueType::Integer: return "an integer";
    case ValueType::Float: return "a float";
    case ValueType::Boolean: return "a boolean";
    case ValueType::Array: return "an array";
    case ValueType::Table: return "a table";
  }
  return "a value";
}

bool fits(ParamKind k, const Value& v) {
  switch (k) {
    case ParamKind::String: return v.type() == ValueType::String;
    case ParamKind::Integer: return v.type() == ValueType::Integer;
    case ParamKind::Float: return v.type() == ValueType::Float || v.type() == ValueType::Integer;
    case ParamKind::Boolean: return v.type() == ValueType::Boolean;
    case ParamKind::Array: return v.type() == ValueType::Array;
    case ParamKind::Table: return v.type() == ValueType::Table;
    case ParamKind::Any: return true;
  }
  return false;
}

// An integer given for a float param becomes a float.
void normalize(ParamKind k, Value& v) {
  if (k == ParamKind::Float && v.type() == ValueType::Integer) v = Value(static_cast<double>(v.as_integer()));
}

bool is_version(std::string_view v) {
  if (v.empty() || !(v[0] >= '0' && v[0] <= '9')) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+';
  });
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", '" : "'") + names[i] + "'";
  return out;
}

class ManifestReader : TomlReader {
 public:
  ManifestReader(PluginManifest& m, Diagnostics& diags) : TomlReader(diags), m_(m) {}

  void read(const toml::table& root, const std::string& folder_name) {
    check_keys(root, kTopKeys, "plugin.toml");
    read_name(root, folder_name);
    if (const toml::node* n = root.get("version")) {
      if (get_string(*n, "'version'", m_.version) && !is_version(m_.version))
        diags_.error("bad-value", pos(*n), "invalid version '" + m_.version +
                                               "': start with a digit and use digits, letters, '.', '-' and '+', e.g. \"1.2.0\"");
    } else {
      diags_.error("missing-key", SourcePos{1, 1}, "missing required key 'version', e.g. version = \"1.0.0\"");
    }
    if (const toml::node* n = root.get("description")) get_string(*n, "'description'", m_.description);
    read_kind(root);
    if (const toml::node* n = root.get("actions")) {
      read_actions(*n);
    } else {
      diags_.error("missing-key", SourcePos{1, 1}, "plugin declares no actions: add an [actions.NAME] table");
    }
  }

 private:
  void read_name(const toml::table& root, const std::string& folder_name) {
    const toml::node* n = root.get("name");
    if (!n) {
      diags_.error("missing-key", SourcePos{1, 1}, "missing required key 'name'");
      return;
    }
    if (!get_string(*n, "'name'", m_.name)) return;
    if (!is_plugin_name(m_.name)) {
      diags_.error("bad-name", pos(*n), "invalid plugin name '" + m_.name + "': " + kPluginNameRule);
    } else if (!folder_name.empty() && m_.name != folder_name) {
      diags_.error("bad-name", pos(*n), "plugin name '" + m_.name + "' does not match its folder '" + folder_name +
                                            "': the search path finds a plugin by its folder's name");
    }
  }

  void read_kind(const toml::table& root) {
    const toml::node* kind = root.get("kind");
    std::string text;
    if (!kind) {
      diags_.error("missing-key", SourcePos{1, 1}, "missing required key 'kind': \"lua\" or \"native\"");
    } else if (get_string(*kind, "'kind'", text)) {
      if (text == "lua") {
        m_.kind = PluginKind::Lua;
      } else if (text == "native") {
        m_.kind = PluginKind::Native;
      } else {
        diags_.error("bad-value", pos(*kind), "unknown plugin kind '" + text + "': use \"lua\" or \"native\"" +
                                                  did_you_mean(text, kKinds));
        text.clear();
      }
    }
    const bool native = text == "native";
    const bool lua = text == "lua";
    const toml::node* lib = root.get("library");
    if (lib) {
      std::string path;
      if (get_string(*lib, "'library'", path)) {
        if (lua) {
          diags_.error("bad-key", key_pos(root, "library"), "'library' is only for native plugins (kind = \"native\")");
        } else if (path.empty() || path.find('\0') != std::string::npos) {
          diags_.error("bad-value", pos(*lib), "'library' must name the plugin's shared library, e.g. \"libname.so\"");
        } else {
          std::filesystem::path p(path);
          m_.library = (p.is_absolute() || m_.dir.empty() ? p : std::filesystem::path(m_.dir) / p).lexically_normal().string();
        }
      }
    } else if (native) {
      diags_.error("missing-key", pos(*kind), "a native plugin needs 'library': its shared library, relative to the plugin folder");
    }
    if (const toml::node* n = root.get("isolate")) {
      if (get_bool(*n, "'isolate'", m_.isolate) && lua)
        diags_.error("bad-key", key_pos(root, "isolate"), "'isolate' is only for native plugins (kind = \"native\")");
    }
  }

  void read_actions(const toml::node& node) {
    const toml::table* t = get_table(node, "'actions'");
    if (!t) return;
    if (t->empty()) diags_.error("missing-key", pos(node), "plugin declares no actions: add an [actions.NAME] table");
    for (auto&& [k, v] : *t) {
      PluginAction a;
      a.name = std::string(k.str());
      if (!is_identifier(a.name)) {
        diags_.error("bad-name", pos(k), "invalid action name '" + a.name + "': " + kIdentifierRule);
        continue;
      }
      const std::string where = "action '" + a.name + "'";
      const toml::table* at = get_table(v, where);
      if (!at) continue;
      check_keys(*at, kActionKeys, where);
      if (const toml::node* n = at->get("description")) get_string(*n, "'description' of " + where, a.description);
      if (const toml::node* n = at->get("params")) {
        if (const toml::table* pt = get_table(*n, "'params' of " + where)) {
          for (auto&& [pk, pv] : *pt) read_param(a, pk, pv, where);
        }
      }
      m_.actions.push_back(std::move(a));  // TOML++ tables iterate in key order: sorted
    }
  }

  void read_param(PluginAction& a, const toml::key& k, const toml::node& v, const std::string& action_where) {
    ActionParam p;
    p.name = std::string(k.str());
    if (!is_identifier(p.name)) {
      diags_.error("bad-name", pos(k), "invalid param name '" + p.name + "' of " + action_where + ": " + kIdentifierRule);
      return;
    }
    const std::string where = "param '" + p.name + "' of " + action_where;
    const toml::table* t = get_table(v, where);
    if (!t) return;
    check_keys(*t, kParamKeys, where);
    bool typed = false;
    if (const toml::node* n = t->get("type")) {
      std::string text;
      if (get_string(*n, "'type' of " + where, text)) {
        auto it = std::find(kParamKinds.begin(), kParamKinds.end(), text);
        if (it == kParamKinds.end()) {
          diags_.error("bad-value", pos(*n), "unknown type '" + text + "' of " + where + ": use one of " +
                                                 quoted_list(kParamKinds) + did_you_mean(text, kParamKinds));
        } else {
          p.type = static_cast<ParamKind>(it - kParamKinds.begin());
          typed = true;
        }
      }
    } else {
      diags_.error("missing-key", pos(k), where + " needs a 'type': one of " + quoted_list(kParamKinds));
    }
    if (const toml::node* n = t->get("required")) get_bool(*n, "'required' of " + where, p.required);
    if (const toml::node* n = t->get("description")) get_string(*n, "'description' of " + where, p.description);
    if (const toml::node* n = t->get("default")) {
      Value d;
      if (p.required) {
        diags_.error("bad-key", key_pos(*t, "default"), where + " is required and has a default: drop one of them");
      } else if (to_value(*n, "'default' of " + where, d) && typed) {
        if (fits(p.type, d)) {
          normalize(p.type, d);
          p.default_value = std::move(d);
        } else {
          diags_.error("type", pos(*n), "'default' of " + where + " must be " + kind_phrase(p.type) + ", found " +
                                            value_phrase(d.type()));
        }
      }
    }
    a.params.push_back(std::move(p));
  }

  PluginManifest& m_;
};

std::optional<PluginManifest> parse_impl(const std::string& path, const std::string& dir, const std::string& text,
                                         const std::string& folder_name, Diagnostics& diags) {
  diags.set_path(path);
  toml::table root;
  if (!parse_toml(text, path, diags, root)) return std::nullopt;
  PluginManifest m;
  m.path = path;
  m.dir = dir;
  ManifestReader(m, diags).read(root, folder_name);
  diags.sort();
  if (diags.has_errors()) {
    diags.set_source(text);
    return std::nullopt;
  }
  return m;
}

// A string from a template, converted to the param's type. False when it
// does not read as one.
bool convert_text(ParamKind kind, const std::string& text, Value& out) {
  switch (kind) {
    case ParamKind::String:
    case ParamKind::Any:
      out = Value(text);
      return true;
    case ParamKind::Integer: {
      int64_t v = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return false;
      out = Value(v);
      return true;
    }
    case ParamKind::Float: {
      if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
      char* end = nullptr;
      errno = 0;
      double v = std::strtod(text.c_str(), &end);
      if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(v)) return false;
      out = Value(v);
      return true;
    }
    case ParamKind::Boolean:
      if (text != "true" && text != "false") return false;
      out = Value(text == "true");
      return true;
    case ParamKind::Array:
    case ParamKind::Table: {
      nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
      if (j.is_discarded() || (kind == ParamKind::Array ? !j.is_array() : !j.is_object())) return false;
      // JSON -> Value; null has no Value and fails the conversion.
      struct Conv {
        static bool run(const nlohmann::json& j, Value& v) {
          if (j.is_string()) v = Value(j.get<std::string>());
          else if (j.is_boolean()) v = Value(j.get<bool>());
          else if (j.is_number_integer() && (!j.is_number_unsigned() || j.get<uint64_t>() <= INT64_MAX)) v = Value(j.get<int64_t>());
          else if (j.is_number()) v = Value(j.get<double>());
          else if (j.is_array()) {
            ValueArray a;
            for (const auto& e : j) {
              a.emplace_back();
              if (!run(e, a.back())) return false;
            }
            v = Value(std::move(a));
          } else if (j.is_object()) {
            ValueTable t;
            for (const auto& [k, e] : j.items())
              if (!run(e, t[k])) return false;
            v = Value(std::move(t));
          } else {
            return false;
          }
          return true;
        }
      };
      return Conv::run(j, out);
    }
  }
  return false;
}

}  // namespace

const char* to_string(PluginKind k) {
  switch (k) {
    case PluginKind::Lua: return "lua";
    case PluginKind::Native: return "native";
    case PluginKind::Builtin: return "builtin";
  }
  return "?";
}

const char* to_string(ParamKind k) { return kParamKinds[static_cast<size_t>(k)].c_str(); }

const ActionParam* PluginAction::find(std::string_view param) const {
  auto it = std::lower_bound(params.begin(), params.end(), param,
                             [](const ActionParam& p, std::string_view n) { return p.name < n; });
  return it != params.end() && it->name == param ? &*it : nullptr;
}

const PluginAction* PluginManifest::find(std::string_view action) const {
  auto it = std::lower_bound(actions.begin(), actions.end(), action,
                             [](const PluginAction& a, std::string_view n) { return a.name < n; });
  return it != actions.end() && it->name == action ? &*it : nullptr;
}

std::optional<PluginManifest> parse_plugin_manifest(const std::string& path, const std::string& dir,
                                                    const std::string& text, Diagnostics& diags) {
  return parse_impl(path, dir, text, "", diags);
}

std::optional<PluginManifest> load_plugin_manifest(const std::string& dir, Diagnostics& diags,
                                                   const std::string& display_path) {
  const std::string file = dir + "/plugin.toml";
  const std::string path = display_path.empty() ? file : display_path;
  diags.set_path(path);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    diags.error("io", SourcePos{}, "cannot read plugin.toml: " + std::string(std::strerror(errno)));
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_impl(path, dir, ss.str(), std::filesystem::path(dir).lexically_normal().filename().string(), diags);
}

void check_with(const Step& step, const PluginManifest& plugin, Diagnostics& diags) {
  const std::string uses = plugin.name + "." + step.action;
  const PluginAction* action = plugin.find(step.action);
  if (!action) {
    std::vector<std::string> names;
    for (const PluginAction& a : plugin.actions) names.push_back(a.name);
    std::string hint = did_you_mean(step.action, names);
    if (hint.empty()) hint = ": its actions are " + quoted_list(names);
    diags.error("unknown-action", step.script_pos,
                "plugin '" + plugin.name + "' has no action '" + step.action + "' (step '" + step.name + "')" + hint);
    return;
  }
  std::vector<std::string> names;
  for (const ActionParam& p : action->params) names.push_back(p.name);
  for (const WithArg& arg : step.with) {
    const ActionParam* p = action->find(arg.name);
    if (!p) {
      std::string hint = did_you_mean(arg.name, names);
      if (hint.empty()) hint = names.empty() ? ": it takes no params" : ": it takes " + quoted_list(names);
      diags.error("unknown-param", arg.pos,
                  "unknown param '" + arg.name + "' in 'with' of step '" + step.name + "' for '" + uses + "'" + hint);
      continue;
    }
    // A template is resolved at dispatch; resolve_action_args converts it then.
    if (arg.value.is_string() && arg.value.as_string().find("${") != std::string::npos) continue;
    if (!fits(p->type, arg.value))
      diags.error("type", arg.pos, "param '" + arg.name + "' of '" + uses + "' must be " + kind_phrase(p->type) +
                                       ", found " + value_phrase(arg.value.type()));
  }
  for (const ActionParam& p : action->params) {
    if (!p.required) continue;
    const bool given = std::any_of(step.with.begin(), step.with.end(), [&](const WithArg& a) { return a.name == p.name; });
    if (!given)
      diags.error("missing-param", step.pos, "step '" + step.name + "' does not give '" + p.name + "', a required param of '" +
                                                 uses + "': add it to 'with'");
  }
}

bool resolve_action_args(const PluginManifest& plugin, const PluginAction& action, const ValueTable& with,
                         ValueTable& args, std::string& error) {
  const std::string uses = plugin.name + "." + action.name;
  args.clear();
  for (const auto& [name, value] : with) {
    const ActionParam* p = action.find(name);
    if (!p) {
      error = "unknown param '" + name + "' for '" + uses + "'";
      return false;
    }
    Value v = value;
    if (!fits(p->type, v)) {
      if (!v.is_string() || !convert_text(p->type, v.as_string(), v)) {
        error = "param '" + name + "' of '" + uses + "' must be " + kind_phrase(p->type) + ", found " +
                (value.is_string() ? "'" + value.as_string() + "'" : std::string(value_phrase(value.type())));
        return false;
      }
    }
    normalize(p->type, v);
    args.emplace(name, std::move(v));
  }
  for (const ActionParam& p : action.params) {
    if (args.count(p.name)) continue;
    if (p.required) {
      error = "missing required param '" + p.name + "' of '" + uses + "'";
      return false;
    }
    if (p.default_value) args.emplace(p.name, *p.default_value);
  }
  return true;
}

ActionParam make_action_param(std::string name, ParamKind type, bool required, std::string description,
                              std::optional<Value> default_value) {
  ActionParam p;
  p.name = std::move(name);
  p.type = type;
  p.required = required;
  p.default_value = std::move(default_value);
  p.description = std::move(description);
  return p;
}

PluginAction make_plugin_action(std::string name, std::string description, std::vector<ActionParam> params) {
  std::sort(params.begin(), params.end(), [](const ActionParam& a, const ActionParam& b) { return a.name < b.name; });
  return PluginAction{std::move(name), std::move(description), std::move(params)};
}

}  // namespace sluice::dsl
