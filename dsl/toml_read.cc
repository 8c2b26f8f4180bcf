#include "dsl/toml_read.h"

#include <algorithm>

#include "dsl/source_map.h"
#include "dsl/suggest.h"

namespace sluice::dsl {

const char* toml_type_phrase(toml::node_type t) {
  switch (t) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::none: break;
  }
  return "nothing";
}

bool parse_toml(const std::string& text, const std::string& path, Diagnostics& diags, toml::table& out) {
  try {
    out = toml::parse(text, path);
    return true;
  } catch (const toml::parse_error& e) {
    SourcePos at = to_pos(e.source().begin);
    std::string message(e.description());
    // TOML++ calls a line break inside a one-line string a control character.
    size_t off = SourceMap(text).offset_of(at);
    if (message.find("control characters") != std::string::npos && off < text.size() &&
        (text[off] == '\n' || text[off] == '\r'))
      message = "unterminated string: a one-line string must end on the line it starts on "
                "(use \"\"\"...\"\"\" or '''...''' for text over several lines)";
    diags.error("toml-syntax", at, message);
    diags.set_source(text);
    return false;
  }
}

SourcePos TomlReader::key_pos(const toml::table& t, std::string_view key) {
  for (auto&& [k, v] : t)
    if (k.str() == key) return pos(k);
  return SourcePos{};
}

void TomlReader::type_error(const toml::node& n, const std::string& what, const char* expected) {
  diags_.error("type", pos(n), what + " must be " + expected + ", found " + toml_type_phrase(n.type()));
}

bool TomlReader::get_string(const toml::node& n, const std::string& what, std::string& out) {
  if (auto* s = n.as_string()) {
    out = s->get();
    return true;
  }
  type_error(n, what, "a string");
  return false;
}

bool TomlReader::get_bool(const toml::node& n, const std::string& what, bool& out) {
  if (auto* b = n.as_boolean()) {
    out = b->get();
    return true;
  }
  type_error(n, what, "a boolean");
  return false;
}

const toml::table* TomlReader::get_table(const toml::node& n, const std::string& what) {
  if (auto* t = n.as_table()) return t;
  type_error(n, what, "a table");
  return nullptr;
}

void TomlReader::check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where) {
  for (auto&& [k, v] : t) {
    const std::string key(k.str());
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      diags_.error("unknown-key", pos(k), "unknown key '" + key + "' in " + where + did_you_mean(key, allowed));
  }
}

bool TomlReader::to_value(const toml::node& n, const std::string& what, Value& out) {
  switch (n.type()) {
    case toml::node_type::string: out = Value(n.as_string()->get()); return true;
    case toml::node_type::integer: out = Value(n.as_integer()->get()); return true;
    case toml::node_type::floating_point: out = Value(n.as_floating_point()->get()); return true;
    case toml::node_type::boolean: out = Value(n.as_boolean()->get()); return true;
    case toml::node_type::array: {
      ValueArray a;
      bool ok = true;
      for (const toml::node& e : *n.as_array()) {
        Value v;
        ok = to_value(e, what, v) && ok;
        a.push_back(std::move(v));
      }
      out = Value(std::move(a));
      return ok;
    }
    case toml::node_type::table: {
      ValueTable t;
      bool ok = true;
      for (auto&& [k, e] : *n.as_table()) {
        Value v;
        ok = to_value(e, what, v) && ok;
        t.emplace(std::string(k.str()), std::move(v));
      }
      out = Value(std::move(t));
      return ok;
    }
    default:
      diags_.error("type", pos(n), what + ": " + toml_type_phrase(n.type()) + " is not supported here; write it as a string");
      return false;
  }
}

}  // namespace sluice::dsl
