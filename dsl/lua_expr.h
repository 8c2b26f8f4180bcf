#pragma once
// Static checks of `when` expressions (Lua, evaluated at run time by the
// engine's Lua host): syntax through LuaJIT's own parser, and the names of
// steps and params the expression reads.
#include <string>
#include <string_view>
#include <vector>

namespace sluice::dsl {

// The LuaJIT parser's message for `return <expr>`, without the chunk name
// prefix, or "" when the expression compiles.
std::string lua_expression_error(std::string_view expr);

struct LuaNameRef {
  std::string root;  // "steps" or "params"
  std::string name;  // the field after the dot
  size_t offset;     // byte offset of `root` in the expression
};

// `steps.NAME` and `params.NAME` outside strings and comments.
std::vector<LuaNameRef> lua_expression_refs(std::string_view expr);

}  // namespace sluice::dsl
