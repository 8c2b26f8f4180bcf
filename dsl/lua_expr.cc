#include "dsl/lua_expr.h"

#include <cctype>
#include <memory>

#include <lua.hpp>

namespace sluice::dsl {

std::string lua_expression_error(std::string_view expr) {
  std::unique_ptr<lua_State, decltype(&lua_close)> L(luaL_newstate(), &lua_close);
  if (!L) return "out of memory while checking the expression";
  // `return EXPR` rather than `return (EXPR)`: an incomplete expression is
  // then reported near <eof>, not near a ')' the user never wrote.
  std::string chunk = "return ";
  chunk += expr;
  if (luaL_loadbuffer(L.get(), chunk.data(), chunk.size(), "=when") == 0) return {};
  std::string msg = lua_tostring(L.get(), -1) ? lua_tostring(L.get(), -1) : "syntax error";
  // "when:1: unexpected symbol near ')'" -> "unexpected symbol near ')'"
  if (msg.rfind("when:", 0) == 0) {
    size_t colon = msg.find(": ", 5);
    if (colon != std::string::npos) msg = msg.substr(colon + 2);
  }
  return msg;
}

namespace {

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Length of a long bracket opener "[==[" at i, or 0.
size_t long_bracket(std::string_view s, size_t i, size_t& level) {
  if (i >= s.size() || s[i] != '[') return 0;
  size_t j = i + 1;
  level = 0;
  while (j < s.size() && s[j] == '=') ++level, ++j;
  return (j < s.size() && s[j] == '[') ? j - i + 1 : 0;
}

size_t skip_long(std::string_view s, size_t i, size_t level) {
  std::string close = "]" + std::string(level, '=') + "]";
  size_t end = s.find(close, i);
  return end == std::string_view::npos ? s.size() : end + close.size();
}

}  // namespace

std::vector<LuaNameRef> lua_expression_refs(std::string_view s) {
  std::vector<LuaNameRef> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    size_t level = 0;
    if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      size_t open = long_bracket(s, i + 2, level);
      if (open) {
        i = skip_long(s, i + 2 + open, level);
      } else {
        size_t nl = s.find('\n', i);
        i = nl == std::string_view::npos ? s.size() : nl + 1;
      }
    } else if (c == '"' || c == '\'') {
      ++i;
      while (i < s.size() && s[i] != c) i += (s[i] == '\\') ? 2 : 1;
      ++i;
    } else if (size_t open = long_bracket(s, i, level)) {
      i = skip_long(s, i + open, level);
    } else if (ident_start(c)) {
      size_t start = i;
      while (i < s.size() && ident_char(s[i])) ++i;
      std::string_view word = s.substr(start, i - start);
      bool member = start > 0 && s[start - 1] == '.';
      if (!member && (word == "steps" || word == "params") && i + 1 < s.size() && s[i] == '.' && ident_start(s[i + 1])) {
        size_t n = i + 1;
        while (n < s.size() && ident_char(s[n])) ++n;
        out.push_back(LuaNameRef{std::string(word), std::string(s.substr(i + 1, n - i - 1)), start});
        i = n;
      }
    } else {
      ++i;
    }
  }
  return out;
}

}  // namespace sluice::dsl
