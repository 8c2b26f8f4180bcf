#pragma once
// Reading TOML with positions (internal to dsl/): what the workflow reader
// (parser.cc) and the plugin.toml reader (plugin_manifest.cc) share — the
// parse itself with a friendlier syntax error, type errors that name what was
// found, unknown keys with a did-you-mean, and TOML -> Value.
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "dsl/diagnostic.h"
#include "dsl/value.h"

namespace sluice::dsl {

// "a string", "an integer", ... for messages.
const char* toml_type_phrase(toml::node_type t);

inline SourcePos to_pos(const toml::source_position& p) { return SourcePos{p.line, p.column}; }

// Parses `text` (read from `path`) into `out`. A syntax error becomes one
// "toml-syntax" diagnostic at its position (and the file's text is handed to
// `diags` for the caret); returns false then.
bool parse_toml(const std::string& text, const std::string& path, Diagnostics& diags, toml::table& out);

// The checks every reader of a TOML file makes, reporting into `diags_`.
class TomlReader {
 public:
  explicit TomlReader(Diagnostics& diags) : diags_(diags) {}

 protected:
  static SourcePos pos(const toml::node& n) { return to_pos(n.source().begin); }
  static SourcePos pos(const toml::key& k) { return to_pos(k.source().begin); }
  // Where `key` of `t` is written; unknown (0:0) when absent.
  static SourcePos key_pos(const toml::table& t, std::string_view key);

  // "<what> must be <expected>, found <the node's type>".
  void type_error(const toml::node& n, const std::string& what, const char* expected);
  bool get_string(const toml::node& n, const std::string& what, std::string& out);
  bool get_bool(const toml::node& n, const std::string& what, bool& out);
  const toml::table* get_table(const toml::node& n, const std::string& what);
  // Each key of `t` not in `allowed`: "unknown key 'k' in <where>; did you mean ...".
  void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where);
  // Converts a TOML value into a Value; dates and times are reported and
  // rejected (false), the rest of an array or table still converted.
  bool to_value(const toml::node& n, const std::string& what, Value& out);

  Diagnostics& diags_;
};

}  // namespace sluice::dsl
